"""Latent coverage: how many latent units the encoder uses, how much information its codes carry,
and how well the encoded test set fills the distribution the model samples its codes from.

- ``active_units`` (Burda et al. 2016): unit u is active if Var_x(E_q[z_u | x]) > 0.01.
- ``mutual_info``: I_q(x; z) of the encoder's joint q(x, z) = p_data(x) q(z|x), estimated as He
  et al. (2019, "Lagging Inference Networks") do, over the test split and as much of the train
  split as :data:`MI_MAX_POINTS` allows: the estimate cannot exceed log N of the points used.
- ``agg_posterior_kl``: KL(q(z) ‖ p(z)) of the aggregate posterior q(z) = E_x q(z|x) from the
  prior, by ELBO surgery (Hoffman & Johnson 2016): rate = I_q + KL(q(z) ‖ p(z)), over the same
  points. Its details hold the KL per latent dimension. When I_q sits at log N it is only an
  upper bound, and carries a caveat: kept, never ranked.
- ``prior_mmd``: MMD² between codes of test images and codes the model samples from (WAE, IMQ
  kernel).
- ``prior_coverage``, ``prior_holes``: PRDC-style coverage in latent space, draws from the
  aggregate posterior (one z ~ q(z|x) per test image; an AE: its codes) as the "real" set and
  sampled codes as the "fake" one. Posterior *means* would not do: they are shrunk towards 0
  (Var μ = 1 − E σ² for a q(z) that is exactly N(0, I)), so a perfect aggregate posterior with
  E σ² = 0.6 would cover 0.24 of the prior instead of ~0.97.

Each score carries a standard error over the test images (``std_error_method`` in its
details): a bootstrap of the test points for the counts, coverages and the MMD, the spread of
the per-point terms for the information and the KL.

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

import numpy as np
import torch
from torch import Tensor

from latentbench.metrics.context import EvalContext
from latentbench.metrics.feature_input import feature_matrix
from latentbench.metrics.frechet import bootstrap_counts
from latentbench.metrics.prdc import coverage_bootstrap, prdc, prdc_bootstrap
from latentbench.metrics.registry import Score, register_metric
from latentbench.models.gaussian import kl_normal, reparameterize
from latentbench.models.priors import StandardNormal, prior_of

#: Burda et al.'s activity threshold on Var_x(E_q[z_u | x]).
ACTIVITY_THRESHOLD = 0.01
#: The neighbour whose distance is a point's radius in prior coverage and holes (Naeem et al.).
COVERAGE_K = 5
#: Multiples of 2·d_z·σ²_p summed in the IMQ kernel (Tolstikhin et al. 2018, WAE code).
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
#: Points of the mutual information estimate at most: every test image, then train images up to
#: this total. The estimate is bounded by log N (8.5 nats at 5,000) and costs N² d_z (≈ 1 s).
MI_MAX_POINTS = 5000
#: An information estimate within this many nats of log N sits at the estimator's ceiling.
LOG_N_TOLERANCE = 0.05
#: Bootstrap resamples of the test points behind the latent standard errors.
BOOTSTRAP_ROUNDS = 30
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


def mutual_information_terms(mean: Tensor, logvar: Tensor, z: Tensor | None = None,
                             generator: torch.Generator | None = None) -> Tensor:
    r"""The per-posterior terms of the mutual information :math:`I_q(x; z)` between the images
    and their codes under the encoder, estimated over the N given posteriors (He et al. 2019).

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
        The terms :math:`\log q(z_i \mid x_i) - \log \hat q(z_i)` of :math:`\hat I`, one per
        posterior, float64 ``[N]``: each at most :math:`\log N`, their mean the estimate.
        :func:`mutual_information` is their mean.

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
    return own - aggregate + math.log(count)


def mutual_information(mean: Tensor, logvar: Tensor, z: Tensor | None = None,
                       generator: torch.Generator | None = None) -> float:
    r""":math:`\hat I` of :func:`mutual_information_terms`, in nats, in (−∞, log N]; 0 when
    all posteriors are equal."""
    return float(mutual_information_terms(mean, logvar, z, generator).mean())


