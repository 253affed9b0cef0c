"""The metric registry: each metric's name, direction, what it needs, and how to compute it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from latentbench.models.registry import Registry

if TYPE_CHECKING:
    from latentbench.metrics.context import EvalContext


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: registry key and column name in results.csv.
        higher_is_better: the direction in which the metric improves.
        needs: model capabilities it requires (``encode``, ``variational``, ``sample``); a model
            lacking one gets no value — absent, never zero.
        unit: what the number is measured in, for tables and captions.
        compute: the function ``EvalContext → float``.
    """

    name: str
    higher_is_better: bool
    needs: frozenset[str]
    unit: str
    compute: Callable[[EvalContext], float]

    @property
    def description(self) -> str:
        """The first line of the compute function's docstring."""
        return (self.compute.__doc__ or "").strip().splitlines()[0]

    def applies_to(self, capabilities: Iterable[str]) -> bool:
        return self.needs <= frozenset(capabilities)


METRICS: Registry[Metric] = Registry("metric", "eval.metrics")


def register_metric(
    name: str, *, higher_is_better: bool, needs: Iterable[str] = (), unit: str = ""
) -> Callable[[Callable[[EvalContext], float]], Callable[[EvalContext], float]]:
    """Decorator: register ``fn(ctx) -> float`` as metric ``name``; returns ``fn`` unchanged."""

    def add(fn: Callable[[EvalContext], float]) -> Callable[[EvalContext], float]:
        METRICS.register(name)(Metric(name, higher_is_better, frozenset(needs), unit, fn))
        return fn

    return add
