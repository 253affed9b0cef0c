"""The FID family as registered metrics: ``fid``, ``kid``, ``precision``, ``recall``,
``density`` and ``coverage`` of generated samples against the test split, in a feature space.

Each score is keyed by its extractor (``fid[lenet-mnist]``). All of them read the same two
feature sets from the context — the test split's (cached on disk across runs) and the samples'
(generated once per evaluation) — so one extractor pass serves the six scores. The real set is
the test split and the generated set has as many samples by default: FID is biased upward at
small N and compares only at equal N, so both counts are recorded with each score.

Each carries a standard error over the test set (``Score.std_error``; its method in the
details' ``std_error_method``): FID and the four PRDC scores by a bootstrap over the test
features (:data:`BOOTSTRAP_ROUNDS` resamples seeded with the evaluation's seed, the samples'
features fixed), KID from the spread of its own subsets. Density is best at 1, not at an end.
"""

from __future__ import annotations

import warnings

import numpy as np

from latentbench.metrics.context import EvalContext
from latentbench.metrics.frechet import bootstrap_counts, frechet_bootstrap, frechet_distance
from latentbench.metrics.kid import default_subset_size, kid, kid_std_error
from latentbench.metrics.prdc import prdc, prdc_bootstrap
from latentbench.metrics.registry import Score, register_metric

# Kynkäänniemi et al. 2019 use k = 3 for the precision/recall manifolds; Naeem et al. 2020
# recommend k = 5 for density and coverage.
PRECISION_RECALL_K = 3
DENSITY_COVERAGE_K = 5
#: Bootstrap resamples of the test features behind the standard errors of FID and PRDC: the
#: standard error itself is then good to ~13% (1/√(2B)), and each metric's bootstrap costs well
#: under a second at N = 1,000 (measured on 2 shared CPU cores: FID at d = 128 ≈ 0.3–0.7 s,
#: one PRDC bootstrap ≈ 0.2–0.5 s).
BOOTSTRAP_ROUNDS = 30


def _score(ctx: EvalContext, extractor: str, value: float, std_error: float | None = None,
           **details: object) -> Score:
    real, fake = ctx.feature_set(extractor, "test"), ctx.feature_set(extractor, "samples")
    return Score(value, samples=fake.n, details={"real_samples": real.n, **details},
                 std_error=std_error)


def _bootstrap_method(what: str) -> str:
    return (f"bootstrap over test images: {BOOTSTRAP_ROUNDS} resamples of the test features "
            f"with replacement (seed = the evaluation's), the samples' features fixed; {what}")


def _prdc(ctx: EvalContext, extractor: str, k: int) -> dict[str, tuple[float, float]]:
    """Value and bootstrap standard error of the four scores at this k, computed once."""

    def compute() -> dict[str, tuple[float, float]]:
        real, fake = ctx.feature_set(extractor, "test"), ctx.feature_set(extractor, "samples")
        values = prdc(real.features, fake.features, k=k)
        counts = bootstrap_counts(real.n, BOOTSTRAP_ROUNDS, ctx.seed)
        rounds = prdc_bootstrap(real.features, fake.features, k, counts)
        return {name: (values[name], float(np.std(rounds[name], ddof=1))) for name in values}

    return ctx.shared(("prdc", extractor, k), compute)


@register_metric("fid", higher_is_better=False, family="samples", needs={"sample"},
                 feature_space=True)
def fid(ctx: EvalContext, extractor: str) -> Score:
    """Fréchet distance of samples to test images in feature space (Heusel et al. 2017).

    Biased upward at finite N, so it compares only at equal sample counts (recorded). Standard
    error: the spread of the FID over bootstrap resamples of the test features
    (:func:`~latentbench.metrics.frechet.frechet_bootstrap`).
    """
    real, fake = ctx.feature_set(extractor, "test"), ctx.feature_set(extractor, "samples")
    value = frechet_distance(real.mean, real.cov, fake.mean, fake.cov)
    rounds = frechet_bootstrap(real.features, fake.mean, fake.cov,
                               bootstrap_counts(real.n, BOOTSTRAP_ROUNDS, ctx.seed))
    return _score(ctx, extractor, value, float(np.std(rounds, ddof=1)),
                  bootstrap_rounds=BOOTSTRAP_ROUNDS,
                  std_error_method=_bootstrap_method("FID of each resample's mean and "
                                                     "covariance"))


