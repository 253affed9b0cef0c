"""Diagonal-Gaussian math of the VAE: the KL to the standard normal and the reparameterization.

Both are parameterised by the log-variance ``logvar = log σ²``, which an encoder can output
unconstrained; they are property-tested against ``torch.distributions`` and Monte Carlo.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def _check_pair(mu: Tensor, logvar: Tensor) -> None:
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have one shape, got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    if mu.dim() < 1:
        raise ValueError("mu and logvar need at least one (latent) dimension")


def kl_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""KL divergence of a diagonal Gaussian posterior from the standard normal prior.

    .. math::
        \mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag} e^{\ell}) \,\|\, \mathcal N(0, I)\big)
        = \tfrac12 \sum_d \big(\mu_d^2 + e^{\ell_d} - 1 - \ell_d\big)

    with :math:`\ell = \log\sigma^2`. Gradients: :math:`\partial/\partial\mu_d = \mu_d`,
    :math:`\partial/\partial\ell_d = \tfrac12(e^{\ell_d} - 1)`.

    Args:
        mu: posterior means, shape ``[..., D]``.
        logvar: posterior log-variances, same shape.

    Returns:
        The KL in nats, summed over the last (latent) dimension: shape ``[...]``.

    Raises:
        ValueError: shapes differ or there is no latent dimension.
    """
    _check_pair(mu, logvar)
    # expm1(ℓ) − ℓ instead of exp(ℓ) − 1 − ℓ: exact near ℓ = 0, where the posterior is the prior
    # and the naive form loses every digit to cancellation.
    return 0.5 * (mu.square() + torch.expm1(logvar) - logvar).sum(dim=-1)


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    r"""Elementwise :math:`\log \mathcal N(z;\, \mu, e^{\ell}) = -\tfrac12\big(\log 2\pi + \ell
    + (z - \mu)^2 e^{-\ell}\big)`, broadcasting its arguments (sum the last axis for a
    diagonal Gaussian's density)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar))


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""Draw :math:`z = \mu + \sigma \odot \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)`,
    :math:`\sigma = e^{\ell/2}`, differentiably in ``mu`` and ``logvar``.

    Args:
        mu: means, any shape.
        logvar: log-variances, same shape.
        generator: optional ``torch.Generator`` for the noise (default: the global RNG).

    Returns:
        A sample of the same shape, dtype and device as ``mu``.

    Raises:
        ValueError: shapes differ.
    """
    _check_pair(mu, logvar)
    eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
    return mu + torch.exp(0.5 * logvar) * eps
