"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
squared MMD between real and fake features under a cubic polynomial kernel, averaged over random
subsets.

Unlike the FID it has an unbiased estimator, so values from different sample counts compare,
and it can come out negative when the two distributions agree. The subset average exists for
cost (each subset needs three subset_size² kernel matrices) and gives a spread to report; the
subsets are drawn from a seeded NumPy generator, so a score is reproducible.

Subsets of half of each set vary about the whole-set value about as much as that value varies
over new data (half-sampling), so their spread is a standard error: the default subset is at
most half the smaller set, and a subset as large as a set, whose spread is 0, draws a warning
(:func:`kid_std_error` scales other sizes).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from latentbench.metrics.feature_input import feature_matrix
from latentbench.models.registry import check_int

#: Subset size when none is asked for: Bińkowski et al.'s and torchmetrics' 1,000, at most half
#: the smaller set.
DEFAULT_SUBSET_SIZE = 1000


def default_subset_size(n_real: int, n_fake: int) -> int:
    """The subset size used when none is given: 1,000, at most half the smaller set (≥ 2)."""
    return max(2, min(DEFAULT_SUBSET_SIZE, min(n_real, n_fake) // 2))


def kid_std_error(subset_std: float, subset_size: int, n_real: int, n_fake: int,
                  subsets: int) -> float | None:
    r"""The standard error of KID's subset mean, from the spread of its subsets.

    A two-sample statistic of N real and M fake points has variance ≈ a (1/N + 1/M) to first
    order; a subset of m rows drawn without replacement from each set varies by
    a (2/m − 1/N − 1/M) about the whole-set value (the finite-population correction), and the
    mean of S random subsets adds that variance over S. Hence (the delete-d jackknife's
    scaling of Shao & Wu 1989, with both sets resampled)

    .. math::
        \mathrm{SE} = s \sqrt{\frac{1/N + 1/M}{2/m - 1/N - 1/M} + \frac1S}

    with s the subset standard deviation: s itself at m = N/2 = M/2 (the default), s/3 at
    m = 1,000 of N = M = 10,000. ``None`` where every subset is every point of both sets
    (s = 0 says nothing).
    """
    spread = 2.0 / subset_size - 1.0 / n_real - 1.0 / n_fake
    if spread <= 0.0:
        return None
    return subset_std * math.sqrt((1.0 / n_real + 1.0 / n_fake) / spread + 1.0 / subsets)


def _kernel_sums(a: torch.Tensor, b: torch.Tensor, degree: int, gamma: float, coef: float,
                 same: bool) -> torch.Tensor:
    """Σ k(a_i, b_j) over all pairs, or over i ≠ j when ``same`` (a is b)."""
    kernel = torch.mm(a, b.T).mul_(gamma).add_(coef).pow_(degree)  # in place: one matrix alive
    total = kernel.sum()
    return total - kernel.diagonal().sum() if same else total


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, *, degree: int = 3,
                    gamma: float | None = None, coef: float = 1.0) -> float:
    r"""Unbiased squared MMD between the samples ``x`` [m, d] and ``y`` [n, d] under the
    polynomial kernel :math:`k(a, b) = (\gamma\, a^\top b + c)^{\text{degree}}`:

    .. math::
        \widehat{\mathrm{MMD}}^2 = \frac{\sum_{i \ne j} k(x_i, x_j)}{m(m-1)}
            + \frac{\sum_{i \ne j} k(y_i, y_j)}{n(n-1)}
            - \frac{2 \sum_{i, j} k(x_i, y_j)}{mn}

    This is the estimator of Bińkowski et al.'s code and of torchmetrics' ``poly_mmd`` (which
    assumes m = n); the cross term keeps its i = j pairs. ``gamma=None`` means 1/d. Inputs are
    float64 tensors with m, n ≥ 2 (:func:`kid` validates and converts); the value can be
    negative.
    """
    m, n = len(x), len(y)
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = _kernel_sums(x, x, degree, gamma, coef, same=True)
    k_yy = _kernel_sums(y, y, degree, gamma, coef, same=True)
    k_xy = _kernel_sums(x, y, degree, gamma, coef, same=False)
    return float(k_xx / (m * (m - 1)) + k_yy / (n * (n - 1)) - 2.0 * k_xy / (m * n))


def subset_indices(n_real: int, n_fake: int, subsets: int, subset_size: int,
                   seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (real, fake) row indices of each KID subset: ``subset_size`` distinct rows of each
    set, drawn independently per subset from ``numpy.random.default_rng(seed)`` (real first,
    then fake). :func:`kid` uses exactly these; they are public so that a reference can be run
    on the same subsets."""
    rng = np.random.default_rng(seed)
    return [(rng.choice(n_real, subset_size, replace=False),
             rng.choice(n_fake, subset_size, replace=False)) for _ in range(subsets)]


def kid(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, *, subsets: int = 100,
        subset_size: int | None = None, degree: int = 3, gamma: float | None = None,
        coef: float = 1.0, seed: int = 0) -> tuple[float, float]:
    r"""Kernel Inception Distance between real features ``[N, d]`` and fake features ``[M, d]``.

    For each of ``subsets`` subsets, ``subset_size`` rows are drawn without replacement from
    each set (see :func:`subset_indices`) and the unbiased squared MMD
    (:func:`polynomial_mmd2`) is computed under

    .. math::
        k(x, y) = (\gamma\, x^\top y + c)^{\text{degree}}, \qquad \gamma = 1/d \text{ by default},

    the cubic kernel :math:`(x^\top y / d + 1)^3` of the paper with the defaults. Returns the
    mean and the standard deviation (normaliser S, as torchmetrics and the paper's code) of the
    per-subset values. Defaults follow torchmetrics (100 subsets of 1,000) but for the subset
    size, at most half the smaller set (:func:`default_subset_size`); Bińkowski et al.'s code
    uses 50 × 1,000.

    A ``subset_size`` that reaches ``min(N, M)`` is clipped to it, with a warning: every subset
    is then a whole set (the smaller one, or both), and when both sets are that small every
    subset is every sample, so the mean is the full-sample estimate and the std is 0 — no
    spread to report. :func:`kid_std_error` turns the std into a standard error.

    The value is unbiased, so it is comparable across sample counts and can be negative when
    the distributions agree; the std measures the subset-to-subset spread, not the error of the
    mean. Computed in float64; each subset costs three ``subset_size²`` kernel matrices
    (``subset_size × subset_size × 8`` bytes each, one at a time).

    Args:
        real: real features, shape ``[N, d]``; NumPy array or tensor (a tensor's device is used).
        fake: fake features, shape ``[M, d]``.
        subsets: number of random subsets, ≥ 1.
        subset_size: rows per subset from each set, ≥ 2; clipped to ``min(N, M)`` with a
            warning; ``None``: :func:`default_subset_size`.
        degree: polynomial degree, ≥ 1.
        gamma: kernel scale γ > 0; ``None`` for 1/d.
        coef: kernel offset c ≥ 0.
        seed: seed of the subset draws.

    Returns:
        ``(mean, std)`` of the per-subset MMD² values, as Python floats.

    Raises:
        ValueError: inputs that are not 2-D, differ in d, have fewer than 2 samples or hold NaN
            or infinite entries; a non-positive ``subsets``, ``subset_size`` below 2,
            ``degree`` below 1, ``gamma`` ≤ 0 or ``coef`` < 0.
    """
    device = real.device if isinstance(real, torch.Tensor) else None
    # The unbiased MMD² averages over pairs i ≠ j: each set needs two samples at least.
    x = feature_matrix("real", real, device, min_rows=2)
    y = feature_matrix("fake", fake, device, min_rows=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real and fake differ in feature dimension: {x.shape[1]} vs "
                         f"{y.shape[1]}")
    subsets = check_int(subsets, "subsets", minimum=1)
    if subset_size is not None:
        subset_size = check_int(subset_size, "subset_size", minimum=2)
    degree = check_int(degree, "degree", minimum=1)
    if gamma is not None and not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be None or a finite number > 0, got {gamma!r}")
    if not (np.isfinite(coef) and coef >= 0):
        raise ValueError(f"coef must be a finite number ≥ 0, got {coef!r}")

    smaller = min(len(x), len(y))
    if subset_size is None:
        size = default_subset_size(len(x), len(y))
    else:
        size = min(subset_size, smaller)
        if subset_size >= smaller:
            warnings.warn(f"KID subset size {subset_size} reaches the smaller set ({smaller} "
                          f"samples): every subset is that whole set, so the subsets' spread "
                          f"does not measure the error; use at most {smaller // 2}",
                          stacklevel=2)
    scores = np.array([
        polynomial_mmd2(x[torch.from_numpy(i_real).to(x.device)],
                        y[torch.from_numpy(i_fake).to(y.device)],
                        degree=degree, gamma=gamma, coef=coef)
        for i_real, i_fake in subset_indices(len(x), len(y), subsets, size, seed)
    ])
    return float(scores.mean()), float(scores.std())