@register_metric("kid", higher_is_better=False, family="samples", needs={"sample"},
                 feature_space=True)
def kid_metric(ctx: EvalContext, extractor: str) -> Score:
    """Kernel inception distance: unbiased cubic-kernel MMD², mean over random subsets.

    Subsets of ``eval.kid_subset_size`` rows of each set (default: 1,000, at most half the
    smaller set). A size that reaches the smaller set would make every subset that whole set
    and the spread 0: it is clipped to half of it, with a warning, and the details say so
    (``subset_size_requested``, ``subset_size_clipped``). The standard error is the subsets'
    spread (``subset_std``) scaled to the whole sets by
    :func:`~latentbench.metrics.kid.kid_std_error` (equal to it at half the sets).
    """
    real, fake = ctx.feature_set(extractor, "test"), ctx.feature_set(extractor, "samples")
    smaller, requested = min(real.n, fake.n), ctx.settings.kid_subset_size
    clipped = requested is not None and requested >= smaller
    if requested is None or clipped:
        size = default_subset_size(real.n, fake.n) if requested is None else max(2, smaller // 2)
    else:
        size = requested
    if clipped:
        warnings.warn(f"eval.kid_subset_size = {requested} reaches the smaller feature set "
                      f"({smaller} samples), where every subset is the whole set and their "
                      f"spread is 0: using {size}", stacklevel=2)
    subsets = ctx.settings.kid_subsets
    mean, std = kid(real.features, fake.features, subsets=subsets, subset_size=size,
                    seed=ctx.seed)
    return _score(ctx, extractor, mean, kid_std_error(std, size, real.n, fake.n, subsets),
                  subset_std=std, subsets=subsets, subset_size=size,
                  subset_size_requested=requested, subset_size_clipped=clipped,
                  std_error_method="the spread of the subsets' MMD² (half-sampling), scaled to "
                                   "the whole sets and the subset count (kid_std_error); it "
                                   "overstates the error near KID = 0")


def _register_prdc_score(name: str, k: int, doc: str, **direction: object) -> None:
    """Register one of the four PRDC scores; the two of each k share one PRDC pass."""

    def compute(ctx: EvalContext, extractor: str) -> Score:
        value, std_error = _prdc(ctx, extractor, k)[name]
        return _score(ctx, extractor, value, std_error, k=k, bootstrap_rounds=BOOTSTRAP_ROUNDS,
                      std_error_method=_bootstrap_method(
                          "radii recomputed in each resample, a point's own copies not its "
                          "neighbours (prdc_bootstrap)"))

    compute.__doc__ = doc
    compute.__name__ = compute.__qualname__ = name
    register_metric(name, family="samples", needs={"sample"}, feature_space=True,
                    **direction)(compute)


for _name, _k, _doc, _direction in (
    ("precision", PRECISION_RECALL_K,
     "Precision: share of samples inside the test set's k-NN manifold (k = 3).",
     {"higher_is_better": True}),
    ("recall", PRECISION_RECALL_K,
     "Recall: share of test images inside the samples' k-NN manifold (k = 3).",
     {"higher_is_better": True}),
    ("density", DENSITY_COVERAGE_K,
     "Density: mean count of test k-NN balls holding a sample, over k (k = 5; ideal 1).",
     {"target": 1.0}),
    ("coverage", DENSITY_COVERAGE_K,
     "Coverage: share of test images whose k-NN ball holds a sample (k = 5).",
     {"higher_is_better": True}),
):
    _register_prdc_score(_name, _k, _doc, **_direction)
