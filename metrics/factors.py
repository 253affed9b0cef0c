"""Ground-truth factors: what a dataset with known generative factors gives the disentanglement
metrics, and the one encoded pool of factor draws they all read.

A dataset with factors (``shapes``: shape × scale × orientation × x × y, the dSprites grid)
provides a :class:`FactorSampler`: it draws factor *grid indices* and renders them, so the
metrics sample the factor grid itself, as disentanglement_lib samples dSprites, never a fixed
split and never all of the grid (737,280 sprites for dSprites) at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from latentbench.models.protocol import LatentModel


class FactorSampler(Protocol):
    """Draws and renders points of a factor grid.

    Attributes:
        names: the factors' names, in column order (``shape``, ``scale``, ...).
        sizes: how many values each factor takes; a point is one index per factor,
            ``0 <= indices[:, k] < sizes[k]``.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points drawn uniformly from the grid: int64 ``[n, K]`` grid indices."""
        ...

    def render(self, indices: np.ndarray) -> Tensor:
        """The images of grid points ``indices`` (int ``[n, K]``): float32 ``[n, C, H, W]`` in
        [0, 1], the images the model was trained on."""
        ...


def sample_fixed(sampler: FactorSampler, n: int, factor: int, value: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``n`` grid points that share ``value`` of factor ``factor``, the others uniform: the
    batches of the FactorVAE score (Kim & Mnih 2018). int64 ``[n, K]``.

    Raises:
        ValueError: ``factor`` or ``value`` outside the grid.
    """
    _check_factor(sampler, factor, value)
    indices = sampler.sample(n, rng)
    indices[:, factor] = value
    return indices


def sample_pairs(sampler: FactorSampler, n: int, factor: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of grid points, each pair sharing its value of factor ``factor`` (a value
    drawn per pair), everything else independent: the pairs of the β-VAE score (Higgins et al.
    2017). Two int64 ``[n, K]`` arrays.

    Raises:
        ValueError: ``factor`` outside the grid.
    """
    _check_factor(sampler, factor, 0)
    first, second = sampler.sample(n, rng), sampler.sample(n, rng)
    second[:, factor] = first[:, factor]
    return first, second


def _check_factor(sampler: FactorSampler, factor: int, value: int) -> None:
    if not 0 <= factor < len(sampler.sizes):
        raise ValueError(f"factor: must be in 0..{len(sampler.sizes) - 1}, got {factor}")
    if not 0 <= value < sampler.sizes[factor]:
        raise ValueError(f"value: factor {sampler.names[factor]!r} takes 0..."
                         f"{sampler.sizes[factor] - 1}, got {value}")


@dataclass(frozen=True)
class FactorCodes:
    """An encoded pool of factor draws: every disentanglement metric of a run reads this one.

    Attributes:
        codes: float64 ``[n, d]``: the posterior means (an autoencoder: its codes) of the
            rendered points, the representation disentanglement_lib scores.
        factors: int64 ``[n, K]``: the points' grid indices.
        names: the factors' names.
        train: the number of leading rows that form the fitting set; the rest is the held-out
            set of the scores that train a classifier (DCI, SAP) — disentanglement_lib's
            10,000 and 5,000 points.
        seed: the seed of the draw.
    """

    codes: np.ndarray
    factors: np.ndarray
    names: tuple[str, ...]
    train: int
    seed: int

    @property
    def fit_codes(self) -> np.ndarray:
        return self.codes[:self.train]

    @property
    def fit_factors(self) -> np.ndarray:
        return self.factors[:self.train]

    @property
    def test_codes(self) -> np.ndarray:
        return self.codes[self.train:]

    @property
    def test_factors(self) -> np.ndarray:
        return self.factors[self.train:]


def encode_factor_draws(model: LatentModel, sampler: FactorSampler, train: int, test: int,
                        seed: int, batch_size: int) -> FactorCodes:
    """Draw ``train + test`` grid points uniformly (numpy generator seeded with ``seed``),
    render and encode them ``batch_size`` at a time, keeping only the codes: memory stays at
    one batch of images plus ``[n, d]`` codes, whatever the grid's size.
    """
    rng = np.random.default_rng(seed)
    indices = sampler.sample(train + test, rng)
    codes = []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            images = sampler.render(indices[start:start + batch_size]).to(model.device)
            codes.append(model.encode(images).mean.double().cpu())
    return FactorCodes(torch.cat(codes).numpy(), indices, tuple(sampler.names), train, seed)
