"""Latent coverage: how many latent units the encoder uses, how much information its codes carry,
and how well the encoded test set fills the distribution the model samples its codes from.

- ``active_units`` (Burda et al. 2016): unit u is active if Var_x(E_q[z_u | x]) > 0.01.
- ``mutual_info``: I_q(x; z) of the encoder's joint q(x, z) = p_data(x) q(z|x), estimated as He
  et al. (2019, "Lagging Inference Networks") do, over the whole test split.
- ``agg_posterior_kl``: KL(q(z) ‖ p(z)) of the aggregate posterior q(z) = E_x q(z|x) from the
  prior, by ELBO surgery (Hoffman & Johnson 2016): rate = I_q + KL(q(z) ‖ p(z)). Its details hold
  the KL per latent dimension.
- ``prior_mmd``: MMD² between codes of test images and codes the model samples from (WAE, IMQ
  kernel).
- ``prior_coverage``, ``prior_holes``: PRDC-style coverage in latent space, encoded test means as
  the "real" set and sampled codes as the "fake" one.

"The prior" is the distribution :meth:`~latentbench.models.protocol.LatentModel.sample` decodes,
as :meth:`sample_latent` draws it: N(0, I) for a VAE; for an AE, which has no prior, the Gaussian
fitted to its training codes. Against N(0, I) an unregularised AE code space would score its
arbitrary scale, not how well the model can sample. Whether the decoded prior samples land on
the data manifold is the ``precision[extractor]`` of the samples, computed with the FID family.

All latent quantities are float64 on the CPU: the posterior parameters come from the shared test
pass (:attr:`EvalContext.test_pass`), and the random draws from :meth:`EvalContext.generator`,
once per evaluation (:func:`latent_draws`), so every metric here sees the same codes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentbench.metrics.context import EvalContext
from latentbench.metrics.feature_input import feature_matrix
from latentbench.metrics.prdc import prdc
from latentbench.metrics.registry import Score, register_metric
from latentbench.models.gaussian import kl_normal, reparameterize

#: Burda et al.'s activity threshold on Var_x(E_q[z_u | x]).
ACTIVITY_THRESHOLD = 0.01
#: The neighbour whose distance is a point's radius in prior coverage and holes (Naeem et al.).
COVERAGE_K = 5
#: Multiples of 2·d_z·σ²_p summed in the IMQ kernel (Tolstikhin et al. 2018, WAE code).
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
# float64 entries of one pairwise block (32 MiB): the N × N matrices of the mutual information and
# the MMD never exist whole, so 50,000 codes cost no more memory than 1,000.
_BLOCK_ENTRIES = 2**22


def _rows_per_block(columns: int) -> int:
    return max(1, _BLOCK_ENTRIES // max(columns, 1))


def _codes(name: str, value: Tensor, min_rows: int = 2) -> Tensor:
    """``value`` as a checked float64 ``[N, d]`` CPU tensor (finite, at least ``min_rows``)."""
    return feature_matrix(name, value, torch.device("cpu"), min_rows=min_rows)


def unit_variances(mean: Tensor) -> Tensor:
    r"""The activity of each latent unit: :math:`A_u = \mathrm{Var}_x(\mathbb E_q[z_u \mid x])`.

    Burda et al. (2016) call unit u active when :math:`A_u > 0.01`; a unit whose posterior mean
    does not move with x carries no information about x, whatever its posterior variance.

    Args:
        mean: posterior means (an AE: its codes) of N ≥ 2 images, ``[N, d_z]``.

    Returns:
        float64 ``[d_z]``: the variance of each column over the images (normaliser N − 1).

    Raises:
        ValueError: not 2-D, fewer than 2 rows, or non-finite entries.
    """
    return _codes("mean", mean).var(0, correction=1)


def _log_density_block(z: Tensor, mean: Tensor, inv_var: Tensor, scaled_mean: Tensor,
                       offset: Tensor) -> Tensor:
    """log N(z_i; μ_n, diag σ²_n) for every row z_i of ``z`` and every posterior n: ``[c, N]``.

    Σ_d (z_d − μ_nd)²/σ²_nd expands into two matrix products, Σ z² σ⁻² − 2 Σ z μ σ⁻² + Σ μ² σ⁻²:
    ~50× faster than the broadcast differences, which cost c·N·d_z memory traffic. Callers centre
    z and μ first, so the round-off is that of the spread of the codes, not of their offset.
    """
    quadratic = torch.addmm(offset.unsqueeze(0), z.square(), inv_var.T)
    return quadratic.addmm_(z, scaled_mean.T, alpha=-2.0).mul_(-0.5)


def mutual_information(mean: Tensor, logvar: Tensor, z: Tensor | None = None,
                       generator: torch.Generator | None = None) -> float:
    r"""Mutual information :math:`I_q(x; z)` between the images and their codes under the
    encoder, estimated over the N given posteriors (He et al. 2019).

    .. math::
        \hat I = \frac1N \sum_i \Big[\log q(z_i \mid x_i) - \log \hat q(z_i)\Big], \quad
        \log \hat q(z) = \operatorname{logsumexp}_n \log q(z \mid x_n) - \log N, \quad
        z_i \sim q(z \mid x_i)

    with :math:`q(z \mid x_n) = \mathcal N(\mu_n, \operatorname{diag} e^{\ell_n})` and one draw
    per posterior. He et al. take :math:`\mathbb E \log q(z|x)` from the entropy in closed form;
    here it is the same draw's density, read from the same matrix as :math:`\hat q(z_i)`, so that
    each term is at most :math:`\log N` (the n = i summand alone is :math:`q(z_i|x_i)/N`) — not
    only in expectation. Hence the estimate is **bounded above by log N** whatever the true
    information: well-separated posteriors saturate it (1,000 test images: 6.9 nats), so compare
    models only at equal N and use as many points as there are. All N² densities are computed,
    in blocks of rows, in float64.

    Args:
        mean: posterior means ``[N, d_z]``, N ≥ 2.
        logvar: posterior log-variances, same shape.
        z: one draw from each posterior, same shape; ``None`` draws them with ``generator``.
        generator: CPU generator for the draws when ``z`` is ``None``.

    Returns:
        :math:`\hat I` in nats, in :math:`(-\infty, \log N]`; 0 when all posteriors are equal.

    Raises:
        ValueError: shapes differ, fewer than 2 rows, or non-finite entries.
    """
    mean, logvar = _codes("mean", mean), _codes("logvar", logvar)
    if mean.shape != logvar.shape:
        raise ValueError(f"mean and logvar differ in shape: {tuple(mean.shape)} vs "
                         f"{tuple(logvar.shape)}")
    z = reparameterize(mean, logvar, generator) if z is None else _codes("z", z)
    if z.shape != mean.shape:
        raise ValueError(f"z must have the shape of mean {tuple(mean.shape)}, got "
                         f"{tuple(z.shape)}")
    count, dim = mean.shape
    centre = mean.mean(0)
    mean, z = mean - centre, z - centre
    inv_var = torch.exp(-logvar)
    scaled_mean = mean * inv_var
    # Everything in log N(z; μ_n, σ²_n) that depends on n alone: Σ μ²σ⁻² + Σ log σ² + d log 2π.
    offset = (mean * scaled_mean).sum(1) + logvar.sum(1) + dim * math.log(2.0 * math.pi)
    own = torch.empty(count, dtype=torch.float64)
    aggregate = torch.empty(count, dtype=torch.float64)
    rows = _rows_per_block(count)
    for start in range(0, count, rows):
        stop = min(start + rows, count)
        block = _log_density_block(z[start:stop], mean, inv_var, scaled_mean, offset)
        own[start:stop] = block.diagonal(offset=start)
        aggregate[start:stop] = torch.logsumexp(block, dim=1)
    return float((own - aggregate).mean()) + math.log(count)


def _imq_sum(a: Tensor, b: Tensor, constants: tuple[float, ...], same: bool) -> float:
    """Σ_s Σ_{i,j} C_s / (C_s + ‖a_i − b_j‖²), over i ≠ j when ``same`` (a is b). Callers centre
    the points: ‖a‖² + ‖b‖² − 2 aᵀb then loses digits only at the scale of their spread."""
    total = 0.0
    rows = _rows_per_block(len(b))
    a_sq, b_sq = a.square().sum(1), b.square().sum(1)
    # Two buffers for every block and scale: fresh block-sized temporaries cost page faults,
    # and a broadcast over the scales at once falls out of cache (measured 2-5× slower).
    squared = torch.empty(min(rows, len(a)), len(b), dtype=torch.float64)
    kernel = torch.empty_like(squared)
    for start in range(0, len(a), rows):
        block = squared[:min(rows, len(a) - start)]
        torch.addmm(b_sq.unsqueeze(0), a[start:start + rows], b.T, alpha=-2.0, out=block)
        block.add_(a_sq[start:start + rows].unsqueeze(1)).clamp_(min=0.0)
        if same:
            # An infinite distance makes the kernel 0: the within-set diagonal drops out exactly,
            # where subtracting k(x, x) = 1 would leave the round-off of a computed 0.
            block.diagonal(offset=start).fill_(math.inf)
        out = kernel[:len(block)]
        for c in constants:
            total += c * float(torch.add(block, c, out=out).reciprocal_().sum())
    return total


def imq_mmd2(x: Tensor, y: Tensor, prior_variance: float = 1.0,
             scales: tuple[float, ...] = IMQ_SCALES) -> float:
    r"""Unbiased squared MMD between the point sets ``x`` and ``y`` under the inverse
    multiquadratics kernel of the Wasserstein autoencoder (Tolstikhin et al. 2018):

    .. math::
        k(a, b) = \sum_{s} \frac{C_s}{C_s + \lVert a - b \rVert^2}, \quad
        C_s = 2\, d\, \sigma_p^2\, s, \quad s \in \{0.1, 0.2, 0.5, 1, 2, 5, 10\}

    .. math::
        \widehat{\mathrm{MMD}}^2 = \frac{\sum_{i \ne j} k(x_i, x_j)}{n(n-1)}
            + \frac{\sum_{i \ne j} k(y_i, y_j)}{m(m-1)}
            - \frac{2 \sum_{i, j} k(x_i, y_j)}{nm}

    The IMQ kernel's heavy tails still see points far apart, where a Gaussian kernel's gradient
    and signal vanish; summing over scales spares choosing one. Unbiased, so it can be slightly
    negative when the sets agree. Pairwise distances go in blocks of rows, in float64; the cost
    is three matrix products and ``len(scales)`` elementwise passes over (n + m)² entries.

    Args:
        x: ``[n, d]``, n ≥ 2 (the codes).
        y: ``[m, d]``, m ≥ 2 (the prior samples).
        prior_variance: σ²_p of the prior per dimension (1 for N(0, I)).
        scales: the multiples s.

    Returns:
        :math:`\widehat{\mathrm{MMD}}^2`.

    Raises:
        ValueError: inputs not 2-D, fewer than 2 rows, non-finite, or differing in d; a
            non-positive ``prior_variance`` or scale.
    """
    x, y = _codes("x", x), _codes("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    if not (prior_variance > 0 and scales and min(scales) > 0):
        raise ValueError(f"prior_variance and scales must be positive, got {prior_variance!r} "
                         f"and {scales!r}")
    constants = tuple(2.0 * x.shape[1] * prior_variance * s for s in scales)
    centre = torch.cat([x, y]).mean(0)
    x, y = x - centre, y - centre
    n, m = len(x), len(y)
    return (_imq_sum(x, x, constants, same=True) / (n * (n - 1))
            + _imq_sum(y, y, constants, same=True) / (m * (m - 1))
            - 2.0 * _imq_sum(x, y, constants, same=False) / (n * m))


def latent_holes(encoded: Tensor, prior: Tensor, k: int = COVERAGE_K) -> float:
    r"""Share of prior samples in whose k-NN ball (among the prior samples) no encoded point
    lies: regions the model samples from but the encoder never maps data to.

    .. math::
        \text{holes} = \tfrac1M \textstyle\sum_j
            \mathbb 1\big[\nexists i\; \lVert Y_j - X_i \rVert < \mathrm{NND}_k(Y_j)\big]

    with X the encoded and Y the prior points. That is 1 − the *coverage* of :func:`prdc` with
    the roles swapped, the prior as "real" (its balls) and the codes as "fake" — not 1 − recall,
    whose balls are the same but whose count runs over the encoded points.

    Args:
        encoded: encoded test means ``[N, d_z]``.
        prior: codes drawn from the model's sampling distribution ``[M, d_z]``.
        k: the neighbour whose distance is a prior point's radius; both sets need more than k
            points.

    Returns:
        The share in [0, 1].

    Raises:
        ValueError: as :func:`prdc`.
    """
    return 1.0 - prdc(prior, encoded, k)["coverage"]


def latent_draws(ctx: EvalContext) -> dict[str, Tensor]:
    """The random codes of the latent metrics, drawn once per evaluation and shared by them.

    Returns:
        ``prior``: N codes from the model's sampling distribution (N test images), drawn first
        from :meth:`EvalContext.generator`; ``posterior``: one z ~ q(z|x) per test image, drawn
        after them from the same generator (so independent of them), or the codes themselves
        for a deterministic encoder. float64 ``[N, d_z]`` on the CPU.
    """

    def draw() -> dict[str, Tensor]:
        tp = ctx.test_pass
        generator = ctx.generator()
        prior = ctx.model.sample_latent(len(tp.latent_mean), generator).double().cpu()
        posterior = (tp.latent_mean if tp.latent_logvar is None else
                     reparameterize(tp.latent_mean, tp.latent_logvar, generator))
        return {"prior": prior, "posterior": posterior}

    return ctx.shared(("latent_draws",), draw)


def _mutual_info(ctx: EvalContext) -> float:
    tp = ctx.test_pass
    return ctx.shared(("mutual_info",), lambda: mutual_information(
        tp.latent_mean, tp.latent_logvar, z=latent_draws(ctx)["posterior"]))


@register_metric("active_units", higher_is_better=True, needs={"encode"}, unit="units")
def active_units(ctx: EvalContext) -> Score:
    """Active units: latent dims whose posterior mean varies over test images (Var > 0.01).

    Burda et al.'s threshold is absolute, so for an AE, whose code scale is free, it counts
    units against an arbitrary unit of length. Details: ``variances``, Var_x(E_q[z_u | x]) per
    unit (normaliser N − 1), and the ``threshold``.
    """
    variances = unit_variances(ctx.test_pass.latent_mean)
    return Score(float((variances > ACTIVITY_THRESHOLD).sum()),
                 samples=len(ctx.test_pass.latent_mean),
                 details={"variances": variances.tolist(), "threshold": ACTIVITY_THRESHOLD})


@register_metric("mutual_info", higher_is_better=True, needs={"variational"}, unit="nats")
def mutual_info(ctx: EvalContext) -> Score:
    """Mutual information I_q(x; z) of test images and codes (He et al. 2019), ≤ log N.

    Higher: the codes say more about their images (the information a β-VAE trades away as β
    grows; a collapsed posterior has none). The estimator cannot exceed log N for N test
    images (details: ``log_n_bound``), so it saturates for informative codes and compares only
    at equal N. See :func:`mutual_information`.
    """
    count = len(ctx.test_pass.latent_mean)
    return Score(_mutual_info(ctx), samples=count, details={"log_n_bound": math.log(count)})


@register_metric("agg_posterior_kl", higher_is_better=False, needs={"variational"},
                 unit="nats")
def agg_posterior_kl(ctx: EvalContext) -> Score:
    """KL(q(z) ‖ p(z)) of the aggregate posterior from the prior: rate − mutual information.

    ELBO surgery (Hoffman & Johnson 2016): E_x KL(q(z|x) ‖ p(z)) = I_q(x; z) + KL(q(z) ‖ p(z)).
    The rate is the exact mean KL (the ``rate`` metric) and I_q the ``mutual_info`` estimate
    from the same draws, so the three add up in the table. The true value is ≥ 0; the estimate
    can come out slightly negative, from the noise of the one-draw I_q, and is biased upward
    when I_q saturates at log N. Details: ``kl_per_dim``, KL(q(z_u|x) ‖ N(0, 1)) per latent
    dimension averaged over test images (they sum to the rate; near 0 marks a collapsed unit),
    ``rate`` and ``mutual_info``.
    """
    tp = ctx.test_pass
    # kl_normal sums over its last axis: one trailing axis of size 1 keeps every dimension apart.
    per_dim = kl_normal(tp.latent_mean.unsqueeze(-1), tp.latent_logvar.unsqueeze(-1)).mean(0)
    rate, information = float(tp.rate.mean()), _mutual_info(ctx)
    return Score(rate - information, samples=len(tp.rate),
                 details={"kl_per_dim": per_dim.tolist(), "rate": rate,
                          "mutual_info": information})


@register_metric("prior_mmd", higher_is_better=False, needs={"encode", "sample"})
def prior_mmd(ctx: EvalContext) -> Score:
    """MMD² between test codes (z ~ q(z|x); an AE: its codes) and as many prior draws (WAE IMQ).

    The prior is the model's sampling distribution (see the module), and σ²_p in the kernel
    scales 2·d_z·σ²_p·{0.1 … 10} is its variance per dimension, estimated from the draws: ≈ 1
    for a VAE's N(0, I) (within ~√(2/(N·d_z))), the fitted Gaussian's for an AE, whose codes
    may live at any scale — fixed scales would see all of them as one point, or as far apart.
    The score is thereby unchanged when codes and prior are scaled together. Unbiased: ≈ 0,
    possibly slightly negative, when the aggregate posterior matches the prior. Details:
    ``prior_variance``. See :func:`imq_mmd2`.
    """
    draws = latent_draws(ctx)
    variance = float(draws["prior"].var(0).mean())
    return Score(imq_mmd2(draws["posterior"], draws["prior"], prior_variance=variance),
                 samples=len(draws["prior"]), details={"prior_variance": variance})


@register_metric("prior_coverage", higher_is_better=True, needs={"encode", "sample"})
def prior_coverage(ctx: EvalContext) -> Score:
    """Coverage of the encoded test means by as many prior draws in latent space (k = 5).

    The share of encoded test means whose k-NN ball (among the encoded means) holds a prior
    draw: the data regions that sampling reaches. 0 for a collapsed encoder (all balls have
    radius 0). See :func:`~latentbench.metrics.prdc.prdc`.
    """
    means = ctx.test_pass.latent_mean
    value = prdc(means, latent_draws(ctx)["prior"], COVERAGE_K)["coverage"]
    return Score(value, samples=len(means), details={"k": COVERAGE_K})


@register_metric("prior_holes", higher_is_better=False, needs={"encode", "sample"})
def prior_holes(ctx: EvalContext) -> Score:
    """Holes: share of prior draws with no encoded test mean within their k-NN radius (k = 5).

    Regions the model samples from but no test image encodes to; their decodes are what the
    decoder never learned. See :func:`latent_holes`.
    """
    draws = latent_draws(ctx)
    return Score(latent_holes(ctx.test_pass.latent_mean, draws["prior"]),
                 samples=len(draws["prior"]), details={"k": COVERAGE_K})
