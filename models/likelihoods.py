"""Pixel likelihoods p(x|z): the reconstruction term of the loss, in nats per image.

Decoders output logits; the image mean is ``sigmoid(logits)`` for every likelihood, so decoded
images are always in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench.models.registry import Registry

# nll(logits, x, sigma) -> −log p(x|z) summed over pixels, one value per image.
NegLogLikelihood = Callable[[Tensor, Tensor, float], Tensor]
LIKELIHOODS: Registry[NegLogLikelihood] = Registry("likelihood", "model.likelihood")


@LIKELIHOODS.register("bernoulli")
def bernoulli_nll(logits: Tensor, x: Tensor, sigma: float) -> Tensor:
    r"""Bernoulli (binary cross-entropy with logits), summed over pixels.

    .. math:: -\sum_p \big[x_p \log s_p + (1 - x_p)\log(1 - s_p)\big], \quad
              s = \mathrm{sigmoid}(\text{logits})

    Grey values in (0, 1) are allowed (the usual practice on MNIST); computed from the logits
    for stability. ``sigma`` is unused.
    """
    per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return per_pixel.flatten(1).sum(dim=1)


@LIKELIHOODS.register("gaussian")
def gaussian_nll(logits: Tensor, x: Tensor, sigma: float) -> Tensor:
    r"""Gaussian with fixed σ around the decoded mean, summed over pixels.

    .. math:: \sum_p \frac{(x_p - \hat x_p)^2}{2\sigma^2} + \tfrac12\log(2\pi\sigma^2), \quad
              \hat x = \mathrm{sigmoid}(\text{logits})
    """
    mean = torch.sigmoid(logits)
    squared = (x - mean).square().flatten(1).sum(dim=1)
    pixels = x[0].numel()
    return squared / (2.0 * sigma**2) + 0.5 * pixels * math.log(2.0 * math.pi * sigma**2)
