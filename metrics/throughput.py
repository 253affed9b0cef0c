"""Throughput as registered metrics: ``train_img_s``, ``encode_img_s``, ``decode_img_s``,
``latency_ms``, ``peak_mem_mb``, ``params`` and ``flops_per_img``.

Each runs one measurement of :mod:`latentbench.metrics.measurements` (what is timed or counted
is described there, how it is timed in :mod:`latentbench.metrics.timing`) plainly (float32, no
compilation) at the evaluation batch size, on the trained model, with the global RNGs forked so
that the timed steps do not shift the random draws of the metrics after them. A suite that names
the timings in ``[eval] metrics`` gets them; they are not in a suite's default metrics, since
they differ from run to run. ``params`` and ``flops_per_img`` are deterministic and are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from latentbench.metrics.context import EvalContext
from latentbench.metrics.measurements import (
    forked_rng,
    loss_forward_flops,
    measure_decode,
    measure_encode,
    measure_latency,
    measure_training,
    parameter_count,
)
from latentbench.metrics.peak_memory import MIB
from latentbench.metrics.registry import register_metric
from latentbench.metrics.timing import ThroughputOptions

__all__ = [
    "METRIC_OPTIONS",
    "decode_img_s",
    "encode_img_s",
    "flops_per_img",
    "latency_ms",
    "params",
    "peak_mem_mb",
    "train_img_s",
]

#: Fewer calls than ``latentbench bench`` makes: a suite pays for these in every run.
METRIC_OPTIONS = ThroughputOptions(repeats=5, warmup=2)


def _metric_batch(ctx: EvalContext) -> Tensor:
    return ctx.test_images[: ctx.batch_size].to(ctx.device)


def _measured(ctx: EvalContext, measure: Callable[[Tensor], float]) -> float:
    with forked_rng(ctx.device, ctx.seed):
        return measure(_metric_batch(ctx))


@register_metric("train_img_s", family="cost", needs=("decode",), higher_is_better=True,
                 unit="img/s", default=False)
def train_img_s(ctx: EvalContext) -> float:
    """Training images per second (forward, backward, optimiser step) at the eval batch size."""
    return _measured(ctx, lambda x: measure_training(ctx.model, x, METRIC_OPTIONS).timing.img_s)


@register_metric("encode_img_s", family="cost", higher_is_better=True, needs=("encode",),
                 unit="img/s", default=False)
def encode_img_s(ctx: EvalContext) -> float:
    """Images encoded per second at the eval batch size."""
    return _measured(ctx, lambda x: measure_encode(ctx.model, x, METRIC_OPTIONS).img_s)


@register_metric("decode_img_s", family="cost", needs=("decode",), higher_is_better=True,
                 unit="img/s", default=False)
def decode_img_s(ctx: EvalContext) -> float:
    """Codes z ~ N(0, I) decoded per second at the eval batch size."""

    def measure(x: Tensor) -> float:
        codes = torch.randn(len(x), ctx.model.latent_dim, device=x.device)
        return measure_decode(ctx.model, codes, METRIC_OPTIONS).img_s

    return _measured(ctx, measure)


@register_metric("latency_ms", family="cost", needs=("decode",), higher_is_better=False,
                 unit="ms", default=False)
def latency_ms(ctx: EvalContext) -> float:
    """Milliseconds for one image: encode and decode, or decode alone without an encoder."""
    return _measured(ctx, lambda x: measure_latency(ctx.model, x[:1], METRIC_OPTIONS).median_ms)


@register_metric("peak_mem_mb", family="cost", needs=("decode",), higher_is_better=False,
                 unit="MiB", default=False)
def peak_mem_mb(ctx: EvalContext) -> float:
    """Peak memory a training step adds at the eval batch size (weights copy, grads, state)."""
    return _measured(ctx, lambda x: measure_training(
        ctx.model, x, ThroughputOptions(repeats=1, warmup=1)).peak_bytes / MIB)


@register_metric("params", family="cost", higher_is_better=False, unit="parameters")
def params(ctx: EvalContext) -> float:
    """Number of trainable and frozen parameters of the model."""
    return float(parameter_count(ctx.model))


@register_metric("flops_per_img", family="cost", needs=("decode",), higher_is_better=False,
                 unit="FLOP")
def flops_per_img(ctx: EvalContext) -> float:
    """FLOPs of one forward pass of the training loss per image (matmuls and convolutions)."""
    return _measured(ctx, lambda x: loss_forward_flops(ctx.model, x))
