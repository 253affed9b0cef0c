"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
squared MMD between real and fake features under a cubic polynomial kernel, averaged over random
subsets.

Unlike the FID it has an unbiased estimator, so values from different sample counts compare,
and it can come out negative when the two distributions agree. The subset average exists for
cost (each subset needs three subset_size² kernel matrices) and gives a spread to report; the
subsets are drawn from a seeded NumPy generator, so a score is reproducible.
"""

from __future__ import annotations

import numpy as np
import torch

from latentbench.metrics.feature_input import feature_matrix
from latentbench.models.registry import check_int


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
        subset_size: int = 1000, degree: int = 3, gamma: float | None = None, coef: float = 1.0,
        seed: int = 0) -> tuple[float, float]:
    r"""Kernel Inception Distance between real features ``[N, d]`` and fake features ``[M, d]``.

    For each of ``subsets`` subsets, ``subset_size`` rows are drawn without replacement from
    each set (see :func:`subset_indices`) and the unbiased squared MMD
    (:func:`polynomial_mmd2`) is computed under

    .. math::
        k(x, y) = (\gamma\, x^\top y + c)^{\text{degree}}, \qquad \gamma = 1/d \text{ by default},

    the cubic kernel :math:`(x^\top y / d + 1)^3` of the paper with the defaults. Returns the
    mean and the standard deviation (normaliser S, as torchmetrics and the paper's code) of the
    per-subset values. Defaults follow torchmetrics (100 subsets of 1,000); Bińkowski et al.'s
    code uses 50 × 1,000.

    ``subset_size`` is clipped to ``min(N, M)``: with fewer samples than asked every subset is a
    whole set (the smaller one, or both), and when both sets are that small every subset is
    every sample, so the mean is the full-sample estimate and the std is 0.

    The value is unbiased, so it is comparable across sample counts and can be negative when
    the distributions agree; the std measures the subset-to-subset spread, not the error of the
    mean. Computed in float64; each subset costs three ``subset_size²`` kernel matrices
    (``subset_size × subset_size × 8`` bytes each, one at a time).

    Args:
        real: real features, shape ``[N, d]``; NumPy array or tensor (a tensor's device is used).
        fake: fake features, shape ``[M, d]``.
        subsets: number of random subsets, ≥ 1.
        subset_size: rows per subset from each set, ≥ 2; clipped to ``min(N, M)``.
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
    subset_size = check_int(subset_size, "subset_size", minimum=2)
    degree = check_int(degree, "degree", minimum=1)
    if gamma is not None and not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be None or a finite number > 0, got {gamma!r}")
    if not (np.isfinite(coef) and coef >= 0):
        raise ValueError(f"coef must be a finite number ≥ 0, got {coef!r}")

    size = min(subset_size, len(x), len(y))
    scores = np.array([
        polynomial_mmd2(x[torch.from_numpy(i_real).to(x.device)],
                        y[torch.from_numpy(i_fake).to(y.device)],
                        degree=degree, gamma=gamma, coef=coef)
        for i_real, i_fake in subset_indices(len(x), len(y), subsets, size, seed)
    ])
    return float(scores.mean()), float(scores.std())
