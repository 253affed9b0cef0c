"""Throughput: how fast a model trains, encodes and decodes, and what that costs.

Timing follows three rules (METRICS.md, "Throughput"):

- untimed warm-up calls first: the first calls pay for lazy initialisation, oneDNN/cuDNN
  algorithm search and, with ``compile``, compilation;
- the device is synchronised inside the timed region (``torch.cuda.synchronize`` before the
  clock stops): CUDA kernels are launched asynchronously, and without the sync a GPU timing
  measures the launch, 2–60× too fast;
- several timed calls, reported as their median and interquartile range (IQR = q75 − q25), so
  one interrupted call moves neither.

What is measured, per call of one batch:

- **training** (``train_img_s``): one optimisation step through the model's own
  :meth:`~latentbench.models.LatentModel.train_step` and
  :meth:`~latentbench.models.LatentModel.configure_optimizers` (forward, backward, optimiser
  step), on a deep copy, so the weights of the model passed in are never touched;
- **encoding** (``encode_img_s``): :meth:`encode` of a batch, no autograd; models without an
  encoder (a GAN) get none — absent, never zero;
- **decoding** (``decode_img_s``): :meth:`decode` of a batch of codes z ~ N(0, I) (an
  ``unpool-max`` decoder takes its no-switches path, as when sampling);
- **latency** (``latency_ms``): one image through the inference path: encode then decode
  (:meth:`reconstruct`) for a model with an encoder, decode alone for one without;
- **peak memory** (``peak_mem_mb``, MiB): what the training steps add to the memory in use
  before them — the model copy, its gradients and optimiser state, activations and
  temporaries. On CUDA: ``torch.cuda.max_memory_allocated`` after
  ``torch.cuda.reset_peak_memory_stats``, minus the bytes allocated before. On the CPU: growth
  of the resident set (Linux: ``VmHWM`` after resetting it through ``/proc/self/clear_refs``,
  minus ``VmRSS`` before; elsewhere ``ru_maxrss``), an estimate: the allocator may reuse memory
  freed earlier in the process (glibc's is trimmed first to limit that), and with ``compile``
  the compiler's own memory counts;
- **FLOPs** (``flops_per_img``): counted by :class:`torch.utils.flop_counter.FlopCounterMode`,
  which counts matrix multiplications and convolutions (2 FLOPs per multiply-add; element-wise
  operations are not counted). The registered ``flops_per_img`` is one forward pass of the
  training loss (:meth:`loss`, no backward) per image. The achieved FLOP/s of each measurement
  uses the FLOPs of exactly what it timed: forward + backward of one training step for
  training, the forward of :meth:`encode` / :meth:`decode` for those.

:func:`measure_model` runs all of them with :class:`ThroughputOptions` (mixed precision,
channels-last, ``torch.compile``) for ``latentbench bench``; the registered metrics run them
plainly at the evaluation batch size, so a suite that names them in ``[eval] metrics`` gets
them (timings are not in a suite's default metrics: they differ from run to run).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import os
import platform
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from latentbench.metrics.context import EvalContext
from latentbench.metrics.registry import register_metric
from latentbench.models.protocol import LatentModel
from latentbench.models.registry import InputError

AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}
MIB = 2**20


@dataclass(frozen=True)
class ThroughputOptions:
    """How a model is run while it is timed.

    Attributes:
        repeats: timed calls per measurement (>= 1); figures are their median and IQR.
        warmup: untimed calls before them (>= 1, so that lazy initialisation and compilation
            never land in a timed call).
        amp: ``None`` (float32), ``"bf16"`` or ``"fp16"``: run under :func:`torch.autocast`
            with that dtype; fp16 training scales the loss with a ``GradScaler`` (see
            :func:`training_step`).
        channels_last: weights and inputs in ``torch.channels_last`` memory format.
        compile: compile every top-level submodule's ``forward`` in place
            (``nn.Module.compile``): the protocol's entry points (``encode``, ``decode``,
            ``loss``, ``train_step``) are methods around those submodules, not one ``forward``.
        lr: learning rate of the optimisers (it does not change the speed).

    Raises:
        InputError: a count below 1 or an unknown ``amp``, naming the command-line flag.
    """

    repeats: int = 10
    warmup: int = 3
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    lr: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("repeats", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"--{name}: must be an integer >= 1, got {value!r}")
        if self.amp is not None and self.amp not in AMP_DTYPES:
            raise InputError(f"--amp: must be one of {', '.join(AMP_DTYPES)}, got {self.amp!r}")


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

    The first warm-up call is where ``torch.compile`` compiles: if it fails with compilation
    on, the error becomes one :class:`InputError` line instead of a traceback.
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
        raise InputError(f"--compile: torch.compile failed ({type(err).__name__}: "
                         f"{lines[0][:200]}); on the CPU it needs a working C++ compiler, on "
                         f"CUDA triton; run without --compile") from None


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` as :class:`FlopCounterMode` counts them: matmuls and
    convolutions, forward and (if ``fn`` runs one) backward, 2 per multiply-add."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def parameter_count(model: torch.nn.Module) -> int:
    """Number of parameters (each shared tensor once)."""
    return sum(p.numel() for p in model.parameters())


# --- memory ----------------------------------------------------------------------------------


def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            match = re.search(rf"^{field_name}:\s+(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_resident_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _trim_heap() -> None:
    """Return freed heap pages to the OS (glibc), so later growth shows in the resident set
    instead of reusing pages an earlier computation left behind."""
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    with contextlib.suppress(OSError, AttributeError):
        if name:
            ctypes.CDLL(name).malloc_trim(0)


def _ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


@dataclass
class MemoryProbe:
    """Peak memory growth of the code run inside ``with MemoryProbe(device) as probe:``.

    After the block, :attr:`peak_bytes` holds the growth (see the module docstring for how it
    is read on CUDA and on the CPU) and :attr:`method` says which way it was read.
    """

    device: torch.device
    peak_bytes: int = 0
    method: str = ""
    _baseline: int = 0
    _resettable: bool = False

    def __enter__(self) -> MemoryProbe:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated growth"
            return self
        _trim_heap()
        self._resettable = _reset_resident_peak()
        rss_kib = _proc_status_kib("VmRSS") if self._resettable else None
        if rss_kib is not None:
            self._baseline = rss_kib * 1024
            self.method = "resident-set growth (VmHWM - VmRSS)"
        else:
            self._baseline = _ru_maxrss_bytes()
            self.method = "resident-set growth (ru_maxrss; a lower bound)"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            hwm_kib = _proc_status_kib("VmHWM") if self._resettable else None
            peak = hwm_kib * 1024 if hwm_kib is not None else _ru_maxrss_bytes()
        self.peak_bytes = max(0, peak - self._baseline)


# --- the measurements ------------------------------------------------------------------------


def prepare_model(model: LatentModel, options: ThroughputOptions) -> LatentModel:
    """Apply ``options.channels_last`` and ``options.compile`` to ``model`` in place; return it.

    Compilation is lazy: it happens, and can fail, at the first call (see :func:`time_calls`).
    """
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    if options.compile:
        for child in model.children():
            child.compile()
    return model


def prepare_input(images: Tensor, options: ThroughputOptions) -> Tensor:
    """``images`` in the memory format the options ask for."""
    if options.channels_last and images.dim() == 4:
        return images.contiguous(memory_format=torch.channels_last)
    return images


def uses_default_train_step(model: LatentModel) -> bool:
    """Whether ``model`` trains with the protocol's default step (one optimiser on ``loss``)."""
    return type(model).train_step is LatentModel.train_step


