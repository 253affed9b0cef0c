"""The importance-weighted bound on log p(x) (Burda et al. 2016) and the test NLL it estimates.

L_k = E log (1/k) Σ_i p(x, z_i) / q(z_i | x), z_i ~ q(z|x), satisfies L_1 = ELBO ≤ L_k ≤ L_{k+1}
≤ log p(x), and L_k → log p(x) as k grows; −L_k for large k is the test negative log-likelihood
that papers report (Burda et al. use k = 5,000).

Speed: the k·N decodes are all the work. Each image batch is encoded once; the noise is drawn
in the same generator calls as always (:data:`DRAW_BATCH`, so a seed gives the same bound), and
the decoder sees batches sized for the device (:func:`default_decode_batch`): on the CPU small
enough that a batch's activations stay in cache (the quick-suite decoders run up to 2–3× faster
per image at 256 rows than at 4,096), on CUDA as large as its free memory allows. The images and the
posterior are tiled for a decoder batch once per image batch, not once per call.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from latentbench.metrics.context import EvalContext
from latentbench.metrics.reconstruction import likelihood_details, per_image_score
from latentbench.metrics.registry import Score, register_metric
from latentbench.models.gaussian import LOG_2PI
from latentbench.models.priors import StandardNormal, prior_of
from latentbench.models.protocol import LatentModel, Posterior
from latentbench.models.registry import check_int

#: Importance samples per generator call: the noise of a batch of N images is drawn as
#: ``randn(c, N, latent_dim)`` with ``c = max(1, DRAW_BATCH // N)`` copies per call (fewer in the
#: last). Part of what a seed means — a CPU generator gives a different stream for other call
#: shapes — so it is fixed; the decoder batch (:func:`default_decode_batch`) is free.
DRAW_BATCH = 4096

#: Decoded pixels per call on the CPU: 256 images of 28 × 28. Large batches are memory-bound
#: there: the quick-suite decoders' 2× upsampled maps of 4,096 images are 200–400 MB, far past
#: the caches, and per image the nearest-upsampling decoder runs 2–3× slower and the transposed
#: one 1.3× slower than at 128–512 images (measured on one thread; flat in between). Counted in
#: pixels, so that small images (the tests' 8 × 8) still get large batches, whose per-call
#: overhead would otherwise dominate, and large ones (64 × 64 shapes) smaller ones.
CPU_DECODE_PIXELS = 256 * 28 * 28

#: On CUDA a decoder call may take this fraction of the free memory (the rest is headroom for
#: the allocator's fragmentation and for whatever else the process holds).
CUDA_MEMORY_FRACTION = 0.25

#: The largest decoder batch on CUDA: past it a GPU is saturated and a bigger batch only costs
#: memory.
MAX_DECODE_BATCH = 1 << 17

#: How ``iwae_nll`` computes ``mc_std_error``, recorded in its details.
MC_STD_ERROR_METHOD = "delta method: Var log p_hat ~ Var(w) / (k mean(w)^2); sqrt(sum var) / n"


@dataclass(frozen=True)
class IWAEEstimate:
    r"""The bound of each image of a batch and the Monte-Carlo variance of that estimate.

    Attributes:
        bound: float64 ``[N]`` on the CPU: :math:`L_k` of each image, nats.
        mc_variance: float64 ``[N]``: the delta-method variance of each image's
            :math:`\log \hat p` over the importance draws (:func:`iwae_estimate`); ``nan`` for
            k = 1, where one weight has no spread to estimate it from.
        k: importance samples per image.
    """

    bound: Tensor
    mc_variance: Tensor
    k: int


def decode_rows_for_memory(free_bytes: float, bytes_per_row: float, *,
                           fraction: float = CUDA_MEMORY_FRACTION, minimum: int = DRAW_BATCH,
                           maximum: int = MAX_DECODE_BATCH) -> int:
    """The decoder batch that takes at most ``fraction`` of ``free_bytes`` at ``bytes_per_row``:
    the largest power of two below it (a power of two keeps the choice, and with it the last
    digits of the bound, the same under small changes of the free memory), clamped to
    ``[minimum, maximum]``."""
    if bytes_per_row <= 0:
        return maximum
    rows = int(fraction * free_bytes / bytes_per_row)
    rows = 1 << (rows.bit_length() - 1) if rows >= 1 else 1
    return max(minimum, min(maximum, rows))


def default_decode_batch(device: torch.device, pixels: int) -> int | None:
    """Decoder rows per call on ``device`` for images of ``pixels`` values (C·H·W): off CUDA
    :data:`CPU_DECODE_PIXELS` of them, between 1 and :data:`DRAW_BATCH` images; ``None`` on
    CUDA, where :func:`iwae_estimate` sizes it to the free memory after its first decoder
    call."""
    if device.type == "cuda":
        return None
    return max(1, min(DRAW_BATCH, CPU_DECODE_PIXELS // max(1, pixels)))


def _tile(posterior: Posterior, copies: int) -> Posterior:
    """The posterior of ``copies`` stacked copies of the batch (copy-major, as ``repeat``)."""
    if copies == 1:
        return posterior

    def tile(t: Tensor) -> Tensor:
        return t.repeat(copies, *([1] * (t.dim() - 1)))

    return Posterior(mean=tile(posterior.mean),
                     logvar=None if posterior.logvar is None else tile(posterior.logvar),
                     switches=None if posterior.switches is None else
                     tuple(tile(s) for s in posterior.switches))


def _rows(posterior: Posterior, start: int, stop: int) -> Posterior:
    """Rows ``start:stop`` of every tensor of ``posterior`` (views, no copy)."""
    return Posterior(mean=posterior.mean[start:stop],
                     logvar=None if posterior.logvar is None else posterior.logvar[start:stop],
                     switches=None if posterior.switches is None else
                     tuple(s[start:stop] for s in posterior.switches))


class _CopyQueue:
    """Importance samples in the order they were drawn, handed out ``size`` copies at a time.

    The generator's calls have the fixed shapes of :data:`DRAW_BATCH`; the decoder's batches
    have the device's. The queue joins or splits the draws so every decoder call is full (the
    last may be short), whatever the two sizes are.
    """

    def __init__(self, draws: Iterator[tuple[Tensor, Tensor]]) -> None:
        self._draws = draws
        self._z: list[Tensor] = []
        self._log_ratio: list[Tensor] = []
        self._held = 0

    def take(self, size: int) -> tuple[Tensor, Tensor] | None:
        """The next ``size`` copies ``(z [c, N, d], log p(z) − log q(z|x) [c, N])``, fewer at
        the end, ``None`` when every draw has been handed out."""
        while self._held < size:
            drawn = next(self._draws, None)
            if drawn is None:
                break
            self._z.append(drawn[0])
            self._log_ratio.append(drawn[1])
            self._held += len(drawn[0])
        if not self._held:
            return None
        # One tensor is sliced, not copied: a draw split over several calls is never copied.
        z, log_ratio = ((self._z[0], self._log_ratio[0]) if len(self._z) == 1 else
                        (torch.cat(self._z), torch.cat(self._log_ratio)))
        self._z, self._log_ratio = [z[size:]], [log_ratio[size:]]
        self._held = len(self._z[0])
        return z[:size], log_ratio[:size]


def _draws(mean: Tensor, logvar: Tensor, k: int, generator: torch.Generator | None,
           log_prior: Callable[[Tensor], Tensor] | None = None
           ) -> Iterator[tuple[Tensor, Tensor]]:
    """The importance samples of one batch, in today's generator calls (:data:`DRAW_BATCH`):
    ``(z [c, N, d], log p(z) − log q(z|x) [c, N])``, float64 on the CPU. ``log_prior``: log p(z)
    of float64 CPU codes for a prior other than N(0, I) (``None``)."""
    std = torch.exp(0.5 * logvar)
    per_call = max(1, DRAW_BATCH // len(mean))
    for start in range(0, k, per_call):
        eps = torch.randn(min(per_call, k - start), *mean.shape, dtype=torch.float64,
                          generator=generator)
        z = mean + std * eps
        if log_prior is None:
            # log N(z; 0, I) − log N(z; μ, σ²) with (z − μ)/σ = ε taken from the noise,
            # exactly: ½ Σ_d (ε² + ℓ − z²); the 2π terms cancel and are never added.
            yield z, 0.5 * (eps.square() + logvar - z.square()).sum(-1)
        else:
            # −log q(z|x) from the noise as above, ½ Σ_d (ε² + ℓ + log 2π), plus the prior's.
            yield z, log_prior(z) + 0.5 * (eps.square() + logvar + LOG_2PI).sum(-1)


@torch.no_grad()
def iwae_estimate(model: LatentModel, x: Tensor, k: int,
                  generator: torch.Generator | None = None, *,
                  decode_batch: int | None = None) -> IWAEEstimate:
    r"""The importance-weighted bound :math:`L_k` of each image, with k samples from the
    encoder, and the Monte-Carlo variance of each estimate.

    .. math::
        L_k(x) = \log \hat p(x), \quad \hat p(x) = \frac1k \sum_{i=1}^k w_i, \quad
        w_i = \frac{p(x \mid z_i)\, p(z_i)}{q(z_i \mid x)}, \quad z_i \sim q(z \mid x)

    with :math:`-\log p(x|z)` = ``model.reconstruction_nll(model.decode_posterior(z, q), x)``,
    :math:`p(z)` the model's prior (:func:`~latentbench.models.priors.prior_of`; N(0, I) unless
    ``model.prior`` says otherwise) and :math:`q(z|x) = \mathcal N(\mu, \operatorname{diag}
    e^{\ell})` from ``model.encode(x)``. One draw of :math:`L_k(x)`: its expectation over the
    draws is the bound, :math:`\mathbb E L_1` the ELBO, and it rises to :math:`\log p(x)` with k.

    The noise :math:`\varepsilon` is drawn on the CPU in float64 from ``generator`` (the same
    bound on every device), in calls of :data:`DRAW_BATCH` (a seed's draws never depend on the
    decoder batch), and for N(0, I) :math:`\log p(z) - \log q(z|x) = \tfrac12 \sum_d
    (\varepsilon_d^2 + \ell_d - z_d^2)` is taken from it (another prior adds its
    ``log_prob(z)`` to :math:`-\log q = \tfrac12 \sum_d (\varepsilon_d^2 + \ell_d +
    \log 2\pi)`), not from :math:`(z - \mu)/\sigma`, which loses digits when σ is small.
    The log-weights stream into float64 running ``logsumexp`` sums of :math:`\log w` and
    :math:`2 \log w`, so the k weights never exist at once.

    The variance is the delta method's, :math:`\operatorname{Var} \log \hat p \approx
    \operatorname{Var}(w) / (k\, \bar w^2)`, with the sample variance of the weights (normaliser
    k − 1), computed in log space from the two sums :math:`S_1 = \sum w_i`, :math:`S_2 =
    \sum w_i^2`:

    .. math::
        \widehat{\operatorname{Var}} \log \hat p = \frac{k S_2 / S_1^2 - 1}{k - 1}
        = \frac{\operatorname{expm1}(\log k + \log S_2 - 2 \log S_1)}{k - 1}

    (:math:`k S_2/S_1^2 = k/\mathrm{ESS}` lies in [1, k], so it is at most 1 nat²). It is first
    order in 1/k and trusts the weights' sample variance: with heavy-tailed weights (an
    effective sample size far below k) it understates the error.

    Args:
        model: a model with a Gaussian posterior (capability ``variational``).
        x: images ``[N, C, H, W]`` on the model's device.
        k: importance samples per image, ≥ 1.
        generator: CPU generator for the noise (default: the global one).
        decode_batch: decoder rows per call, a speed setting only (the bound is the same to
            float32 rounding); ``None``: :func:`default_decode_batch`, on CUDA sized to the
            memory left free after the first call (:func:`decode_rows_for_memory`).

    Returns:
        The bounds and variances, float64 ``[N]`` on the CPU (:class:`IWAEEstimate`).

    Raises:
        ValueError: ``k`` or ``decode_batch`` below 1, or an encoder without a log-variance.
    """
    k = check_int(k, "k", minimum=1)
    if decode_batch is not None:
        decode_batch = check_int(decode_batch, "decode_batch", minimum=1)
    posterior = model.encode(x)
    if posterior.logvar is None:
        raise ValueError(f"{type(model).__name__} has a deterministic encoder: the IWAE bound "
                         f"needs a Gaussian posterior q(z|x)")
    device, dtype = posterior.mean.device, posterior.mean.dtype
    count = len(x)
    rows = decode_batch or default_decode_batch(device, x[0].numel())
    # CUDA without a size: the first call decodes a draw's worth and measures its memory.
    probe = rows is None
    prior = prior_of(model)
    # N(0, I) keeps the exact closed-form ratio; another prior evaluates log p(z) where it
    # lives, in its dtype.
    log_prior = None if isinstance(prior, StandardNormal) else (
        lambda z: prior.log_prob(prior.cast(z)).double().cpu())
    queue = _CopyQueue(_draws(posterior.mean.double().cpu(), posterior.logvar.double().cpu(), k,
                              generator, log_prior))
    log_sum = torch.full((count,), -math.inf, dtype=torch.float64)
    log_sum_sq = log_sum.clone()
    tiled_copies = 0
    while True:
        # Whole copies of the batch per call, or one copy in slices when N exceeds the rows.
        copies = max(1, (rows or DRAW_BATCH) // count)
        if copies != tiled_copies:
            # Copy-major rows, as the draws: row j·N + i is sample j of image i. Tiled once per
            # batch size, and a short call takes the leading rows, a view.
            x_tiled = x.repeat(copies, *([1] * (x.dim() - 1))) if copies > 1 else x
            posterior_tiled, tiled_copies = _tile(posterior, copies), copies
        block = queue.take(copies)
        if block is None:
            break
        z, log_ratio = block
        if probe:
            allocated = torch.cuda.memory_allocated(device)
        flat = z.flatten(0, 1).to(device=device, dtype=dtype)
        step = len(flat) if copies > 1 else min(count, rows or count)
        nll = torch.cat([model.reconstruction_nll(
            model.decode_posterior(flat[start:start + step],
                                   _rows(posterior_tiled, start, start + step)),
            x_tiled[start:start + step]) for start in range(0, len(flat), step)])
        if probe:
            # The peak since the process started bounds this call's from above (it is this
            # call's whenever this call set it), so the rows per byte are never overestimated.
            per_row = (torch.cuda.max_memory_allocated(device) - allocated) / len(flat)
            free = (torch.cuda.mem_get_info(device)[0] + torch.cuda.memory_reserved(device)
                    - torch.cuda.memory_allocated(device))
            rows, probe = decode_rows_for_memory(free, per_row), False
        log_w = log_ratio - nll.to(device="cpu", dtype=torch.float64).view(len(z), count)
        log_sum = torch.logaddexp(log_sum, torch.logsumexp(log_w, dim=0))
        log_sum_sq = torch.logaddexp(log_sum_sq, torch.logsumexp(2.0 * log_w, dim=0))
    log_k = math.log(k)
    if k > 1:
        # log(k S₂ / S₁²) ≥ 0 by Cauchy–Schwarz; clamped against rounding below it.
        ratio = (log_k + log_sum_sq - 2.0 * log_sum).clamp_min(0.0)
        variance = torch.expm1(ratio) / (k - 1)
    else:
        variance = torch.full_like(log_sum, math.nan)
    return IWAEEstimate(bound=log_sum - log_k, mc_variance=variance, k=k)


def iwae_bound(model: LatentModel, x: Tensor, k: int, generator: torch.Generator | None = None,
               *, decode_batch: int | None = None) -> Tensor:
    """:math:`L_k` of each image, float64 ``[N]`` on the CPU: the ``bound`` of
    :func:`iwae_estimate` (see there for the arguments)."""
    return iwae_estimate(model, x, k, generator, decode_batch=decode_batch).bound


@register_metric("iwae_nll", higher_is_better=False, family="likelihood", bound=True,
                 needs={"variational"}, unit="nats/image", uses_prior=True)
def iwae_nll(ctx: EvalContext) -> Score:
    r"""Test NLL estimate −L_k, the IWAE bound with k = ``eval.iwae_k`` samples, averaged over
    the first ``eval.iwae_images`` test images (all by default).

    An upper bound on −log p(x) in expectation that tightens as k grows (≤ ``neg_elbo``);
    compare models at equal k.

    Two standard errors:

    - ``std_error``: over the test set, the spread of the per-image −L_k divided by √N (image
      to image variation plus the draws' noise): how much another test set would move it;
    - ``details["mc_std_error"]``: of the importance sampling alone, for these N images,
      :math:`\sqrt{\sum_i \widehat{\operatorname{Var}} \log \hat p(x_i)} / N` with each image's
      delta-method variance (:func:`iwae_estimate`): how much another seed would move it, the
      part that k controls. ``None`` for k = 1.

    Details also hold ``k``, ``images`` (N), the likelihood and the binarisation. A request for
    more images than the test set has uses them all, with a warning.
    """
    k, wanted = ctx.settings.iwae_k, ctx.settings.iwae_images
    images = ctx.test_images
    if wanted is not None:
        if wanted > len(images):
            warnings.warn(f"eval.iwae_images = {wanted} exceeds the {len(images)} test images; "
                          f"using all of them", stacklevel=2)
        images = images[:wanted]
    generator = ctx.generator()
    estimates = [iwae_estimate(ctx.model, x, k, generator) for x in ctx.batches(images)]
    bounds = torch.cat([e.bound for e in estimates])
    variance = torch.cat([e.mc_variance for e in estimates])
    count = len(bounds)
    mc_std_error = float(variance.sum().sqrt()) / count if k > 1 else None
    if mc_std_error is not None and not math.isfinite(mc_std_error):
        mc_std_error = None
    return per_image_score(-bounds, details={
        "k": k, "images": count, "mc_std_error": mc_std_error,
        "mc_std_error_method": MC_STD_ERROR_METHOD, **likelihood_details(ctx)})
