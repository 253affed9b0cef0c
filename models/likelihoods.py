"""Pixel likelihoods p(x|z): the reconstruction term of the loss, in nats per image.

Decoders output logits; the image mean is ``sigmoid(logits)`` for every likelihood, so decoded
images are always in [0, 1]. A likelihood is a module because one of them learns its σ.

Each likelihood states its :attr:`support`, the pixel values on which it is a proper density
(or mass function), so that a likelihood metric can say whether its nats are a density's:

- ``bernoulli``: ``"binary"``, a mass function on {0, 1}. On grey pixels its "NLL" is a
  cross-entropy with a floor above 0 (mnist5k: 46.4 nats per image, 18.8 % of the test pixels
  grey); compare it with the literature on binarised data only (``data.binarize``).
- ``gaussian``, ``gaussian-learned``: ``"real"``, a density on the real line (pixels in [0, 1]
  are a subset, so its NLL is an upper bound on a density's on [0, 1]).
- ``continuous-bernoulli``: ``"unit-interval"``, a density on [0, 1] (Loaiza-Ganem and
  Cunningham 2019), the Bernoulli made proper for grey pixels.
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

    Grey values in (0, 1) are allowed (the usual practice on MNIST), but the Bernoulli is then
    not a density on [0, 1] and its minimum over the decoder is the binary entropy of the
    pixels, not 0; computed from the logits for stability.
    """

    support = "binary"

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

    support = "real"

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

    support = "real"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.log_sigma = nn.Parameter(torch.tensor(math.log(spec.sigma)))

    def forward(self, logits: Tensor, x: Tensor) -> Tensor:
        return _gaussian_nll(logits, x, self.log_sigma)


#: Below this |logit| the log-normaliser of the continuous Bernoulli is its Taylor series.
_CB_TAYLOR = 0.05


def continuous_bernoulli_log_norm(logits: Tensor) -> Tensor:
    r"""The log-normaliser :math:`\log C(\lambda)` of the continuous Bernoulli, from the logits
    :math:`l = \log\frac{\lambda}{1 - \lambda}`, elementwise.

    .. math::
        C(\lambda) = \frac{2 \operatorname{artanh}(1 - 2\lambda)}{1 - 2\lambda}
                   = \frac{l}{\tanh(l / 2)}, \qquad C(\tfrac12) = 2

    (with :math:`1 - 2\lambda = -\tanh(l/2)` and :math:`\operatorname{artanh}(1 - 2\lambda) =
    -l/2`). In λ the ratio is 0/0 at ½ and loses every digit near it; in the logits there is no
    cancellation. For :math:`|l| \ge 0.05`, :math:`\log C = \log|l| - \log\tanh(|l|/2)` with
    :math:`\log\tanh(a/2) = \operatorname{log1p}(-e^{-a}) - \operatorname{log1p}(e^{-a})`,
    exact for large :math:`|l|` (λ near 0 or 1); below, with :math:`u = l/2`, the series
    :math:`\log(u\coth u) = u^2/3 - 7u^4/90 + 62u^6/2835 - \dots` (truncation error < 1e-15).
    """
    a = logits.abs()
    safe = torch.where(a < _CB_TAYLOR, torch.ones_like(a), a)  # no log(0) in either branch
    direct = torch.log(safe) - (torch.log1p(-torch.exp(-safe)) - torch.log1p(torch.exp(-safe)))
    u2 = (0.5 * logits).square()
    series = u2 * (1.0 / 3.0 + u2 * (-7.0 / 90.0 + u2 * (62.0 / 2835.0)))
    return torch.where(a < _CB_TAYLOR, math.log(2.0) + series, direct)


@LIKELIHOODS.register("continuous-bernoulli")
class ContinuousBernoulliLikelihood(nn.Module):
    r"""Continuous Bernoulli, a proper density on [0, 1] for grey pixels, summed over pixels.

    Loaiza-Ganem and Cunningham 2019, "The continuous Bernoulli: fixing a pervasive error in
    variational autoencoders".

    .. math::
        -\log p(x \mid \lambda) = -\sum_p \big[x_p \log \lambda_p + (1 - x_p)\log(1 -
        \lambda_p) + \log C(\lambda_p)\big], \quad \lambda = \mathrm{sigmoid}(\text{logits})

    The Bernoulli cross-entropy minus the log-normaliser
    (:func:`continuous_bernoulli_log_norm`), both from the logits; finite for every finite logit.
    Being a density, it can exceed 1, so −log p(x|z) can be negative. ``sigmoid(logits)`` is the
    shape parameter λ; the mean of the distribution is :math:`\lambda/(2\lambda - 1) +
    1/(2\operatorname{artanh}(1 - 2\lambda))`, which lies between λ and ½.
    """

    support = "unit-interval"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()

    def forward(self, logits: Tensor, x: Tensor) -> Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return (bce - continuous_bernoulli_log_norm(logits)).flatten(1).sum(1)
