"""Timing a call and counting its FLOPs: the tools every throughput measurement is made with.

Timing follows three rules (README, "Throughput"):

- untimed warm-up calls first: the first calls pay for lazy initialisation, oneDNN/cuDNN
  algorithm search and, with ``compile``, compilation;
- the device is synchronised inside the timed region (``torch.cuda.synchronize`` before the
  clock stops): CUDA kernels are launched asynchronously, and without the sync a GPU timing
  measures the launch, 2–60× too fast;
- several timed calls, reported as their median and interquartile range (IQR = q75 − q25), so
  one interrupted call moves neither.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which counts matrix
multiplications and convolutions (2 FLOPs per multiply-add; element-wise operations are not
counted).

Errors name the fields of :class:`ThroughputOptions` (``repeats``, ``amp``, ...); the command
line (:mod:`latentbench.benchmarks.bench`) checks its flags before it builds the options.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from latentbench.models.registry import InputError, check_int

__all__ = [
    "AMP_DTYPES",
    "CompileFailed",
    "ThroughputOptions",
    "Timing",
    "autocast",
    "check_amp",
    "count_flops",
    "synchronize",
    "time_calls",
]

AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ThroughputOptions:
    """How a model is run while it is timed.

    Attributes:
        repeats: timed calls per measurement (>= 1); figures are their median and IQR.
        warmup: untimed calls before them (>= 1, so that lazy initialisation and compilation
            never land in a timed call).
        amp: ``None`` (float32), ``"bf16"`` or ``"fp16"``: run under :func:`torch.autocast`
            with that dtype; fp16 training scales the loss with a ``GradScaler`` (see
            :func:`latentbench.metrics.measurements.training_step`).
        channels_last: weights and inputs in ``torch.channels_last`` memory format.
        compile: compile every top-level submodule's ``forward`` in place
            (``nn.Module.compile``): the protocol's entry points (``encode``, ``decode``,
            ``loss``, ``train_step``) are methods around those submodules, not one ``forward``.
        lr: learning rate of the optimisers (it does not change the speed).

    Raises:
        InputError: a count below 1 or an unknown ``amp``, naming the field
            (``"repeats: must be a positive integer, got 0"``).
    """

    repeats: int = 10
    warmup: int = 3
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    lr: float = 1e-3

    def __post_init__(self) -> None:
        check_int(self.repeats, "repeats", minimum=1)
        check_int(self.warmup, "warmup", minimum=1)
        check_amp(self.amp, "amp")


def check_amp(amp: object, field: str) -> str | None:
    """``amp`` if it is ``None`` or a key of :data:`AMP_DTYPES`.

    Raises:
        InputError: ``"<field>: must be one of bf16, fp16, got 'fp8'"``.
    """
    if amp is not None and amp not in AMP_DTYPES:
        raise InputError(f"{field}: must be one of {', '.join(AMP_DTYPES)}, got {amp!r}")
    return amp  # type: ignore[return-value]


class CompileFailed(InputError):
    """``torch.compile`` failed at the first call of a timed function.

    Attributes:
        reason: what failed and what it needs, without a field name in front, so that the
            command line can put its flag there.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"compile: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Timing:
    """Seconds of each timed call, each of which processed ``items`` images.

    Attributes:
        seconds: wall-clock seconds of each timed call, device synchronised.
        items: images per call (the batch size).
    """

    seconds: tuple[float, ...]
    items: int

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def img_s(self) -> float:
        """Images per second at the median call time."""
        return self.items / self.median_s

    @property
    def img_s_iqr(self) -> float:
        """Interquartile range of the per-call images per second."""
        return _iqr([self.items / s for s in self.seconds])

    @property
    def median_ms(self) -> float:
        return 1e3 * self.median_s

    @property
    def iqr_ms(self) -> float:
        return 1e3 * _iqr(self.seconds)


def _iqr(values: list[float] | tuple[float, ...]) -> float:
    if len(values) < 2:
        return 0.0
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return quartiles[2] - quartiles[0]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); the CPU runs synchronously."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, options: ThroughputOptions) -> contextlib.AbstractContextManager:
    """:func:`torch.autocast` to ``options.amp`` on ``device``, or nothing for float32."""
    if options.amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[options.amp])


def time_calls(fn: Callable[[], object], device: torch.device, items: int,
               options: ThroughputOptions) -> Timing:
    """Time ``fn`` (one batch of ``items`` images): ``options.warmup`` untimed calls, then
    ``options.repeats`` timed ones, each ending with a device sync inside the timed region.

    Raises:
        CompileFailed: ``options.compile`` and the first warm-up call, where ``torch.compile``
            compiles, failed; one line instead of a traceback.
    """
    _first_call(fn, options)
    for _ in range(options.warmup - 1):
        fn()
    synchronize(device)
    seconds = []
    for _ in range(options.repeats):
        started = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    return Timing(tuple(seconds), items)


def _first_call(fn: Callable[[], object], options: ThroughputOptions) -> None:
    if not options.compile:
        fn()
        return
    try:
        fn()
    except Exception as err:  # compilation errors come from many layers (dynamo, inductor, cc)
        lines = str(err).strip().splitlines() or [type(err).__name__]
        raise CompileFailed(f"torch.compile failed ({type(err).__name__}: {lines[0][:200]}); "
                            f"on the CPU it needs a working C++ compiler, on CUDA triton"
                            ) from None


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` as :class:`FlopCounterMode` counts them: matmuls and
    convolutions, forward and (if ``fn`` runs one) backward, 2 per multiply-add."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())
