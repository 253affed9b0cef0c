"""Gaussian total correlation of a representation: disentanglement_lib's unsupervised
``gaussian_total_correlation`` (Locatello et al. 2019), which needs no ground-truth factors.

The total correlation TC(z) = KL(q(z) ‖ ∏_j q(z_j)) is the quantity β-TCVAE and FactorVAE
penalise; this is its value for the Gaussian with the codes' sample covariance, so it sees
linear dependence between codes only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentbench.metrics.factor_info import check_codes


@dataclass(frozen=True)
class TotalCorrelationResult:
    """Gaussian total correlation and the covariance it is computed from.

    Attributes:
        score: TC in nats, ≥ 0; ``inf`` for a singular covariance with no constant code.
        covariance: float64 ``[d, d]``, the codes' sample covariance (normaliser N − 1).
        n_samples: the points N.
    """

    score: float
    covariance: np.ndarray
    n_samples: int


def gaussian_total_correlation(codes: np.ndarray) -> TotalCorrelationResult:
    r"""Total correlation of the Gaussian fitted to ``codes``:

    .. math::
        \mathrm{TC} = \mathrm{KL}\big(\mathcal N(0, \Sigma) \,\big\|\,
            \mathcal N(0, \operatorname{diag} \Sigma)\big)
          = \tfrac12 \Big(\sum_j \log \Sigma_{jj} - \log \det \Sigma\Big)
          = -\tfrac12 \log \det R

    with :math:`\Sigma` the sample covariance of the codes (``np.cov``, normaliser N − 1, as
    disentanglement_lib) and :math:`R = D^{-1/2} \Sigma D^{-1/2}` their correlation matrix. The
    last form is what is computed, with ``slogdet``: R has a unit diagonal, so its determinant
    does not under- or overflow with the codes' scales, and TC is invariant to them.

    0 for uncorrelated codes (the sample value of independent codes is ≈ d(d − 1)/(4N), the
    bias of −½ log det of a sample correlation matrix); −½ log(1 − ρ²) for two codes with
    correlation ρ.

    Singular covariance: when R is rank-deficient to machine precision (a code that is a linear
    combination of others, such as a duplicated code, or N ≤ d), the fitted Gaussian lies on a
    subspace, its KL from the product of its marginals is infinite, and ``score`` is ``inf``.
    A constant code (variance 0) has no Gaussian marginal at all, so TC is undefined (∞ − ∞):
    that is a ``ValueError``, leave the code out (it is independent of everything).

    Args:
        codes: float ``[N, d]``, N ≥ 2.

    Returns:
        :class:`TotalCorrelationResult`.

    Raises:
        ValueError: codes that fail :func:`~latentbench.metrics.factor_info.check_codes`; a
            constant code.
    """
    x = check_codes(codes)
    covariance = np.atleast_2d(np.cov(x, rowvar=False))
    variances = np.diag(covariance)
    constant = np.flatnonzero(variances <= 0.0)
    if constant.size:
        raise ValueError(f"codes column {constant[0]} is constant: its Gaussian marginal is "
                         f"degenerate and the total correlation undefined; leave it out")
    scale = 1.0 / np.sqrt(variances)
    correlation = covariance * scale[:, None] * scale[None, :]
    # matrix_rank's threshold (largest singular value × d × ε) is where slogdet stops meaning
    # anything: below it the determinant is rounding noise and its sign can even flip.
    if np.linalg.matrix_rank(correlation) < len(correlation):
        score = float("inf")
    else:
        sign, logdet = np.linalg.slogdet(correlation)
        score = float("inf") if sign <= 0 else max(0.0, -0.5 * float(logdet))
    covariance.flags.writeable = False
    return TotalCorrelationResult(score, covariance, len(x))
