"""The evaluation context's timing: every second counted once, under the metric or shared pass
that spent it, whoever triggered the pass, also when the work raises.

A clock that moves only when a test moves it makes the accounting exact; the real clock's
numbers are checked in ``tests/benchmarks/test_evaluate.py`` by structure only."""

from __future__ import annotations

import pytest
import torch

from latentbench.metrics.context import EvalContext
from latentbench.metrics.features import FeatureOptions, load_extractor


class SteppedClock:
    """A clock that stands still until :meth:`advance` moves it: the work of a test's compute
    functions, in seconds that are exact in binary floating point."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@pytest.fixture()
def timed(replay):
    """``(context, clock)``: a context on a tiny real model that reads ``clock``."""
    images = torch.rand(8, 1, 28, 28)
    clock = SteppedClock()
    return EvalContext(model=replay(images), test_images=images, train_images=images,
                       clock=clock), clock


def test_a_shared_pass_is_counted_once_and_not_in_the_metric_that_triggered_it(timed):
    ctx, clock = timed
    metric_seconds: dict[str, float] = {}

    def outer() -> str:  # a pass that triggers another
        clock.advance(2.0)
        ctx.shared(("inner", 5, "lerp"), lambda: clock.advance(3.0))
        return "outer"

    def first() -> str:
        clock.advance(1.0)
        ctx.shared(("outer",), outer)
        clock.advance(0.5)
        return "first"

    def second() -> str:
        assert ctx.shared(("outer",), outer) == "outer"  # computed already: costs nothing
        clock.advance(0.25)
        return "second"

    assert ctx.measure("first", first, metric_seconds) == "first"
    assert ctx.measure("second", second, metric_seconds) == "second"
    assert metric_seconds == {"first": 1.5, "second": 0.25}
    assert ctx.pass_seconds == {"outer": 2.0, "inner[5, lerp]": 3.0}
    spent = clock.seconds
    assert sum(metric_seconds.values()) + sum(ctx.pass_seconds.values()) == spent == 6.75


def test_the_seconds_of_work_that_raised_are_kept(timed):
    ctx, clock = timed
    metric_seconds: dict[str, float] = {}

    def broken_pass() -> None:
        clock.advance(4.0)
        raise RuntimeError("out of memory")

    def metric() -> None:
        clock.advance(1.0)
        ctx.shared(("broken",), broken_pass)

    for _ in range(2):  # a pass that raised is not kept, so the second metric tries again
        with pytest.raises(RuntimeError, match="out of memory"):
            ctx.measure("metric", metric, metric_seconds)
    assert metric_seconds == {"metric": 2.0}
    assert ctx.pass_seconds == {"broken": 8.0}


def test_the_context_s_own_passes_are_named_by_what_they_compute(replay):
    images = torch.rand(8, 1, 28, 28)
    ctx = EvalContext(model=replay(images), test_images=images, train_images=images,
                      load_extractor=lambda name: load_extractor(name, FeatureOptions()))
    metric_seconds: dict[str, float] = {}
    features = ctx.measure("fid", lambda: ctx.feature_set("lenet-mnist", "samples"),
                           metric_seconds)
    assert ctx.feature_set("lenet-mnist", "samples") is features  # computed once
    assert set(ctx.pass_seconds) == {"extractor[lenet-mnist]", "samples",
                                     "feature_set[lenet-mnist, samples]"}
    assert min([*ctx.pass_seconds.values(), *metric_seconds.values()]) >= 0
