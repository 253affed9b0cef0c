"""The metric registry: each metric's name, direction, what it needs, and how to compute it.

A metric computed in a feature space carries its extractor in its key, ``fid[lenet-mnist]``:
the same registered ``fid`` gives one score per extractor, and a number never travels without
the space it was measured in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from latentbench.models.registry import InputError, Registry


@dataclass(frozen=True)
class Score:
    """A metric's value with what it was measured on.

    Attributes:
        value: the number that goes into results.csv.
        samples: how many images (or generated samples) the value averages over; for two-set
            scores (FID, PRDC) the size of the generated set (the real set is stated in
            ``details``).
        details: anything more that belongs in metrics.json but not in the table (KL per latent
            dimension, the real-set size, a KID standard deviation): JSON-serialisable.
        std_error: the standard error of ``value`` over the test set (a bootstrap over test
            images, ``std/√n`` of per-image values, or the estimator's own variance), ``None``
            where none is computed; results.csv and the tables carry it as ± for one seed.
        caveat: why this value may not be compared with other models' (an estimate at its
            ceiling, say); it is kept, flagged and never ranked.
    """

    value: float
    samples: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    std_error: float | None = None
    caveat: str | None = None


Compute = Callable[..., "float | Score"]


#: The families metrics are grouped in, in the order the report and the tables show them.
FAMILIES = ("reconstruction", "likelihood", "samples", "interpolation", "latent",
            "disentanglement", "cost", "other")


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: registry key and, for metrics outside a feature space, the column name in
            results.csv.
        higher_is_better: the direction in which the metric improves; ``None`` for a score whose
            ideal is a target value, or one that has no ideal at all.
        family: the table the metric sits in: one of :data:`FAMILIES` (``reconstruction``,
            ``likelihood``, ``samples``, ``interpolation``, ``latent``, ``disentanglement``,
            ``cost``).
        bound: the metric is a bound on −log p(x) (distortion, −ELBO, IWAE): absent for a model
            whose decoder sees more of x than the code (its ``side_channel``).
        target: the ideal value of a metric that is best at a value rather than at an end
            (checkerboard 1, density 1, generalization gap 0, data copying 0); tables rank it by
            the distance to the target. ``None`` for directional metrics.
        needs: what it requires of the model (capabilities ``encode``, ``variational``,
            ``sample``) and of the data (``factors``: a ground-truth factor sampler, for the
            disentanglement scores); a run lacking one gets no value — absent, never zero.
        unit: what the number is measured in, for tables and captions.
        compute: ``compute(ctx) → float | Score``; a feature-space metric takes the extractor's
            name too: ``compute(ctx, extractor)``.
        feature_space: computed once per feature extractor, keyed ``name[extractor]``.
        default: computed when a suite names no metrics. Off for timings, which differ from
            run to run and would make a suite's results non-reproducible.
        datasets: the datasets it is defined on (ACAI scores need ``lines``); ``None``: any.
        uses_prior: it reads the model's prior p(z) (its log-density or its draws): the
            evaluation records which prior in the score's details (``prior``). Every metric of
            the ``samples`` family does (samples decode prior draws).
    """

    name: str
    higher_is_better: bool | None
    needs: frozenset[str]
    unit: str
    compute: Compute
    feature_space: bool = False
    default: bool = True
    datasets: frozenset[str] | None = None
    target: float | None = None
    family: str = "other"
    bound: bool = False
    uses_prior: bool = False

    def __post_init__(self) -> None:
        if self.target is not None and self.higher_is_better is not None:
            raise ValueError(f"metric {self.name!r}: a target metric has no direction")
        if self.family not in FAMILIES:
            raise ValueError(f"metric {self.name!r}: family must be one of {', '.join(FAMILIES)}")

    @property
    def description(self) -> str:
        """The first line of the compute function's docstring."""
        return (self.compute.__doc__ or "").strip().splitlines()[0]

    def applies_to(self, capabilities: Iterable[str], dataset: str | None = None) -> bool:
        """Whether a model with ``capabilities`` trained on ``dataset`` gets this metric."""
        if self.datasets is not None and dataset is not None and dataset not in self.datasets:
            return False
        return self.needs <= frozenset(capabilities)


METRICS: Registry[Metric] = Registry("metric", "eval.metrics")

_KEY = re.compile(r"^(?P<name>[A-Za-z0-9_]+)(?:\[(?P<extractor>[^\[\]]+)\])?$")


def metric_key(name: str, extractor: str | None) -> str:
    """The results key of metric ``name`` in feature space ``extractor``: ``fid[lenet-mnist]``."""
    return name if extractor is None else f"{name}[{extractor}]"


def parse_key(key: str) -> tuple[Metric, str | None]:
    """The registered metric and the extractor of a results key (``None`` outside a feature
    space); a bare feature-space name such as ``fid`` comes back with extractor ``None``.

    Raises:
        InputError: malformed key, unknown metric, or brackets on a metric without features.
    """
    match = _KEY.match(key) if isinstance(key, str) else None
    if match is None:
        raise InputError(f"eval.metrics: {key!r} is not a metric name or name[extractor]")
    metric = METRICS.get(match["name"])
    extractor = match["extractor"]
    if extractor is not None and not metric.feature_space:
        raise InputError(f"eval.metrics: {metric.name!r} is not computed in a feature space; "
                         f"drop [{extractor}]")
    return metric, extractor


def register_metric(
    name: str, *, higher_is_better: bool | None = None, target: float | None = None,
    family: str = "other", bound: bool = False, needs: Iterable[str] = (), unit: str = "",
    feature_space: bool = False, default: bool = True, datasets: Iterable[str] | None = None,
    uses_prior: bool = False,
) -> Callable[[Compute], Compute]:
    """Decorator: register ``fn`` as metric ``name`` (see :class:`Metric`); returns ``fn``.

    Give ``higher_is_better`` for a metric that improves towards one end, or ``target`` for one
    that is best at a value.
    """

    def add(fn: Compute) -> Compute:
        METRICS.register(name)(Metric(
            name, higher_is_better, frozenset(needs), unit, fn, feature_space, default,
            None if datasets is None else frozenset(datasets), target, family, bound,
            uses_prior or family == "samples"))
        return fn

    return add
