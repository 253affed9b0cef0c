"""``mnist``, ``fashion-mnist``, ``cifar10`` through torchvision, on files written by the tests.

MNIST and Fashion-MNIST go through torchvision for real: the mnist5k digits are written as
genuine IDX files, which torchvision only checks for existence. torchvision checks the md5 sum
of every CIFAR-10 file against the official archive, so hand-made CIFAR files can only test the
error path; the conversion path is tested with a torchvision CIFAR10 subclass that skips the md5
comparison but otherwise reads the genuine pickle layout.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from latentbench.benchmarks.data import torchvision_sets
from latentbench.benchmarks.data.mnist5k import mnist5k_arrays
from latentbench.benchmarks.data.registry import DATASETS, DataSpec, InputError, load_dataset

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX file: magic 0x0000_08_<ndim> (uint8 data), big-endian int32 dims, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    """A 600 / 200 split of the embedded mnist5k digits (uint8 images, labels)."""
    pixels, labels = mnist5k_arrays()
    order = np.random.default_rng(0).permutation(len(labels))[:800]
    return {
        "train_x": pixels[order[:600]],
        "train_y": labels[order[:600]],
        "test_x": pixels[order[600:]],
        "test_y": labels[order[600:]],
    }


def _write_mnist_layout(root: Path, folder: str, digits: dict[str, np.ndarray]) -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte", digits["train_x"])
    _write_idx(raw / "train-labels-idx1-ubyte", digits["train_y"])
    _write_idx(raw / "t10k-images-idx3-ubyte", digits["test_x"])
    _write_idx(raw / "t10k-labels-idx1-ubyte", digits["test_y"])
    return raw


def test_idx_header_is_the_mnist_format(tmp_path: Path) -> None:
    _write_idx(tmp_path / "images", np.zeros((2, 28, 28), np.uint8))
    _write_idx(tmp_path / "labels", np.arange(2, dtype=np.uint8))
    assert (tmp_path / "images").read_bytes()[:16] == struct.pack(">IIII", 2051, 2, 28, 28)
    assert (tmp_path / "labels").read_bytes()[:8] == struct.pack(">II", 2049, 2)


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")]
)
def test_mnist_like_loads_exact_pixels(
    tmp_path: Path, digits: dict[str, np.ndarray], name: str, folder: str
) -> None:
    _write_mnist_layout(tmp_path, folder, digits)
    data = load_dataset(DataSpec(dataset=name, root=str(tmp_path)))
    assert data.name == name
    assert data.train.shape == (600, 1, 28, 28) and data.test.shape == (200, 1, 28, 28)
    assert data.train.dtype == torch.float32 and data.train_labels.dtype == torch.int64
    expected = torch.from_numpy(digits["train_x"]).float().div(255.0).unsqueeze(1)
    assert torch.equal(data.train, expected)
    assert torch.equal(data.test, torch.from_numpy(digits["test_x"]).float().div(255).unsqueeze(1))
    assert torch.equal(data.train_labels, torch.from_numpy(digits["train_y"]))
    assert torch.equal(data.test_labels, torch.from_numpy(digits["test_y"]))
    assert data.train_factors is None and data.factor_names == ()
    # n_train / n_test keep a prefix
    small_spec = DataSpec(dataset=name, root=str(tmp_path), n_train=50, n_test=7)
    small = load_dataset(small_spec)
    assert torch.equal(small.train, data.train[:50]) and torch.equal(small.test, data.test[:7])
    assert torch.equal(small.test_labels, data.test_labels[:7])
    # the loader itself converts only that prefix to float (not just load_dataset's head())
    direct = torchvision_sets.load_torchvision(small_spec)
    assert direct.train.shape[0] == 50 and direct.test_labels.shape[0] == 7


def test_no_root_names_data_root_and_layout() -> None:
    for name, needle in (
        ("mnist", "MNIST/raw/{train-images-idx3-ubyte"),
        ("fashion-mnist", "FashionMNIST/raw/{train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-batches-py/{data_batch_1"),
    ):
        with pytest.raises(InputError) as info:
            load_dataset(DataSpec(dataset=name))
        message = str(info.value)
        assert message.startswith("data.root:") and f"{name!r}" in message
        assert needle in message and "data.download = true" in message
        assert "\n" not in message


def test_missing_mnist_files_say_what_to_put_where(
    tmp_path: Path, digits: dict[str, np.ndarray]
) -> None:
    with pytest.raises(InputError) as info:
        load_dataset(DataSpec(dataset="mnist", root=str(tmp_path)))
    message = str(info.value)
    assert os.path.join(str(tmp_path), "MNIST", "raw") in message
    assert all(f in message for f in MNIST_FILES)
    assert "uncompressed" in message and "\n" not in message
    # one file missing: the message names that one as missing
    raw = _write_mnist_layout(tmp_path, "FashionMNIST", digits)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(InputError, match=r"missing t10k-labels-idx1-ubyte in "):
        load_dataset(DataSpec(dataset="fashion-mnist", root=str(tmp_path)))


def test_corrupt_idx_file_is_an_input_error(tmp_path: Path, digits: dict[str, np.ndarray]) -> None:
    raw = _write_mnist_layout(tmp_path, "MNIST", digits)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x1f\x8b\x08\x00gzip, not idx")
    with pytest.raises(InputError, match="train-images-idx3-ubyte is not an uncompressed IDX file"):
        load_dataset(DataSpec(dataset="mnist", root=str(tmp_path)))


def _cifar_pixels(n: int, seed: int) -> np.ndarray:
    """uint8 ``[n, 32, 32, 3]`` (HWC) random images."""
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _write_cifar_layout(root: Path, per_batch: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The pickles of cifar-10-batches-py; rows are R, G, B planes of 32×32 (CHW flattened)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = _cifar_pixels(5 * per_batch, 1)
    test = _cifar_pixels(per_batch, 2)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images = train[i * per_batch : (i + 1) * per_batch] if i < 5 else test
        batch = {
            "batch_label": name,
            "data": images.transpose(0, 3, 1, 2).reshape(len(images), 3072),
            "labels": [(i + j) % 10 for j in range(len(images))],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer"] + ["x"] * 5}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return train, test


def test_cifar10_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_dataset(DataSpec(dataset="cifar10", root=str(tmp_path)))
    message = str(info.value)
    assert os.path.join(str(tmp_path), "cifar-10-batches-py") in message
    for name in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"):
        assert name in message
    assert "md5" in message and "\n" not in message


def test_cifar10_unofficial_files_are_rejected_by_md5(tmp_path: Path) -> None:
    _write_cifar_layout(tmp_path)
    with pytest.raises(InputError) as info:
        load_dataset(DataSpec(dataset="cifar10", root=str(tmp_path)))
    message = str(info.value)
    assert "were rejected" in message and "corrupted" in message  # torchvision's reason
    assert "md5" in message and "missing" not in message


def test_cifar10_conversion_with_md5_check_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets
    from torchvision.datasets.utils import check_integrity

    class UncheckedCIFAR10(torchvision.datasets.CIFAR10):
        """torchvision's reader with the official-md5 comparison turned into an existence test."""

        def _check_integrity(self) -> bool:
            files = [name for name, _ in self.train_list + self.test_list]
            return all(check_integrity(os.path.join(self.root, self.base_folder, f)) for f in files)

        def _load_meta(self) -> None:
            self.meta = {**self.meta, "md5": None}
            super()._load_meta()

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", UncheckedCIFAR10)
    train, test = _write_cifar_layout(tmp_path)
    data = load_dataset(DataSpec(dataset="cifar10", root=str(tmp_path)))
    assert data.train.shape == (20, 3, 32, 32) and data.test.shape == (4, 3, 32, 32)
    # NHWC uint8 → NCHW float: pixel (n, c, h, w) is train[n, h, w, c] / 255
    expected = torch.from_numpy(train).permute(0, 3, 1, 2).float().div(255.0)
    assert torch.equal(data.train, expected)
    assert data.train[3, 2, 5, 7].item() == pytest.approx(train[3, 5, 7, 2] / 255.0)
    assert torch.equal(data.test, torch.from_numpy(test).permute(0, 3, 1, 2).float().div(255))
    assert data.train_labels.tolist()[:6] == [0, 1, 2, 3, 1, 2]
    assert data.train_labels.dtype == torch.int64 and data.test_labels.tolist() == [5, 6, 7, 8]
    assert data.train.is_contiguous()


def test_every_source_names_a_torchvision_class() -> None:
    import torchvision.datasets

    for name, source in torchvision_sets.SOURCES.items():
        cls = getattr(torchvision.datasets, source.class_name)
        assert source.dataset_class() is cls
        assert source.class_name in DATASETS.get(name).__doc__


def test_failed_download_is_one_line_and_download_flag_reaches_torchvision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets

    calls = []

    class OfflineMNIST:
        """Stands in for torchvision's MNIST when the mirrors cannot be reached."""

        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://...")

    monkeypatch.setattr(torchvision.datasets, "MNIST", OfflineMNIST)
    with pytest.raises(InputError) as info:
        load_dataset(DataSpec(dataset="mnist", root=str(tmp_path), download=True))
    message = str(info.value)
    assert calls == [(str(tmp_path), True, True)]
    assert "did not fetch them (Error downloading train-images-idx3-ubyte.gz:" in message
    assert "\n" not in message and "MNIST/raw/{" in message
