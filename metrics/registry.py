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
    """

    value: float
    samples: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


Compute = Callable[..., "float | Score"]


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: registry key and, for metrics outside a feature space, the column name in
            results.csv.
        higher_is_better: the direction in which the metric improves; ``None`` for a score whose
            ideal is a target value (C_T of data copying is ideal at 0), which tables never rank.
        needs: model capabilities it requires (``encode``, ``variational``, ``sample``); a model
            lacking one gets no value — absent, never zero.
        unit: what the number is measured in, for tables and captions.
        compute: ``compute(ctx) → float | Score``; a feature-space metric takes the extractor's
            name too: ``compute(ctx, extractor)``.
        feature_space: computed once per feature extractor, keyed ``name[extractor]``.
        default: computed when a suite names no metrics. Off for timings, which differ from
            run to run and would make a suite's results non-reproducible.
        datasets: the datasets it is defined on (ACAI scores need ``lines``); ``None``: any.
    """

    name: str
    higher_is_better: bool | None
    needs: frozenset[str]
    unit: str
    compute: Compute
    feature_space: bool = False
    default: bool = True
    datasets: frozenset[str] | None = None

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
    name: str, *, higher_is_better: bool | None, needs: Iterable[str] = (), unit: str = "",
    feature_space: bool = False, default: bool = True, datasets: Iterable[str] | None = None,
) -> Callable[[Compute], Compute]:
    """Decorator: register ``fn`` as metric ``name`` (see :class:`Metric`); returns ``fn``."""

    def add(fn: Compute) -> Compute:
        METRICS.register(name)(Metric(
            name, higher_is_better, frozenset(needs), unit, fn, feature_space, default,
            None if datasets is None else frozenset(datasets)))
        return fn

    return add
