"""``mnist``, ``fashion-mnist`` and ``cifar10`` through ``torchvision.datasets``.

One loader serves all three: a table maps the dataset name to its torchvision class and to the
files torchvision looks for under ``data.root``, so adding a dataset is one table row. Files
are read by torchvision; the whole split is then turned into one float32 ``[N, C, H, W]`` tensor
in [0, 1] from the dataset's ``.data`` / ``.targets`` arrays in a single vectorised step (no
per-item ``__getitem__``, no PIL).

What torchvision (0.17 … 0.29) expects under ``data.root``:

* ``mnist``: ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, uncompressed IDX files;
  torchvision only checks that they exist, so any genuine IDX files load.
* ``fashion-mnist``: the same four names under ``FashionMNIST/raw/``.
* ``cifar10``: ``cifar-10-batches-py/{data_batch_1 … data_batch_5, test_batch, batches.meta}``,
  the python pickles of ``cifar-10-python.tar.gz`` *unpacked*; torchvision checks the md5 sum of
  every file against the official archive, so only the official files load.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from latentbench.benchmarks.data.registry import DATASETS, DataSpec, ImageData, InputError

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR10_FILES = (
    *(f"data_batch_{i}" for i in range(1, 6)),
    "test_batch",
    "batches.meta",
)


def idx_problem(path: str) -> str | None:
    """What is wrong with the uncompressed IDX file at ``path`` (``None``: nothing seen).

    IDX: two zero bytes, a type byte (0x08: unsigned bytes, all MNIST uses), the number of
    dimensions, one big-endian uint32 per dimension, then the values.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(4)
            if len(head) < 4 or head[:3] != b"\x00\x00\x08" or head[3] not in (1, 3):
                return "not an uncompressed IDX file of bytes (bad magic number)"
            dims = file.read(4 * head[3])
    except OSError as err:
        return f"unreadable ({err})"
    if len(dims) < 4 * head[3]:
        return "truncated in its header"
    shape = [int.from_bytes(dims[i:i + 4], "big") for i in range(0, len(dims), 4)]
    expected = 4 + len(dims) + int(np.prod(shape))
    size = os.path.getsize(path)
    if size != expected:
        return f"{size} bytes, but its header ({'×'.join(map(str, shape))}) needs {expected}"
    return None


@dataclass(frozen=True)
class TorchvisionSource:
    """Where one torchvision dataset lives and how to tell a user what to put there.

    Attributes:
        class_name: attribute of ``torchvision.datasets`` (imported lazily: ~1 s).
        folder: the sub-folder of ``data.root`` torchvision reads.
        files: the file names torchvision needs in ``folder``.
        note: what else about the files matters (format, integrity checks).
        problem: ``path → what is wrong with it`` (``None`` if nothing), to name the bad file
            when torchvision rejects a folder; ``None`` where no cheap check exists.
    """

    class_name: str
    folder: str
    files: tuple[str, ...]
    note: str
    problem: Callable[[str], str | None] | None = None

    def dataset_class(self) -> Any:
        """The torchvision dataset class."""
        import torchvision.datasets  # here, not at module import: it is slow and optional

        return getattr(torchvision.datasets, self.class_name)

    def layout(self) -> str:
        """``folder/{a, b, …}``: the expected layout, relative to ``data.root``."""
        return f"{self.folder}/{{{', '.join(self.files)}}}"


SOURCES: dict[str, TorchvisionSource] = {
    "mnist": TorchvisionSource(
        "MNIST",
        "MNIST/raw",
        _MNIST_FILES,
        "uncompressed IDX files: gunzip the .gz downloads",
        idx_problem,
    ),
    "fashion-mnist": TorchvisionSource(
        "FashionMNIST",
        "FashionMNIST/raw",
        _MNIST_FILES,
        "uncompressed IDX files: gunzip the .gz downloads",
        idx_problem,
    ),
    "cifar10": TorchvisionSource(
        "CIFAR10",
        "cifar-10-batches-py",
        _CIFAR10_FILES,
        "the unpacked python pickles of the official cifar-10-python.tar.gz, "
        "whose md5 sums torchvision checks",
    ),
}


