"""Retrain the shipped ``lenet-mnist`` weights.

``python -m latentbench.benchmarks.train_lenet_mnist`` trains on the mnist5k training split
(4,000 digits) with :data:`~latentbench.metrics.lenet.LENET_MNIST_TRAINING` on one thread,
computes the mean and std of its features on those training digits (the standardisation the
file stores), writes ``metrics/weights/lenet-mnist.pt`` and prints its sha256 (the value of
:data:`~latentbench.metrics.lenet.LENET_MNIST_SHA256`) and its accuracy on the 1,000 test digits.

It lives in ``benchmarks`` rather than next to the weights in ``metrics`` because it needs the
datasets, and ``metrics`` must not depend on ``benchmarks``; importing them at run time from
``metrics`` would only hide that dependency from the import checks.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

from latentbench.benchmarks.data import DataSpec, load_dataset
from latentbench.benchmarks.extractors import train_lenet_file
from latentbench.metrics.lenet import (
    LENET_MNIST_FILE,
    LENET_MNIST_SHA256,
    LENET_MNIST_TRAINING,
    shipped_weights,
)
from latentbench.reports.atomic import write_bytes_atomic

MIN_ACCURACY = 0.95


def main(argv: list[str] | None = None) -> int:
    """Train, write the weights file, print its sha256 and accuracy; exit 1 below 95 %."""
    parser = argparse.ArgumentParser(description="Retrain the shipped lenet-mnist weights.")
    parser.add_argument("--out", type=Path, default=shipped_weights(LENET_MNIST_FILE),
                        help="where to write the weights (default: the package's file)")
    args = parser.parse_args(argv)

    # One thread: float sums in another order would give other weights and another digest.
    torch.set_num_threads(1)
    checkpoint, test_accuracy = train_lenet_file(load_dataset(DataSpec("mnist5k")),
                                                 LENET_MNIST_TRAINING)
    digest = hashlib.sha256(checkpoint).hexdigest()
    write_bytes_atomic(args.out, checkpoint)
    args.out.chmod(0o644)  # the temporary file it was written as is private (0600)
    print(f"{args.out}\nsha256 {digest}\ntest accuracy {test_accuracy:.4f} (1,000 test digits)")
    if digest != LENET_MNIST_SHA256:
        print("the digest differs from LENET_MNIST_SHA256 in metrics/lenet.py: update it")
    if test_accuracy < MIN_ACCURACY:
        print(f"accuracy below {MIN_ACCURACY:.0%}: do not ship these weights", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
