"""The dataset registry, the ``[data]`` section of a suite, and the in-memory image container.

Every dataset is held as float32 tensors in [0, 1], shape ``[N, C, H, W]``, so the training loop
batches by indexing a tensor and never touches single samples in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from latentbench.models.registry import InputError, Registry, check_int


@dataclass(frozen=True)
class DataSpec:
    """The ``[data]`` section of a suite.

    Attributes:
        dataset: registered dataset name (``latentbench list datasets``).
        root: folder with the files of a torchvision dataset (``mnist``, ``fashion-mnist``,
            ``cifar10``); ignored by embedded and generated datasets.
        download: let torchvision fetch missing files into ``root`` (needs network).
        n_train: keep the first ``n_train`` training images (generators: draw that many).
        n_test: keep the first ``n_test`` test images (generators: draw that many).
        channels: ``shapes`` only: 1 (white sprites) or 3 (a colour factor is added).
        seed: seed of the generated datasets; fixed across run seeds so runs see the same data.
    """

    dataset: str = "mnist5k"
    root: str | None = None
    download: bool = False
    n_train: int | None = None
    n_test: int | None = None
    channels: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        # Stored as the plain ints check_int returns (a numpy integer passes the check), so
        # the run id's JSON can hold them.
        for name in ("n_train", "n_test"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name,
                                   check_int(getattr(self, name), f"data.{name}", minimum=1))
        # numpy's SeedSequence takes any non-negative int; TOML ints stop at 2**63 - 1.
        object.__setattr__(self, "seed", check_int(self.seed, "data.seed", minimum=0))
        if self.channels not in (None, 1, 3):
            raise InputError(f"data.channels: must be 1 or 3, got {self.channels!r}")


@dataclass(frozen=True)
class ImageData:
    """A dataset in memory: train and test images with their labels.

    Attributes:
        name: the registered dataset name.
        train, test: float32 ``[N, C, H, W]`` in [0, 1].
        train_labels, test_labels: int64 ``[N]`` class labels (digit, line-angle bin, shape).
        train_factors, test_factors: float32 ``[N, F]`` ground-truth generative factors
            (angle of a line, scale/orientation/position of a sprite) or ``None``.
        factor_names: the names of the ``F`` factor columns.
    """

    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor
    test_labels: torch.Tensor
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    factor_names: tuple[str, ...] = field(default=())

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.train.shape[1:])  # type: ignore[return-value]

    def head(self, n_train: int | None, n_test: int | None) -> ImageData:
        """The first ``n_train`` / ``n_test`` images of each split (``None`` keeps all)."""

        def cut(t: torch.Tensor | None, n: int | None) -> torch.Tensor | None:
            return t if t is None or n is None else t[:n]

        return replace(
            self,
            train=cut(self.train, n_train),
            test=cut(self.test, n_test),
            train_labels=cut(self.train_labels, n_train),
            test_labels=cut(self.test_labels, n_test),
            train_factors=cut(self.train_factors, n_train),
            test_factors=cut(self.test_factors, n_test),
        )


Draw = Callable[[np.random.Generator, int],
               tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]


def generated_dataset(spec: DataSpec, name: str, draw: Draw, factor_names: tuple[str, ...],
                      default_n_train: int, default_n_test: int) -> ImageData:
    """A generated dataset: ``draw(rng, n) → (images, labels, factors)`` for each split.

    Train and test come from two independent streams spawned from ``spec.seed``, so they never
    share a draw, and each split is a prefix of a larger one drawn with the same seed.
    """
    train_seq, test_seq = np.random.SeedSequence(spec.seed).spawn(2)
    n_train = spec.n_train if spec.n_train is not None else default_n_train
    n_test = spec.n_test if spec.n_test is not None else default_n_test
    train, train_labels, train_factors = draw(np.random.default_rng(train_seq), n_train)
    test, test_labels, test_factors = draw(np.random.default_rng(test_seq), n_test)
    return ImageData(name=name, train=train, test=test, train_labels=train_labels,
                     test_labels=test_labels, train_factors=train_factors,
                     test_factors=test_factors, factor_names=factor_names)


Loader = Callable[[DataSpec], ImageData]
DATASETS: Registry[Loader] = Registry("dataset", "data.dataset")


def load_dataset(spec: DataSpec) -> ImageData:
    """Load ``spec.dataset`` and keep the first ``n_train`` / ``n_test`` images.

    Raises:
        InputError: unknown dataset, or files missing from ``spec.root``.
    """
    data = DATASETS.get(spec.dataset)(spec)
    return data.head(spec.n_train, spec.n_test)
