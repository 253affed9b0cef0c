"""The evaluation driver: which metrics a run gets, and computing them into a
:class:`~latentbench.reports.schema.MetricsDocument` (the run's ``metrics.json``)."""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from latentbench.benchmarks.config import EvalSpec
from latentbench.metrics import METRICS, EvalContext, Metric
from latentbench.metrics.context import RealFeatureStore
from latentbench.metrics.factors import FactorSampler
from latentbench.metrics.registry import Score, metric_key, parse_key
from latentbench.models.priors import describe_prior
from latentbench.models.protocol import LatentModel
from latentbench.reports.schema import EvalTimings, MetricsDocument


@dataclass(frozen=True)
class PlannedMetric:
    """One score to compute: a registered metric, in a feature space or not."""

    metric: Metric
    extractor: str | None = None

    @property
    def key(self) -> str:
        return metric_key(self.metric.name, self.extractor)


def check_metric_names(spec: EvalSpec) -> None:
    """Raise :class:`InputError` for a metric key that is not ``name`` or ``name[extractor]``
    of a registered metric."""
    for key in spec.metrics or ():
        parse_key(key)


def plan_metrics(spec: EvalSpec, capabilities: frozenset[str], dataset: str,
                 default_extractors: tuple[str, ...]) -> list[PlannedMetric]:
    """The scores a model gets: the metrics asked for (every default one when none are named)
    that apply to its capabilities and dataset, each feature-space metric once per extractor
    (``spec.features``, else ``default_extractors``) unless its key names one.

    A metric that needs a capability the model lacks is left out: absent, never zero.
    """
    keys = spec.metrics if spec.metrics is not None else [
        name for name, metric in METRICS.items() if metric.default]
    extractors = spec.features if spec.features is not None else default_extractors
    planned: list[PlannedMetric] = []
    for key in keys:
        metric, extractor = parse_key(key)
        if not metric.applies_to(capabilities, dataset):
            continue
        if not metric.feature_space:
            planned.append(PlannedMetric(metric))
        elif extractor is not None:
            planned.append(PlannedMetric(metric, extractor))
        else:
            planned.extend(PlannedMetric(metric, name) for name in extractors)
    return list(dict.fromkeys(planned))  # a key named twice is computed once


@torch.no_grad()
def evaluate(model: LatentModel, test_images: torch.Tensor, train_images: torch.Tensor,
             spec: EvalSpec, seed: int, *, dataset: str = "",
             default_extractors: tuple[str, ...] = (),
             load_extractor: Callable[[str], Any] | None = None,
             real_features: RealFeatureStore | None = None,
             binarize: str = "none", factors: FactorSampler | None = None) -> MetricsDocument:
    """Compute the planned metrics; passes shared between metrics run once.

    A metric that raises is recorded under ``errors`` with its reason and the others go on, so
    an evaluation never loses the scores it already has. For a model with a ``side_channel``
    (its decoder sees more of x than the code) the likelihood bounds are absent, with that
    reason under ``errors``, and the reconstruction metrics carry it as a caveat.

    ``factors``, the dataset's ground-truth factor sampler, makes the metrics that need
    ``factors`` (the disentanglement scores) apply; without it they are absent.

    The document's ``timings`` hold the evaluation's wall-clock seconds (device synchronised)
    and their parts, each second counted once: every computed metric's own seconds, without
    the shared passes it triggered (the first metric to read the test pass or a feature set
    does not pay for it), and every shared pass's (``EvalContext.pass_seconds``). So ``total``
    ≈ Σ metrics + Σ passes; the rest is this loop's bookkeeping.
    """
    model.eval()
    ctx = EvalContext(model=model, test_images=test_images, train_images=train_images,
                      batch_size=spec.batch_size, seed=seed, settings=spec, dataset=dataset,
                      load_extractor=load_extractor, real_features=real_features,
                      binarize=binarize, factors=factors)
    started = ctx.now()
    result = MetricsDocument()
    metric_seconds: dict[str, float] = {}
    # A decoder that sees more of x than the code (max-pooling switches, skip connections):
    # its likelihoods are not bounds on -log p(x), and its reconstructions not a bottleneck's.
    side_channel = getattr(model, "side_channel", None)
    # What the data offers counts with what the model can do: a dataset with a factor sampler
    # gives "factors", which the disentanglement metrics need.
    capabilities = model.capabilities | ({"factors"} if factors is not None else frozenset())
    prior_name = describe_prior(model)  # recorded by every score that reads the prior
    for planned in plan_metrics(spec, capabilities, dataset, default_extractors):
        args = () if planned.extractor is None else (planned.extractor,)
        if side_channel and planned.metric.bound:
            result.errors[planned.key] = (f"not computed: not a bound on -log p(x), because "
                                          f"{side_channel}")
            continue
        try:
            score = ctx.measure(planned.key, partial(planned.metric.compute, ctx, *args),
                                metric_seconds)
        except Exception as error:  # one broken score must not sink the others
            result.errors[planned.key] = "".join(
                traceback.format_exception_only(error)).strip()
            continue
        if not isinstance(score, Score):
            score = Score(float(score))
        result.values[planned.key] = float(score.value)
        result.samples[planned.key] = (score.samples if score.samples is not None
                                       else len(test_images))
        details = dict(score.details or {})
        if planned.metric.uses_prior:
            details["prior"] = prior_name
        if details:
            result.details[planned.key] = details
        if score.std_error is not None:
            result.std_errors[planned.key] = float(score.std_error)
        caveat = score.caveat
        if side_channel and planned.metric.family == "reconstruction":
            caveat = f"{side_channel}: not a bottleneck's reconstruction"
        if caveat:
            result.caveats[planned.key] = caveat
    timings = EvalTimings(total=ctx.now() - started, metrics=metric_seconds,
                          passes=dict(ctx.pass_seconds))
    return dataclasses.replace(result, timings=timings)
