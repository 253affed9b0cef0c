"""Pixel likelihoods p(x|z): the reconstruction term of the loss, in nats per image.

Decoders output logits; the image mean is ``sigmoid(logits)`` for every likelihood, so decoded
images are always in [0, 1]. A likelihood is a module because one of them learns its σ.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentbench.models.protocol import ModelSpec
from latentbench.models.registry import Registry

LIKELIHOODS: Registry[Callable[[ModelSpec], nn.Module]] = Registry("likelihood",
                                                                   "model.likelihood")


def _gaussian_nll(logits: Tensor, x: Tensor, log_sigma: Tensor) -> Tensor:
    squared = (x - torch.sigmoid(logits)).square().flatten(1).sum(dim=1)
    pixels = x[0].numel()
    return (squared * torch.exp(-2.0 * log_sigma) / 2.0
            + pixels * (log_sigma + 0.5 * math.log(2.0 * math.pi)))


@LIKELIHOODS.register("bernoulli")
class BernoulliLikelihood(nn.Module):
    r"""Bernoulli (binary cross-entropy with logits), summed over pixels.

    .. math:: -\sum_p \big[x_p \log s_p + (1 - x_p)\log(1 - s_p)\big], \quad
              s = \mathrm{sigmoid}(\text{logits})

    Grey values in (0, 1) are allowed (the usual practice on MNIST); computed from the logits
    for stability.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()

    def forward(self, logits: Tensor, x: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


@LIKELIHOODS.register("gaussian")
class GaussianLikelihood(nn.Module):
    r"""Gaussian with fixed σ (``model.sigma``) around the decoded mean, summed over pixels.

    .. math:: \sum_p \frac{(x_p - \hat x_p)^2}{2\sigma^2} + \tfrac12\log(2\pi\sigma^2), \quad
              \hat x = \mathrm{sigmoid}(\text{logits})
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.register_buffer("log_sigma", torch.tensor(math.log(spec.sigma)))

    def forward(self, logits: Tensor, x: Tensor) -> Tensor:
        return _gaussian_nll(logits, x, self.log_sigma)


@LIKELIHOODS.register("gaussian-learned")
class LearnedGaussianLikelihood(nn.Module):
    """Gaussian whose one shared σ is learned with the model (σ-VAE, Rybkin et al. 2021).

    Starts at ``model.sigma``. Learning σ lets the data set the balance between reconstruction
    and KL that a fixed σ would impose: at the optimum σ² is the mean squared error.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.log_sigma = nn.Parameter(torch.tensor(math.log(spec.sigma)))

    def forward(self, logits: Tensor, x: Tensor) -> Tensor:
        return _gaussian_nll(logits, x, self.log_sigma)