def training_step(model: LatentModel, options: ThroughputOptions) -> Callable[[Tensor], None]:
    """One optimisation step on a batch, as a callable, with the model's own optimisers.

    In float32 this is the model's own :meth:`~LatentModel.train_step`. With ``options.amp``,
    a model that keeps the default ``train_step`` is stepped the standard mixed-precision way
    (the same step, split): the loss under autocast, backward and step outside it, and with
    fp16 a ``GradScaler`` that scales the loss (small fp16 gradients would underflow to zero)
    and skips steps whose gradients overflowed. A model that overrides ``train_step`` (a GAN
    with two players) runs it whole under autocast; fp16 then goes without loss scaling, since
    the protocol gives no hook to scale inside someone else's step (:func:`training_notes`).
    Autograd is on inside the step even when the caller runs under ``torch.no_grad()``.
    """
    optimizers = model.configure_optimizers(options.lr)
    device = model.device
    if options.amp is None or not uses_default_train_step(model):

        def own_step(x: Tensor) -> None:
            with torch.enable_grad(), autocast(device, options):
                model.train_step(x, optimizers)

        return own_step

    optimizer = optimizers["model"]
    scaler = torch.amp.GradScaler(device.type) if options.amp == "fp16" else None

    def mixed_precision_step(x: Tensor) -> None:
        with torch.enable_grad():
            with autocast(device, options):
                loss = model.loss(x).loss
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()

    return mixed_precision_step


