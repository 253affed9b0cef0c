"""The FID family as registered metrics: ``fid``, ``kid``, ``precision``, ``recall``,
``density`` and ``coverage`` of generated samples against the test split, in a feature space.

Each score is keyed by its extractor (``fid[lenet-mnist]``). All of them read the same two
feature sets from the context — the test split's (cached on disk across runs) and the samples'
(generated once per evaluation) — so one extractor pass serves the six scores. The real set is
the test split and the generated set has as many samples by default: FID is biased upward at
small N and compares only at equal N, so both counts are recorded with each score.
"""

from __future__ import annotations

from latentbench.metrics.context import EvalContext
from latentbench.metrics.frechet import frechet_distance
from latentbench.metrics.kid import kid
from latentbench.metrics.prdc import prdc
from latentbench.metrics.registry import Score, register_metric

# Kynkäänniemi et al. 2019 use k = 3 for the precision/recall manifolds; Naeem et al. 2020
# recommend k = 5 for density and coverage.
PRECISION_RECALL_K = 3
DENSITY_COVERAGE_K = 5


def _score(ctx: EvalContext, extractor: str, value: float, **details: float) -> Score:
    real, fake = ctx.feature_set(extractor, "test"), ctx.feature_set(extractor, "samples")
    return Score(value, samples=fake.n, details={"real_samples": real.n, **details})


def _prdc(ctx: EvalContext, extractor: str, k: int) -> dict[str, float]:
    def compute() -> dict[str, float]:
        real, fake = ctx.feature_set(extractor, "test"), ctx.feature_set(extractor, "samples")
        return prdc(real.features, fake.features, k=k)

    return ctx.shared(("prdc", extractor, k), compute)


@register_metric("fid", higher_is_better=False, needs={"sample"}, feature_space=True)
def fid(ctx: EvalContext, extractor: str) -> Score:
    """Fréchet distance of samples to test images in feature space (Heusel et al. 2017)."""
    real, fake = ctx.feature_set(extractor, "test"), ctx.feature_set(extractor, "samples")
    return _score(ctx, extractor, frechet_distance(real.mean, real.cov, fake.mean, fake.cov))


@register_metric("kid", higher_is_better=False, needs={"sample"}, feature_space=True)
def kid_metric(ctx: EvalContext, extractor: str) -> Score:
    """Kernel inception distance: unbiased cubic-kernel MMD², mean over random subsets."""
    real, fake = ctx.feature_set(extractor, "test"), ctx.feature_set(extractor, "samples")
    mean, std = kid(real.features, fake.features, subsets=ctx.settings.kid_subsets,
                    subset_size=ctx.settings.kid_subset_size, seed=ctx.seed)
    return _score(ctx, extractor, mean, subset_std=std)


def _register_prdc_score(name: str, k: int, doc: str) -> None:
    """Register one of the four PRDC scores; the two of each k share one PRDC pass."""

    def compute(ctx: EvalContext, extractor: str) -> Score:
        return _score(ctx, extractor, _prdc(ctx, extractor, k)[name], k=k)

    compute.__doc__ = doc
    compute.__name__ = compute.__qualname__ = name
    register_metric(name, higher_is_better=True, needs={"sample"}, feature_space=True)(compute)


for _name, _k, _doc in (
    ("precision", PRECISION_RECALL_K,
     "Precision: share of samples inside the test set's k-NN manifold (k = 3)."),
    ("recall", PRECISION_RECALL_K,
     "Recall: share of test images inside the samples' k-NN manifold (k = 3)."),
    ("density", DENSITY_COVERAGE_K,
     "Density: mean count of test k-NN balls holding a sample, over k (k = 5; ≈ 1 ideal)."),
    ("coverage", DENSITY_COVERAGE_K,
     "Coverage: share of test images whose k-NN ball holds a sample (k = 5)."),
):
    _register_prdc_score(_name, _k, _doc)