def _imq_sum(a: Tensor, b: Tensor, constants: tuple[float, ...], same: bool,
             weights: Tensor | None = None) -> tuple[float, Tensor | None]:
    """Σ_s Σ_{i,j} C_s / (C_s + ‖a_i − b_j‖²), over i ≠ j when ``same`` (a is b). Callers centre
    the points: ‖a‖² + ‖b‖² − 2 aᵀb then loses digits only at the scale of their spread.

    With ``weights`` ``[B, len(a)]`` (bootstrap multiplicities of a's points) also the B
    weighted sums Σ_{i,j} w_i k(a_i, b_j) — Σ_{i≠j} w_i w_j k(a_i, a_j) when ``same`` — from the
    same kernel blocks, one matrix product each; else ``None``."""
    total = 0.0
    weighted = None if weights is None else torch.zeros(len(weights), dtype=torch.float64)
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
        if weights is None:
            for c in constants:
                total += c * float(torch.add(block, c, out=out).reciprocal_().sum())
            continue
        summed = torch.zeros_like(out)
        for c in constants:
            summed.add_(torch.add(block, c, out=out).reciprocal_(), alpha=c)
        total += float(summed.sum())
        products = weights[:, start:start + len(block)] @ summed  # [B, len(b)]
        weighted += (products * weights).sum(1) if same else products.sum(1)
    return total, weighted


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
    return (_imq_sum(x, x, constants, same=True)[0] / (n * (n - 1))
            + _imq_sum(y, y, constants, same=True)[0] / (m * (m - 1))
            - 2.0 * _imq_sum(x, y, constants, same=False)[0] / (n * m))