def training_notes(model: LatentModel, options: ThroughputOptions) -> list[str]:
    """Caveats of a training measurement, for the table and the JSON."""
    notes = []
    if options.amp == "fp16" and not uses_default_train_step(model):
        notes.append(f"fp16 training without loss scaling: {type(model).__name__} overrides "
                     f"train_step")
    if options.compile and model.device.type == "cpu":
        notes.append("peak memory includes the compiler's own (CPU, --compile)")
    return notes


@dataclass(frozen=True)
class TrainingMeasurement:
    """Training speed and memory: the timing of one step per call and the peak growth."""

    timing: Timing
    peak_bytes: int
    memory_method: str


def measure_training(model: LatentModel, batch: Tensor,
                     options: ThroughputOptions) -> TrainingMeasurement:
    """Time training steps on ``batch`` and read their peak memory.

    Args:
        model: any :class:`LatentModel` on ``batch``'s device; it is deep-copied (after the
            memory baseline, so the copy's weights count) and left untouched, weights, mode and
            optimiser-free as it came.
        batch: float32 ``[B, C, H, W]`` images on the model's device.
        options: see :class:`ThroughputOptions`; the copy is prepared with them.
    """
    device = batch.device
    with MemoryProbe(device) as probe:
        trainee = prepare_model(copy.deepcopy(model).train(), options)
        step = training_step(trainee, options)
        x = prepare_input(batch, options)
        timing = time_calls(lambda: step(x), device, len(batch), options)
    return TrainingMeasurement(timing, probe.peak_bytes, probe.method)


def measure_encode(model: LatentModel, batch: Tensor, options: ThroughputOptions) -> Timing:
    """Time :meth:`encode` of ``batch`` without autograd; ``model`` is used as it is (prepare
    it with :func:`prepare_model`) and must have the ``encode`` capability."""
    x = prepare_input(batch, options)

    @torch.no_grad()
    def encode() -> None:
        with autocast(batch.device, options):
            model.encode(x)

    return time_calls(encode, batch.device, len(batch), options)


def measure_decode(model: LatentModel, codes: Tensor, options: ThroughputOptions) -> Timing:
    """Time :meth:`decode` of ``codes`` ``[B, latent_dim]`` without autograd; ``model`` is used
    as it is (prepare it with :func:`prepare_model`)."""

    @torch.no_grad()
    def decode() -> None:
        with autocast(codes.device, options):
            model.decode(codes)

    return time_calls(decode, codes.device, len(codes), options)


def inference_path(model: LatentModel) -> str:
    """What the latency measures for ``model``: ``encode+decode`` or ``decode``."""
    return "encode+decode" if "encode" in model.capabilities else "decode"


def measure_latency(model: LatentModel, image: Tensor, options: ThroughputOptions) -> Timing:
    """Time one image ``[1, C, H, W]`` through :func:`inference_path`: reconstruction for a
    model with an encoder, decoding one code z ~ N(0, I) for one without."""
    x = prepare_input(image, options)
    z = torch.randn(1, model.latent_dim, device=image.device)
    run = (lambda: model.reconstruct(x)) if "encode" in model.capabilities else (
        lambda: model.decode(z))

    @torch.no_grad()
    def once() -> None:
        with autocast(image.device, options):
            run()

    return time_calls(once, image.device, 1, options)


