"""The dataset registry, the ``[data]`` section of a suite, and the in-memory image container.

Every dataset is held as float32 tensors in [0, 1], shape ``[N, C, H, W]``, so the training loop
batches by indexing a tensor and never touches single samples in Python.

``data.binarize`` makes a dataset binary, so that a Bernoulli likelihood is a proper mass
function on it and its NLL comparable with the literature (binarised MNIST): each pixel becomes
1 with probability equal to its intensity. ``static`` draws once with a fixed seed, train and
test; ``dynamic`` draws the training images anew each epoch (:meth:`ImageData.train_epoch`)
and evaluates on the same fixed draws as ``static``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from latentbench.models.registry import InputError, Registry, check_int

if TYPE_CHECKING:  # the metrics package is heavy to import, and loading data needs none of it
    from latentbench.metrics.factors import FactorSampler

#: The values of ``data.binarize``.
BINARIZATIONS = ("none", "static", "dynamic")
#: Mixed into the seeds of the Bernoulli draws, so they share no stream with a generated
#: dataset's own draws from ``data.seed``.
_BINARIZE_STREAM = 0x62696E
#: Images per Bernoulli draw: bounds the uniform noise held at once (CIFAR-10 would be 600 MB).
_DRAW_CHUNK = 4096


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
        seed: seed of the generated datasets and of the binarisation's fixed draws; fixed across
            run seeds so runs see the same data.
        binarize: ``none`` (grey pixels as they are), ``static`` (each pixel 1 with
            probability equal to its intensity, drawn once from ``seed``: the same binary
            images in every run and every epoch) or ``dynamic`` (a new draw of the training
            images each epoch, a function of ``seed``, the run's seed and the epoch; evaluation
            on the ``static`` draws).
    """

    dataset: str = "mnist5k"
    root: str | None = None
    download: bool = False
    n_train: int | None = None
    n_test: int | None = None
    channels: int | None = None
    seed: int = 0
    binarize: str = "none"

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
        if self.binarize not in BINARIZATIONS:
            raise InputError(f"data.binarize: must be one of {', '.join(BINARIZATIONS)}, got "
                             f"{self.binarize!r}")


def bernoulli_draw(intensities: torch.Tensor, seed: int, *stream: int) -> torch.Tensor:
    """Binary images: each pixel 1 with probability equal to its intensity in [0, 1].

    The uniforms come from a CPU generator seeded by ``(seed, *stream)`` and are drawn in image
    order, so the draw is the same on every machine and the first ``n`` images of a split get
    the same draw whatever the split's size. Pixels at exactly 0 or 1 stay as they are.

    Returns:
        float32, the shape of ``intensities``, values in {0, 1}, on the CPU.
    """
    state = np.random.SeedSequence([seed, _BINARIZE_STREAM, *stream]).generate_state(2)
    generator = torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)
    out = torch.empty(intensities.shape, dtype=torch.float32)
    for start in range(0, len(intensities), _DRAW_CHUNK):
        chunk = intensities[start:start + _DRAW_CHUNK].cpu()
        noise = torch.rand(chunk.shape, generator=generator)
        out[start:start + len(chunk)] = (noise < chunk).float()
    return out


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
        binarize: the ``data.binarize`` the images went through (``train`` and ``test`` are then
            binary: the fixed draws).
        train_intensities: under ``dynamic`` binarisation, the grey training images each epoch
            redraws from; ``None`` otherwise.
        binarize_seed: ``data.seed``, which seeds the draws.
        factor_sampler: draws and renders points of the dataset's ground-truth factor grid
            (``shapes``), for the disentanglement metrics; ``None`` for data without one.
    """

    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor
    test_labels: torch.Tensor
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    factor_names: tuple[str, ...] = field(default=())
    binarize: str = "none"
    train_intensities: torch.Tensor | None = None
    binarize_seed: int = 0
    factor_sampler: FactorSampler | None = None

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
            train_intensities=cut(self.train_intensities, n_train),
        )

    def binarized(self, binarize: str, seed: int) -> ImageData:
        """These images binarised as ``data.binarize = binarize`` says, from ``seed``: fixed
        draws of both splits (``static``, ``dynamic``), the grey training images kept for the
        per-epoch draws (``dynamic``); ``none`` returns ``self``."""
        if binarize not in BINARIZATIONS:
            raise InputError(f"data.binarize: must be one of {', '.join(BINARIZATIONS)}, got "
                             f"{binarize!r}")
        if binarize == "none":
            return self
        return replace(self, train=bernoulli_draw(self.train, seed, 0),
                       test=bernoulli_draw(self.test, seed, 1), binarize=binarize,
                       train_intensities=self.train if binarize == "dynamic" else None,
                       binarize_seed=seed)

    @property
    def dynamic(self) -> bool:
        """Whether the training images are redrawn each epoch (:meth:`train_epoch`)."""
        return self.train_intensities is not None

    def train_epoch(self, epoch: int, seed: int) -> torch.Tensor:
        """The training images of epoch ``epoch`` (0-based) of a run seeded ``seed``.

        Under ``dynamic`` binarisation a fresh Bernoulli draw from the grey training images,
        a function of (``data.seed``, ``seed``, ``epoch``) only, so a resumed run redraws the
        epochs it repeats exactly; otherwise :attr:`train` itself, the same every epoch.
        Float32 on the CPU.
        """
        if self.train_intensities is None:
            return self.train
        return bernoulli_draw(self.train_intensities, self.binarize_seed, 2, seed, epoch)


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
    """Load ``spec.dataset``, keep the first ``n_train`` / ``n_test`` images and binarise them
    as ``spec.binarize`` says.

    Raises:
        InputError: unknown dataset, or files missing from ``spec.root``.
    """
    data = DATASETS.get(spec.dataset)(spec)
    return data.head(spec.n_train, spec.n_test).binarized(spec.binarize, spec.seed)
