"""The importance-weighted bound on log p(x) (Burda et al. 2016) and the test NLL it estimates.

L_k = E log (1/k) Σ_i p(x, z_i) / q(z_i | x), z_i ~ q(z|x), satisfies L_1 = ELBO ≤ L_k ≤ L_{k+1}
≤ log p(x), and L_k → log p(x) as k grows; −L_k for large k is the test negative log-likelihood
that papers report (Burda et al. use k = 5,000).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentbench.metrics.context import EvalContext
from latentbench.metrics.reconstruction import likelihood_details, per_image_score
from latentbench.metrics.registry import Score, register_metric
from latentbench.models.protocol import LatentModel, Posterior
from latentbench.models.registry import check_int

#: Decoded images per decoder call: the importance samples of a batch go through the decoder in
#: chunks of about this many, so memory stays bounded whatever k is.
DECODE_BATCH = 4096

_LOG_2PI = math.log(2.0 * math.pi)


def _tile(posterior: Posterior, copies: int) -> Posterior:
    """The posterior of ``copies`` stacked copies of the batch (copy-major, as ``repeat``)."""

    def tile(t: Tensor) -> Tensor:
        return t.repeat(copies, *([1] * (t.dim() - 1)))

    return Posterior(mean=tile(posterior.mean),
                     logvar=None if posterior.logvar is None else tile(posterior.logvar),
                     switches=None if posterior.switches is None else
                     tuple(tile(s) for s in posterior.switches))


@torch.no_grad()
def iwae_bound(model: LatentModel, x: Tensor, k: int, generator: torch.Generator | None = None,
               *, decode_batch: int = DECODE_BATCH) -> Tensor:
    r"""The importance-weighted bound :math:`L_k` of each image, with k samples from the encoder.

    .. math::
        L_k(x) = \log \frac1k \sum_{i=1}^k
            \frac{p(x \mid z_i)\, p(z_i)}{q(z_i \mid x)}, \quad z_i \sim q(z \mid x)

    with :math:`-\log p(x|z)` = ``model.reconstruction_nll(model.decode_posterior(z, q), x)``,
    :math:`p(z) = \mathcal N(0, I)` and :math:`q(z|x) = \mathcal N(\mu, \operatorname{diag}
    e^{\ell})` from ``model.encode(x)``. One draw of :math:`L_k(x)`: its expectation over the
    draws is the bound, :math:`\mathbb E L_1` the ELBO, and it rises to :math:`\log p(x)` with k.

    The noise :math:`\varepsilon` is drawn on the CPU in float64 from ``generator`` (the same
    bound on every device), and :math:`\log q(z|x) = -\tfrac12 \sum_d (\varepsilon_d^2 + \ell_d
    + \log 2\pi)` is taken from it, not from :math:`(z - \mu)/\sigma`, which loses digits when σ
    is small. The log-weights are reduced by a running ``logsumexp`` in float64, so the k
    weights never exist at once: the decoder sees about ``decode_batch`` images per call.

    Args:
        model: a model with a Gaussian posterior (capability ``variational``).
        x: images ``[N, C, H, W]`` on the model's device.
        k: importance samples per image, ≥ 1.
        generator: CPU generator for the noise (default: the global one).
        decode_batch: images per decoder call (at least one importance sample of the batch).

    Returns:
        float64 ``[N]`` on the CPU: :math:`L_k` of each image, nats.

    Raises:
        ValueError: ``k`` or ``decode_batch`` below 1, or an encoder without a log-variance.
    """
    k = check_int(k, "k", minimum=1)
    if decode_batch < 1:
        raise ValueError(f"decode_batch must be >= 1, got {decode_batch!r}")
    posterior = model.encode(x)
    if posterior.logvar is None:
        raise ValueError(f"{type(model).__name__} has a deterministic encoder: the IWAE bound "
                         f"needs a Gaussian posterior q(z|x)")
    mean, logvar = posterior.mean.double().cpu(), posterior.logvar.double().cpu()
    std = torch.exp(0.5 * logvar)
    count = len(x)
    per_call = max(1, decode_batch // count)
    total = torch.full((count,), -math.inf, dtype=torch.float64)
    for start in range(0, k, per_call):
        copies = min(per_call, k - start)
        eps = torch.randn(copies, *mean.shape, dtype=torch.float64, generator=generator)
        z = mean + std * eps
        log_q = -0.5 * (eps.square() + logvar + _LOG_2PI).sum(-1)
        log_prior = -0.5 * (z.square() + _LOG_2PI).sum(-1)
        flat = z.flatten(0, 1).to(device=posterior.mean.device, dtype=posterior.mean.dtype)
        logits = model.decode_posterior(flat, _tile(posterior, copies))
        nll = model.reconstruction_nll(logits, x.repeat(copies, *([1] * (x.dim() - 1))))
        log_weights = log_prior - log_q - nll.double().cpu().view(copies, count)
        total = torch.logaddexp(total, torch.logsumexp(log_weights, dim=0))
    return total - math.log(k)


@register_metric("iwae_nll", higher_is_better=False, family="likelihood", bound=True,
                 needs={"variational"}, unit="nats/image")
def iwae_nll(ctx: EvalContext) -> Score:
    """Test NLL estimate −L_k, the IWAE bound with k = eval.iwae_k samples, averaged over images.

    An upper bound on −log p(x) in expectation that tightens as k grows (≤ ``neg_elbo``);
    compare models at equal k. ``std_error``: the spread of the per-image −L_k over test images
    divided by √N; details: ``k``, the likelihood and the binarisation.
    """
    k, generator = ctx.settings.iwae_k, ctx.generator()
    bounds = torch.cat([iwae_bound(ctx.model, x, k, generator)
                        for x in ctx.batches(ctx.test_images)])
    return per_image_score(-bounds, details={"k": k, **likelihood_details(ctx)})