def _open_split(name: str, source: TorchvisionSource, spec: DataSpec, train: bool) -> Any:
    """Construct the torchvision dataset, turning its failures into one-line InputErrors."""
    root = spec.root
    assert root is not None  # checked by the caller
    try:
        return source.dataset_class()(root, train=train, download=spec.download)
    except (RuntimeError, OSError, AssertionError, TypeError, ValueError) as err:
        # RuntimeError: files missing / md5 mismatch / download failed; OSError: unreadable or
        # network error; Assertion/Type/ValueError: torchvision's checks of the IDX header.
        folder = os.path.join(root, source.folder)
        missing = [f for f in source.files if not os.path.isfile(os.path.join(folder, f))]
        reason = " ".join(str(err).split())  # torchvision's text, folded onto one line
        bad = [(f, p) for f in source.files if source.problem and not missing
               for p in [source.problem(os.path.join(folder, f))] if p]
        if missing:
            what = f"missing {', '.join(missing)} in {folder}"
        elif bad:
            what = f"{os.path.join(folder, bad[0][0])} is {bad[0][1]}"
        else:
            what = f"the files in {folder} were rejected ({reason})"
        fetch = (
            f"; data.download = true did not fetch them ({reason})"
            if spec.download
            else ", or set data.download = true (needs network)"
        )
        raise InputError(
            f"data.root: cannot load dataset {name!r}: {what}; put {source.layout()} under "
            f"{root} ({source.note}){fetch}"
        ) from err


def _to_images(data: Any) -> torch.Tensor:
    """uint8 ``[N, H, W]`` (MNIST tensor) or ``[N, H, W, C]`` (CIFAR ndarray) → float32 NCHW."""
    pixels = torch.as_tensor(np.asarray(data)) if not isinstance(data, torch.Tensor) else data
    if pixels.dtype != torch.uint8:
        raise InputError(f"expected uint8 pixels from torchvision, got {pixels.dtype}")
    if pixels.ndim == 3:
        pixels = pixels.unsqueeze(1)  # [N, H, W] → [N, 1, H, W]
    elif pixels.ndim == 4:
        pixels = pixels.permute(0, 3, 1, 2)  # NHWC → NCHW
    else:
        raise InputError(f"expected 3-D or 4-D pixel arrays from torchvision, got {pixels.ndim}-D")
    return pixels.to(torch.float32).div_(255.0).contiguous()


def load_torchvision(spec: DataSpec) -> ImageData:
    """Load ``spec.dataset`` (a key of :data:`SOURCES`) from ``spec.root`` via torchvision.

    Only the first ``n_train`` / ``n_test`` images are converted to float (the rest stay uint8
    and are dropped), so small runs on CIFAR-10 do not hold 600 MB of floats.

    Args:
        spec: ``root`` (required) and ``download``; ``n_train`` / ``n_test`` to keep a prefix.

    Returns:
        ``ImageData`` with float32 ``[N, C, H, W]`` images in [0, 1] (``x / 255``), int64 class
        labels 0…9, no factors.

    Raises:
        InputError: no ``root``, or the files are missing or unusable (message names the folder
            layout and the file names torchvision expects).
    """
    name = spec.dataset
    source = SOURCES[name]
    if spec.root is None:
        raise InputError(
            f"data.root: a folder is required for dataset {name!r}: point it at a folder holding "
            f"{source.layout()} ({source.note}), or at any writable folder with "
            "data.download = true (needs network)"
        )
    splits = {}
    for split, train, n_keep in (("train", True, spec.n_train), ("test", False, spec.n_test)):
        dataset = _open_split(name, source, spec, train)
        keep = slice(None, n_keep)  # slice the uint8 arrays before converting to float
        images = _to_images(dataset.data[keep])
        labels = torch.as_tensor(np.asarray(dataset.targets[keep]), dtype=torch.int64)
        splits[split] = (images, labels)
    return ImageData(
        name=name,
        train=splits["train"][0],
        test=splits["test"][0],
        train_labels=splits["train"][1],
        test_labels=splits["test"][1],
    )


def _entry(source: TorchvisionSource) -> Callable[[DataSpec], ImageData]:
    """A registry entry for one source: the shared loader, with a docstring of its own so that
    ``latentbench list datasets`` says what each one reads."""

    def load(spec: DataSpec) -> ImageData:
        return load_torchvision(spec)

    load.__doc__ = f"torchvision {source.class_name} from data.root: {source.layout()}"
    return load


for _name, _source in SOURCES.items():
    DATASETS.register(_name)(_entry(_source))