def imq_mmd2_bootstrap(x: Tensor, y: Tensor, counts: Tensor, prior_variance: float = 1.0,
                       scales: tuple[float, ...] = IMQ_SCALES) -> Tensor:
    """:func:`imq_mmd2` of bootstrap resamples of ``x`` against ``y`` as it is: resample b
    holds x_i ``counts[b, i]`` times. The within-x sum runs over pairs of distinct original
    points, Σ_{i≠j} w_i w_j k(x_i, x_j) / ((Σw)² − Σw²): pairs of a point's own copies, whose
    kernel is k(x, x), would bias every resample upward. With ``counts`` all ones the values
    are :func:`imq_mmd2`'s. One pass over the kernel blocks serves all B resamples.

    Returns:
        float64 ``[B]``.
    """
    x, y = _codes("x", x), _codes("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.ndim != 2 or counts.shape[1] != len(x):
        raise ValueError(f"counts must be [B, {len(x)}], got {tuple(counts.shape)}")
    constants = tuple(2.0 * x.shape[1] * prior_variance * s for s in scales)
    centre = torch.cat([x, y]).mean(0)
    x, y = x - centre, y - centre
    m = len(y)
    within_y = _imq_sum(y, y, constants, same=True)[0] / (m * (m - 1))
    within_x = _imq_sum(x, x, constants, same=True, weights=counts)[1]
    cross = _imq_sum(x, y, constants, same=False, weights=counts)[1]
    total, squares = counts.sum(1), counts.square().sum(1)
    return within_x / (total.square() - squares) + within_y - 2.0 * cross / (total * m)


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
        encoded: encoded test points ``[N, d_z]`` (draws z ~ q(z|x); an AE: its codes).
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
        for a deterministic encoder: together, N draws from the aggregate posterior q(z).
        float64 ``[N, d_z]`` on the CPU.
    """

    def draw() -> dict[str, Tensor]:
        tp = ctx.test_pass
        generator = ctx.generator()
        prior = ctx.model.sample_latent(len(tp.latent_mean), generator).double().cpu()
        posterior = (tp.latent_mean if tp.latent_logvar is None else
                     reparameterize(tp.latent_mean, tp.latent_logvar, generator))
        return {"prior": prior, "posterior": posterior}

    return ctx.shared(("latent_draws",), draw)


def _same_images(a: Tensor, b: Tensor) -> bool:
    """Whether two splits are one tensor (tests and some callers pass the test set twice)."""
    return a is b or (a.shape == b.shape and a.data_ptr() == b.data_ptr())


def information_points(ctx: EvalContext) -> dict[str, Tensor | int]:
    """The posteriors the mutual information is estimated over, computed once per evaluation.

    Every test image (from the test pass, with its draw of :func:`latent_draws`), then train
    images, a random subset drawn with the evaluation's seed, up to :data:`MI_MAX_POINTS` in
    all: the estimator is bounded by log N of the points it sees, so more points let it report
    more information. The train images are encoded here (an encoder pass, no decoder), and
    their draws come from a generator of their own. A train split that is the test split
    adds nothing (its points would be duplicates).

    Returns:
        ``mean``, ``logvar``, ``z`` (float64 ``[N, d_z]``, test points first), ``rate``
        (KL(q(z|x) ‖ p(z)) to the model's prior per point, float64 ``[N]``: exact for N(0, I),
        else the test pass's Monte-Carlo estimates and as many draws per train point),
        ``test_points`` and
        ``train_points``.
    """

    @torch.no_grad()
    def compute() -> dict[str, Tensor | int]:
        tp = ctx.test_pass
        means, logvars = [tp.latent_mean], [tp.latent_logvar]
        draws = [latent_draws(ctx)["posterior"]]
        room = MI_MAX_POINTS - len(tp.latent_mean)
        train = ctx.train_images
        if room > 0 and len(train) and not _same_images(train, ctx.test_images):
            generator = ctx.generator()
            subset = torch.randperm(len(train), generator=generator)[:room]
            for x in ctx.batches(train[subset]):
                posterior = ctx.model.encode(x)
                means.append(posterior.mean.flatten(1).double().cpu())
                logvars.append(posterior.logvar.flatten(1).double().cpu())
            draws.append(reparameterize(torch.cat(means[1:]), torch.cat(logvars[1:]),
                                        generator))
        mean, logvar = torch.cat(means), torch.cat(logvars)
        if tp.rate_samples is None:  # closed form
            rate = prior_of(ctx.model).kl_estimate(mean, logvar, 1)[0]
        else:  # the test points' estimates, and as many draws for the train points
            rest = prior_of(ctx.model).kl_estimate(mean[len(tp.rate):], logvar[len(tp.rate):],
                                                   tp.rate_samples, ctx.generator())[0]
            rate = torch.cat([tp.rate, rest])
        return {"mean": mean, "logvar": logvar, "z": torch.cat(draws), "rate": rate,
                "test_points": len(tp.latent_mean),
                "train_points": len(mean) - len(tp.latent_mean)}

    return ctx.shared(("information_points",), compute)


def _information(ctx: EvalContext) -> dict[str, object]:
    """The mutual information estimate and its ceiling diagnostics, computed once."""

    def compute() -> dict[str, object]:
        points = information_points(ctx)
        terms = mutual_information_terms(points["mean"], points["logvar"], z=points["z"])
        count = len(terms)
        value, log_n = float(terms.mean()), math.log(count)
        return {"terms": terms, "value": value, "log_n": log_n, "points": count,
                "at_log_n_bound": log_n - value < LOG_N_TOLERANCE,
                "std_error": float(terms.std() / math.sqrt(count))}

    return ctx.shared(("mutual_info",), compute)


def _bootstrap(ctx: EvalContext, count: int) -> np.ndarray:
    return bootstrap_counts(count, BOOTSTRAP_ROUNDS, ctx.seed)


def _bootstrap_method(what: str) -> str:
    return (f"bootstrap over test images: {BOOTSTRAP_ROUNDS} resamples of the test points "
            f"with replacement (seed = the evaluation's); {what}")


@register_metric("active_units", higher_is_better=True, family="latent", needs={"encode"},
                 unit="units")
def active_units(ctx: EvalContext) -> Score:
    """Active units: latent dims whose posterior mean varies over test images (Var > 0.01).

    Burda et al.'s threshold is absolute, so for an AE, whose code scale is free, it counts
    units against an arbitrary unit of length. Details: ``variances``, Var_x(E_q[z_u | x]) per
    unit (normaliser N − 1), and the ``threshold``. Standard error: the spread of the count
    over bootstrap resamples of the test images (0 when no unit is near the threshold).
    """
    means = ctx.test_pass.latent_mean
    variances = unit_variances(means)
    means = means - means.mean(0)  # the sums of squares below then cancel nothing large
    counts = torch.from_numpy(_bootstrap(ctx, len(means))).double()
    total = counts.sum(1, keepdim=True)
    centre = counts @ means / total  # [B, d_z]
    resampled = (counts @ means.square() - total * centre.square()) / (total - 1)
    rounds = (resampled > ACTIVITY_THRESHOLD).sum(1).double()
    return Score(float((variances > ACTIVITY_THRESHOLD).sum()), samples=len(means),
                 std_error=float(rounds.std()),
                 details={"variances": variances.tolist(), "threshold": ACTIVITY_THRESHOLD,
                          "bootstrap_rounds": BOOTSTRAP_ROUNDS,
                          "std_error_method": _bootstrap_method("the count of units whose "
                                                                "resampled variance passes")})


@register_metric("mutual_info", higher_is_better=True, family="latent", needs={"variational"},
                 unit="nats")
def mutual_info(ctx: EvalContext) -> Score:
    """Mutual information I_q(x; z) of images and codes (He et al. 2019), ≤ log N.

    Higher: the codes say more about their images (the information a β-VAE trades away as β
    grows; a collapsed posterior has none). Estimated over the test images and train images up
    to :data:`MI_MAX_POINTS` (details: ``points``, ``test_points``, ``train_points``). The
    estimator cannot exceed log N of those points (details: ``log_n``, and ``log_n_gap``, how
    far below it the estimate is): within 0.05 nats of it (``at_log_n_bound``) the value is
    the estimator's ceiling, a lower bound of the information that models with more
    information all reach, so it carries a caveat and is not ranked. Standard error: the
    spread of the per-point terms over √N. See :func:`mutual_information_terms`.
    """
    info, points = _information(ctx), information_points(ctx)
    caveat = None
    if info["at_log_n_bound"]:
        caveat = (f"at the estimator's ceiling log N = {info['log_n']:.2f} nats "
                  f"({info['points']} points): only a lower bound of the information")
    return Score(info["value"], samples=info["points"], std_error=info["std_error"],
                 caveat=caveat,
                 details={"log_n": info["log_n"], "at_log_n_bound": info["at_log_n_bound"],
                          "log_n_gap": info["log_n"] - info["value"], "points": info["points"],
                          "test_points": points["test_points"],
                          "train_points": points["train_points"],
                          "std_error_method": "analytic: std of the per-point terms / sqrt(N) "
                                              "(their dependence through the shared log q(z) "
                                              "left out)"})


@register_metric("agg_posterior_kl", higher_is_better=False, family="latent",
                 needs={"variational"}, unit="nats", uses_prior=True)
def agg_posterior_kl(ctx: EvalContext) -> Score:
    """KL(q(z) ‖ p(z)) of the aggregate posterior from the prior: rate − mutual information.

    ELBO surgery (Hoffman & Johnson 2016): E_x KL(q(z|x) ‖ p(z)) = I_q(x; z) + KL(q(z) ‖ p(z)),
    with the rate (the exact mean KL) and the ``mutual_info`` estimate over the same points
    (test, then train images; the ``rate`` metric is the test images' alone). The true value
    is ≥ 0; the estimate can come out slightly negative, from the noise of the one-draw I_q,
    and is biased upward as I_q nears log N. When I_q sits at log N the value is only an upper
    bound (a q(z) equal to the prior with E σ² = 0.05, 16 latents and 1,000 points comes out
    at 17 nats): details ``upper_bound``, and a caveat, so it is kept but not ranked. Details:
    ``kl_per_dim``, KL(q(z_u|x) ‖ N(0, 1)) per latent dimension averaged over the points (they
    sum to the rate; near 0 marks a collapsed unit; ``None`` for a prior other than N(0, I),
    whose KL does not split by dimension), ``rate``, ``mutual_info``, ``points``.
    p(z) is the model's prior, with the rate as the ``rate`` metric computes it.
    Standard error: the spread of the per-point terms rate_i − I_i over √N.
    """
    points, info = information_points(ctx), _information(ctx)
    per_dim = None
    if isinstance(prior_of(ctx.model), StandardNormal):  # a factorised prior: KL splits by dim
        # kl_normal sums over its last axis: a trailing axis of size 1 keeps the dims apart.
        per_dim = kl_normal(points["mean"].unsqueeze(-1),
                            points["logvar"].unsqueeze(-1)).mean(0).tolist()
    terms = points["rate"] - info["terms"]
    rate, information = float(points["rate"].mean()), info["value"]
    caveat = None
    if info["at_log_n_bound"]:
        caveat = (f"only an upper bound: the mutual information estimate sits at its ceiling "
                  f"log N = {info['log_n']:.2f} nats ({info['points']} points)")
    return Score(rate - information, samples=info["points"],
                 std_error=float(terms.std() / math.sqrt(len(terms))), caveat=caveat,
                 details={"kl_per_dim": per_dim, "rate": rate,
                          "mutual_info": information, "points": info["points"],
                          "upper_bound": info["at_log_n_bound"], "log_n": info["log_n"],
                          "std_error_method": "analytic: std of the per-point terms "
                                              "rate_i − I_i / sqrt(N)"})


@register_metric("prior_mmd", higher_is_better=False, family="latent",
                 needs={"encode", "sample"}, uses_prior=True)
def prior_mmd(ctx: EvalContext) -> Score:
    """MMD² between test codes (z ~ q(z|x); an AE: its codes) and as many prior draws (WAE IMQ).

    The prior is the model's sampling distribution (see the module), and σ²_p in the kernel
    scales 2·d_z·σ²_p·{0.1 … 10} is its variance per dimension, estimated from the draws: ≈ 1
    for a VAE's N(0, I) (within ~√(2/(N·d_z))), the fitted Gaussian's for an AE, whose codes
    may live at any scale — fixed scales would see all of them as one point, or as far apart.
    The score is thereby unchanged when codes and prior are scaled together. Unbiased: ≈ 0,
    possibly slightly negative, when the aggregate posterior matches the prior. Details:
    ``prior_variance``. Standard error: a bootstrap of the test codes
    (:func:`imq_mmd2_bootstrap`). See :func:`imq_mmd2`.
    """
    draws = latent_draws(ctx)
    variance = float(draws["prior"].var(0).mean())
    value = imq_mmd2(draws["posterior"], draws["prior"], prior_variance=variance)
    counts = torch.from_numpy(_bootstrap(ctx, len(draws["posterior"])))
    rounds = imq_mmd2_bootstrap(draws["posterior"], draws["prior"], counts,
                                prior_variance=variance)
    return Score(value, samples=len(draws["prior"]), std_error=float(rounds.std()),
                 details={"prior_variance": variance, "bootstrap_rounds": BOOTSTRAP_ROUNDS,
                          "std_error_method": _bootstrap_method(
                              "the prior draws fixed; pairs of a code's own copies left out")})


@register_metric("prior_coverage", higher_is_better=True, family="latent",
                 needs={"encode", "sample"}, uses_prior=True)
def prior_coverage(ctx: EvalContext) -> Score:
    """Coverage of the aggregate posterior by as many prior draws in latent space (k = 5).

    The share of test codes z ~ q(z|x) (an AE: its codes) whose k-NN ball (among those codes)
    holds a prior draw: the data regions that sampling reaches. Draws, not posterior means:
    the means are shrunk, so a VAE whose q(z) is exactly the prior would score far below 1.
    0 for codes that all coincide (every ball has radius 0). Standard error: a bootstrap of
    the test codes (:func:`~latentbench.metrics.prdc.prdc_bootstrap`). See
    :func:`~latentbench.metrics.prdc.prdc`.
    """
    draws = latent_draws(ctx)
    codes = draws["posterior"]
    value = prdc(codes, draws["prior"], COVERAGE_K)["coverage"]
    rounds = prdc_bootstrap(codes, draws["prior"], COVERAGE_K,
                            _bootstrap(ctx, len(codes)))["coverage"]
    return Score(value, samples=len(codes), std_error=float(np.std(rounds, ddof=1)),
                 details={"k": COVERAGE_K, "bootstrap_rounds": BOOTSTRAP_ROUNDS,
                          "std_error_method": _bootstrap_method(
                              "the prior draws fixed, the codes' radii recomputed")})


@register_metric("prior_holes", higher_is_better=False, family="latent",
                 needs={"encode", "sample"}, uses_prior=True)
def prior_holes(ctx: EvalContext) -> Score:
    """Holes: share of prior draws with no test code (z ~ q(z|x)) within their k-NN radius.

    Regions the model samples from but no test image encodes to (k = 5); their decodes are
    what the decoder never learned. Standard error: a bootstrap of the test codes
    (:func:`~latentbench.metrics.prdc.coverage_bootstrap`). See :func:`latent_holes`.
    """
    draws = latent_draws(ctx)
    codes = draws["posterior"]
    value = latent_holes(codes, draws["prior"])
    rounds = 1.0 - coverage_bootstrap(draws["prior"], codes, COVERAGE_K,
                                      _bootstrap(ctx, len(codes)))
    return Score(value, samples=len(draws["prior"]), std_error=float(np.std(rounds, ddof=1)),
                 details={"k": COVERAGE_K, "bootstrap_rounds": BOOTSTRAP_ROUNDS,
                          "std_error_method": _bootstrap_method("the prior draws fixed")})