@dataclass(frozen=True)
class FlopCounts:
    """FLOPs per image (see :func:`count_flops`) of each measured operation.

    Attributes:
        loss_forward: one forward pass of :meth:`loss` (the registered ``flops_per_img``).
        train_step: one training step, forward and backward (what ``train_img_s`` times).
        encode: :meth:`encode`; ``None`` for a model without an encoder.
        decode: :meth:`decode` of one code.
    """

    loss_forward: float
    train_step: float
    encode: float | None
    decode: float


@torch.no_grad()
def loss_forward_flops(model: LatentModel, batch: Tensor) -> float:
    """FLOPs per image of one forward pass of the training loss, on an eval-mode copy (the
    loss of a VAE in train mode advances its β schedule; a copy leaves ``model`` as it was)."""
    probe = copy.deepcopy(model).eval()
    return count_flops(lambda: probe.loss(batch)) / len(batch)


def flop_counts(model: LatentModel, batch: Tensor) -> FlopCounts:
    """Count the FLOPs of every measured operation on plain (uncompiled, float32) copies of
    ``model``; counts do not depend on the precision or the memory format."""
    n = len(batch)
    trainee = copy.deepcopy(model).train()
    step = training_step(trainee, ThroughputOptions())
    train = count_flops(lambda: step(batch)) / n
    probe = copy.deepcopy(model).eval()
    codes = torch.randn(n, model.latent_dim, device=batch.device)
    with torch.no_grad():
        encode = (count_flops(lambda: probe.encode(batch)) / n
                  if "encode" in model.capabilities else None)
        decode = count_flops(lambda: probe.decode(codes)) / n
    return FlopCounts(loss_forward_flops(model, batch), train, encode, decode)


@dataclass
class ModelThroughput:
    """Everything :func:`measure_model` found for one model.

    Attributes:
        metrics: registered metric names (``train_img_s``, ``encode_img_s``, ``decode_img_s``,
            ``latency_ms``, ``peak_mem_mb``, ``params``, ``flops_per_img``) and the achieved
            ``train_flop_s``, ``encode_flop_s``, ``decode_flop_s``; a measurement that does not
            apply (encoding a GAN) is absent.
        iqr: the interquartile range of each timed metric, in its unit.
        flops: :class:`FlopCounts` as a dict (``*_per_img``).
        latency_path: what ``latency_ms`` measured (:func:`inference_path`).
        memory_method: how ``peak_mem_mb`` was read (:class:`MemoryProbe`).
        notes: caveats (fp16 without loss scaling, compiler memory).
    """

    metrics: dict[str, float]
    iqr: dict[str, float]
    flops: dict[str, float | None]
    latency_path: str
    memory_method: str
    notes: list[str] = field(default_factory=list)


