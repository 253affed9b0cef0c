"""The registered disentanglement scores: each reads the run's one encoded pool of factor draws
(:meth:`EvalContext.factor_codes`) and computes a public array function on it.

They need ``encode`` (posterior means are the representation scored) and ``factors`` (a dataset
with a ground-truth factor sampler, ``shapes``), so on any other data they are absent, never
zero. Sample counts are disentanglement_lib's: ``eval.factor_points`` (10,000) to compute or fit
on, ``eval.factor_test_points`` (5,000) held out for the classifiers' accuracies; FactorVAE and
β-VAE votes (10,000 train, 5,000 eval) are drawn from the whole pool. Every score's details
record its counts and the pool's seed.

Uncertainty: the accuracies (informativeness, the FactorVAE and β-VAE scores) carry the
binomial standard error of their held-out set; MIG and modularity a bootstrap over the points
(:data:`BOOTSTRAP_REPLICATES` resamples, each discretised and scored anew). DCI's
disentanglement and completeness, SAP and the total correlation have no cheap one (a bootstrap
would refit 5 classifiers per replicate): their spread is that over seeds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from latentbench.metrics.context import EvalContext
from latentbench.metrics.dci import DCIResult, dci
from latentbench.metrics.factor_info import mig, modularity
from latentbench.metrics.factor_votes import betavae_score, factorvae_score
from latentbench.metrics.registry import Score, register_metric
from latentbench.metrics.sap import sap
from latentbench.metrics.total_correlation import gaussian_total_correlation

#: Bootstrap resamples of the points for the standard errors of MIG and modularity (each costs
#: one mutual-information matrix, ~0.1 s at 10,000 points).
BOOTSTRAP_REPLICATES = 20
NEEDS = ("encode", "factors")


def _pool_details(ctx: EvalContext) -> dict[str, Any]:
    pool = ctx.factor_codes()
    return {"points": pool.train, "test_points": len(pool.codes) - pool.train,
            "seed": pool.seed, "factor_names": list(pool.names)}


def _bootstrap_std_error(ctx: EvalContext, score: Any) -> float:
    """Standard deviation of ``score(codes, factors)`` over bootstrap resamples of the fit
    points (seeded with the run's seed)."""
    pool = ctx.factor_codes()
    codes, factors = pool.fit_codes, pool.fit_factors
    rng = np.random.default_rng(ctx.seed)
    values = []
    for _ in range(BOOTSTRAP_REPLICATES):
        rows = rng.integers(0, len(codes), len(codes))
        values.append(score(codes[rows], factors[rows]))
    return float(np.std(values, ddof=1))


def _binomial_std_error(accuracy: float, n: int) -> float:
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / n)


@register_metric("mig", higher_is_better=True, family="disentanglement", needs=NEEDS,
                 unit="fraction of factor entropy")
def mig_metric(ctx: EvalContext) -> Score:
    """Mutual information gap (Chen et al. 2018) of the 20-bin discretised posterior means.

    Per factor, the gap between the two latents that know most about it, over its entropy,
    averaged over factors.

    Details hold the factor × latent mutual information (``mi_matrix`` ``[d, K]`` nats), the
    factor entropies, and the gap of each factor (the report's heatmap and traversal labels).
    """
    pool = ctx.factor_codes()
    result = mig(pool.fit_codes, pool.fit_factors)
    return Score(result.score, samples=result.n_samples,
                 std_error=_bootstrap_std_error(ctx, lambda c, f: mig(c, f).score),
                 details={**_pool_details(ctx), "bins": result.bins,
                          "per_factor": result.per_factor.tolist(),
                          "mi_matrix": result.mi_matrix.tolist(),
                          "factor_entropy": result.entropies.tolist(),
                          "std_error_method": f"bootstrap over the points, "
                                              f"{BOOTSTRAP_REPLICATES} resamples"})


@register_metric("modularity", higher_is_better=True, family="disentanglement", needs=NEEDS,
                 unit="score in [0, 1]")
def modularity_metric(ctx: EvalContext) -> Score:
    """Modularity (Ridgeway & Mozer 2018): how far each latent informs about one factor only.

    From the same discretised mutual information as MIG."""
    pool = ctx.factor_codes()
    result = modularity(pool.fit_codes, pool.fit_factors)
    return Score(result.score, samples=result.n_samples,
                 std_error=_bootstrap_std_error(ctx, lambda c, f: modularity(c, f).score),
                 details={**_pool_details(ctx), "bins": result.bins,
                          "per_code": result.per_code.tolist(),
                          "std_error_method": f"bootstrap over the points, "
                                              f"{BOOTSTRAP_REPLICATES} resamples"})


def _dci(ctx: EvalContext) -> DCIResult:
    pool = ctx.factor_codes()
    return ctx.shared(("dci", pool.train, len(pool.codes) - pool.train), lambda: dci(
        pool.fit_codes, pool.fit_factors, pool.test_codes, pool.test_factors, seed=ctx.seed))