def measure_model(model: LatentModel, image_shape: tuple[int, int, int], batch_size: int,
                  options: ThroughputOptions, seed: int = 0) -> ModelThroughput:
    """Measure training, encoding, decoding, latency, memory and FLOPs of ``model`` on random
    images (uniform in [0, 1], seeded) and codes (N(0, I)).

    Args:
        model: a :class:`LatentModel` already on the device to measure on; not modified.
        image_shape: ``(C, H, W)`` of the images it takes.
        batch_size: images per training step and per encode/decode call (latency uses 1).
        options: see :class:`ThroughputOptions`.
        seed: seeds the random images, codes and the measurement's own random draws.

    Raises:
        InputError: ``batch_size`` below 1, or ``options.compile`` and compilation failed.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"--batch-size: must be an integer >= 1, got {batch_size!r}")
    device = model.device
    generator = torch.Generator().manual_seed(seed)
    batch = torch.rand(batch_size, *image_shape, generator=generator).to(device)
    codes = torch.randn(batch_size, model.latent_dim, generator=generator).to(device)
    with _forked_rng(device, seed):
        counts = flop_counts(model, batch)
        training = measure_training(model, batch, options)
        runner = prepare_model(copy.deepcopy(model).eval(), options)
        timings = {"decode_img_s": measure_decode(runner, codes, options)}
        if "encode" in model.capabilities:
            timings["encode_img_s"] = measure_encode(runner, batch, options)
        latency = measure_latency(runner, batch[:1], options)

    metrics: dict[str, float] = {"train_img_s": training.timing.img_s}
    iqr: dict[str, float] = {"train_img_s": training.timing.img_s_iqr}
    for name, timing in timings.items():
        metrics[name], iqr[name] = timing.img_s, timing.img_s_iqr
    metrics["latency_ms"], iqr["latency_ms"] = latency.median_ms, latency.iqr_ms
    metrics["peak_mem_mb"] = training.peak_bytes / MIB
    metrics["params"] = float(parameter_count(model))
    metrics["flops_per_img"] = counts.loss_forward
    # Achieved FLOP/s: the FLOPs of exactly the operation timed, times its images per second.
    achieved = {"train": counts.train_step, "encode": counts.encode, "decode": counts.decode}
    for name, per_image in achieved.items():
        if per_image is not None and f"{name}_img_s" in metrics:
            metrics[f"{name}_flop_s"] = per_image * metrics[f"{name}_img_s"]
    return ModelThroughput(
        metrics=metrics, iqr=iqr,
        flops={f"{name}_per_img": value for name, value in vars(counts).items()},
        latency_path=inference_path(model), memory_method=training.memory_method,
        notes=training_notes(model, options))


@contextlib.contextmanager
def _forked_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the global RNGs for a measurement and restore them after: the reparameterisation
    noise of timed steps must not shift the random draws of whatever runs next."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# --- the device ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuPeak:
    """An upper-bound estimate of the CPU's float32 peak: cores × clock × FLOPs per cycle.

    Attributes:
        flop_s: the estimate, FLOP/s.
        cores: logical CPUs counted (the torch threads, at most the CPUs this process may use).
        ghz: the highest clock /proc/cpuinfo or sysfs states.
        flops_per_cycle: per core, from the vector flags: 64 with ``avx512f`` (two 512-bit FMA
            units × 16 lanes × 2), 32 with ``avx2`` and ``fma``, 16 with ``avx``, 8 otherwise.
            CPUs with one FMA unit reach half; SMT siblings share their core's units. Both make
            this an over-estimate, which is the safe side for "achieved is below the peak".
        basis: the product spelt out, for the table and the JSON.
    """

    flop_s: float
    cores: int
    ghz: float
    flops_per_cycle: int

    @property
    def basis(self) -> str:
        cores = f"{self.cores} core{'s' if self.cores != 1 else ''}"
        return (f"{cores} × {self.ghz:.2f} GHz × {self.flops_per_cycle} FP32 "
                f"FLOP/cycle = {self.flop_s / 1e9:.0f} GFLOP/s")


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            return cpuinfo.read()
    except OSError:
        return ""


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_peak_flops(threads: int | None = None) -> CpuPeak | None:
    """Estimate the float32 peak of ``threads`` cores (default: torch's thread count) from
    /proc/cpuinfo (see :class:`CpuPeak`); ``None`` where the clock or flags are not stated
    (not Linux, or an architecture whose cpuinfo lacks them)."""
    info = _cpuinfo()
    clocks = [float(m) / 1e3 for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", info, re.MULTILINE)]
    clocks += [float(m) for m in re.findall(r"@\s*([\d.]+)\s*GHz", info)]
    with contextlib.suppress(OSError, ValueError):
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding="ascii") as f:
            clocks.append(int(f.read()) / 1e6)  # kHz
    flags_line = re.search(r"^flags\s*:(.*)$", info, re.MULTILINE)
    if not clocks or flags_line is None:
        return None
    flags = set(flags_line.group(1).split())
    if "avx512f" in flags:
        per_cycle = 64
    elif {"avx2", "fma"} <= flags:
        per_cycle = 32
    elif "avx" in flags:
        per_cycle = 16
    else:
        per_cycle = 8
    cores = min(threads or torch.get_num_threads(), usable_cpus())
    ghz = max(clocks)
    return CpuPeak(cores * ghz * 1e9 * per_cycle, cores, ghz, per_cycle)


def cpu_name() -> str:
    """The CPU's model string from /proc/cpuinfo, else what :mod:`platform` knows."""
    match = re.search(r"^model name\s*:\s*(.+)$", _cpuinfo(), re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


def device_description(device: torch.device) -> dict[str, Any]:
    """The device and software a measurement ran on: name, torch, CUDA and cuDNN versions,
    torch threads, usable CPUs, and the CPU peak estimate (``None`` on CUDA)."""
    description: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cpus": usable_cpus(),
        "cpu_name": cpu_name(),
        "peak_flop_s": None,
        "peak_basis": None,
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        description["device_name"] = torch.cuda.get_device_name(device)
        description["compute_capability"] = f"{properties.major}.{properties.minor}"
        description["device_memory_mb"] = round(properties.total_memory / MIB)
    else:
        description["device_name"] = description["cpu_name"]
        peak = cpu_peak_flops()
        if peak is not None:
            description["peak_flop_s"], description["peak_basis"] = peak.flop_s, peak.basis
    return description


# --- registered metrics ------------------------------------------------------------------------

#: Fewer calls than ``latentbench bench`` makes: a suite pays for these in every run.
METRIC_OPTIONS = ThroughputOptions(repeats=5, warmup=2)


def _metric_batch(ctx: EvalContext) -> Tensor:
    return ctx.test_images[: ctx.batch_size].to(ctx.device)


def _measured(ctx: EvalContext, measure: Callable[[Tensor], float]) -> float:
    with _forked_rng(ctx.device, ctx.seed):
        return measure(_metric_batch(ctx))


@register_metric("train_img_s", higher_is_better=True, unit="img/s", default=False)
def train_img_s(ctx: EvalContext) -> float:
    """Training images per second (forward, backward, optimiser step) at the eval batch size."""
    return _measured(ctx, lambda x: measure_training(ctx.model, x, METRIC_OPTIONS).timing.img_s)


@register_metric("encode_img_s", higher_is_better=True, needs=("encode",), unit="img/s",
                 default=False)
def encode_img_s(ctx: EvalContext) -> float:
    """Images encoded per second at the eval batch size."""
    return _measured(ctx, lambda x: measure_encode(ctx.model, x, METRIC_OPTIONS).img_s)


@register_metric("decode_img_s", higher_is_better=True, unit="img/s", default=False)
def decode_img_s(ctx: EvalContext) -> float:
    """Codes z ~ N(0, I) decoded per second at the eval batch size."""

    def measure(x: Tensor) -> float:
        codes = torch.randn(len(x), ctx.model.latent_dim, device=x.device)
        return measure_decode(ctx.model, codes, METRIC_OPTIONS).img_s

    return _measured(ctx, measure)


@register_metric("latency_ms", higher_is_better=False, unit="ms", default=False)
def latency_ms(ctx: EvalContext) -> float:
    """Milliseconds for one image: encode and decode, or decode alone without an encoder."""
    return _measured(ctx, lambda x: measure_latency(ctx.model, x[:1], METRIC_OPTIONS).median_ms)


@register_metric("peak_mem_mb", higher_is_better=False, unit="MiB", default=False)
def peak_mem_mb(ctx: EvalContext) -> float:
    """Peak memory a training step adds at the eval batch size (weights copy, grads, state)."""
    return _measured(ctx, lambda x: measure_training(
        ctx.model, x, ThroughputOptions(repeats=1, warmup=1)).peak_bytes / MIB)


@register_metric("params", higher_is_better=False, unit="parameters")
def params(ctx: EvalContext) -> float:
    """Number of trainable and frozen parameters of the model."""
    return float(parameter_count(ctx.model))


@register_metric("flops_per_img", higher_is_better=False, unit="FLOP")
def flops_per_img(ctx: EvalContext) -> float:
    """FLOPs of one forward pass of the training loss per image (matmuls and convolutions)."""
    return _measured(ctx, lambda x: loss_forward_flops(ctx.model, x))


__all__ = [
    "AMP_DTYPES",
    "METRIC_OPTIONS",
    "CpuPeak",
    "FlopCounts",
    "MemoryProbe",
    "ModelThroughput",
    "ThroughputOptions",
    "Timing",
    "TrainingMeasurement",
    "count_flops",
    "cpu_peak_flops",
    "device_description",
    "flop_counts",
    "measure_decode",
    "measure_encode",
    "measure_latency",
    "measure_model",
    "measure_training",
    "parameter_count",
    "prepare_model",
    "synchronize",
    "time_calls",
]