def _dci_details(ctx: EvalContext, result: DCIResult) -> dict[str, Any]:
    return {**_pool_details(ctx), "importance_method": result.method,
            "importance": result.importance.tolist(),
            "per_code_disentanglement": result.per_code_disentanglement.tolist(),
            "per_factor_completeness": result.per_factor_completeness.tolist(),
            "test_accuracies": result.test_accuracies.tolist(),
            "train_accuracy": result.train_accuracy}


@register_metric("dci_disentanglement", higher_is_better=True, family="disentanglement",
                 needs=NEEDS, unit="score in [0, 1]")
def dci_disentanglement(ctx: EvalContext) -> Score:
    """DCI disentanglement (Eastwood & Williams 2018): does each latent matter for one factor.

    Each latent's importance in gradient-boosted trees predicting the factors, and how much of
    it goes to one factor, weighted by importance."""
    result = _dci(ctx)
    return Score(result.disentanglement, samples=result.n_train,
                 details=_dci_details(ctx, result))


@register_metric("dci_completeness", higher_is_better=True, family="disentanglement",
                 needs=NEEDS, unit="score in [0, 1]")
def dci_completeness(ctx: EvalContext) -> Score:
    """DCI completeness (Eastwood & Williams 2018): is each factor held by one latent."""
    result = _dci(ctx)
    return Score(result.completeness, samples=result.n_train,
                 details=_dci_details(ctx, result))


@register_metric("dci_informativeness", higher_is_better=True, family="disentanglement",
                 needs=NEEDS, unit="accuracy")
def dci_informativeness(ctx: EvalContext) -> Score:
    """DCI informativeness (Eastwood & Williams 2018): held-out accuracy of the factors' trees.

    The gradient-boosted trees predict each factor from all latents; averaged over factors."""
    result = _dci(ctx)
    # Each factor's accuracy is a mean over the same n_test points: the mean of K binomial
    # proportions, whose variance is at most the mean of theirs over K.
    per_factor = result.test_accuracies
    variance = sum(a * (1 - a) / result.n_test for a in per_factor) / len(per_factor) ** 2
    return Score(result.informativeness, samples=result.n_test,
                 std_error=math.sqrt(variance), details=_dci_details(ctx, result))


@register_metric("sap", higher_is_better=True, family="disentanglement", needs=NEEDS,
                 unit="accuracy gap")
def sap_metric(ctx: EvalContext) -> Score:
    """Separated attribute predictability, SAP (Kumar et al. 2018), on held-out points.

    Per factor, the gap in held-out accuracy between the two latents that predict it best on
    their own, averaged over factors."""
    pool = ctx.factor_codes()
    result = sap(pool.fit_codes, pool.fit_factors, pool.test_codes, pool.test_factors,
                 seed=ctx.seed)
    return Score(result.score, samples=result.n_train,
                 details={**_pool_details(ctx), "per_factor": result.per_factor.tolist(),
                          "score_matrix": result.score_matrix.tolist()})


@register_metric("factorvae_score", higher_is_better=True, family="disentanglement",
                 needs=NEEDS, unit="accuracy")
def factorvae_metric(ctx: EvalContext) -> Score:
    """FactorVAE score (Kim & Mnih 2018): majority-vote accuracy, chance 1/K.

    The classifier names a batch's fixed factor from its least-varying normalised latent."""
    pool = ctx.factor_codes()
    result = factorvae_score(pool.codes, pool.factors, seed=ctx.seed)
    return Score(result.score, samples=result.n_eval,
                 std_error=_binomial_std_error(result.score, result.n_eval),
                 details={**_pool_details(ctx), "train_accuracy": result.train_accuracy,
                          "active_latents": result.n_active, "train_votes": result.n_train,
                          "eval_votes": result.n_eval, "batch_size": result.batch_size,
                          "pool": result.n_pool})


@register_metric("betavae_score", higher_is_better=True, family="disentanglement",
                 needs=NEEDS, unit="accuracy")
def betavae_metric(ctx: EvalContext) -> Score:
    """β-VAE score (Higgins et al. 2017): linear-classifier accuracy, chance 1/K.

    The classifier names the factor a batch of pairs shares from the mean absolute difference
    of their latents."""
    pool = ctx.factor_codes()
    result = betavae_score(pool.codes, pool.factors, seed=ctx.seed)
    return Score(result.score, samples=result.n_eval,
                 std_error=_binomial_std_error(result.score, result.n_eval),
                 details={**_pool_details(ctx), "train_accuracy": result.train_accuracy,
                          "train_votes": result.n_train, "eval_votes": result.n_eval,
                          "batch_size": result.batch_size, "pool": result.n_pool})


@register_metric("gaussian_total_correlation", higher_is_better=False,
                 family="disentanglement", needs=NEEDS, unit="nats")
def gaussian_total_correlation_metric(ctx: EvalContext) -> Score:
    """Gaussian total correlation of the posterior means (disentanglement_lib, unsupervised).

    ½(Σ log diag Σ − log det Σ) of their covariance Σ: 0 for uncorrelated latents."""
    pool = ctx.factor_codes()
    result = gaussian_total_correlation(pool.fit_codes)
    return Score(result.score, samples=result.n_samples, details=_pool_details(ctx))
