"""The throughput measurements of a model: training, encoding, decoding, latency, memory, FLOPs.

What is measured, per call of one batch (each timed as :mod:`latentbench.metrics.timing` says):

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
  temporaries (:class:`~latentbench.metrics.peak_memory.MemoryProbe`);
- **FLOPs** (``flops_per_img``): one forward pass of the training loss (:meth:`loss`, no
  backward) per image, counted by :func:`~latentbench.metrics.timing.count_flops`. The achieved
  FLOP/s of each measurement uses the FLOPs of exactly what it timed: forward + backward of one
  training step for training, the forward of :meth:`encode` / :meth:`decode` for those.

:func:`measure_model` runs all of them with
:class:`~latentbench.metrics.timing.ThroughputOptions` (mixed precision, channels-last,
``torch.compile``) for ``latentbench bench``; the registered metrics
(:mod:`latentbench.metrics.throughput`) run them plainly at the evaluation batch size.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from latentbench.metrics.peak_memory import MIB, MemoryProbe
from latentbench.metrics.timing import (
    ThroughputOptions,
    Timing,
    autocast,
    count_flops,
    time_calls,
)
from latentbench.models.protocol import LatentModel
from latentbench.models.registry import check_int

__all__ = [
    "FlopCounts",
    "ModelThroughput",
    "TrainingMeasurement",
    "flop_counts",
    "forked_rng",
    "inference_path",
    "loss_forward_flops",
    "measure_decode",
    "measure_encode",
    "measure_latency",
    "measure_model",
    "measure_training",
    "parameter_count",
    "prepare_input",
    "prepare_model",
    "training_notes",
    "training_step",
]


def parameter_count(model: torch.nn.Module) -> int:
    """Number of parameters (each shared tensor once)."""
    return sum(p.numel() for p in model.parameters())



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


def training_step(model: LatentModel, options: ThroughputOptions,
                  n_train: int) -> Callable[[Tensor], None]:
    """One optimisation step on a batch, as a callable, with the model's own optimisers, after
    the trainer's :meth:`~LatentModel.prepare_training` with ``n_train`` (the timed steps train
    on one batch, so its size; β-TCVAE's minibatch-weighted sampling needs one, and it changes
    no computation of a step).

    In float32 this is the model's own :meth:`~LatentModel.train_step`. With ``options.amp``,
    a model that keeps the default ``train_step`` is stepped the standard mixed-precision way
    (the same step, split): the loss under autocast, backward and step outside it, and with
    fp16 a ``GradScaler`` that scales the loss (small fp16 gradients would underflow to zero)
    and skips steps whose gradients overflowed. A model that overrides ``train_step`` (a GAN
    with two players) runs it whole under autocast; fp16 then goes without loss scaling, since
    the protocol gives no hook to scale inside someone else's step (:func:`training_notes`).
    Autograd is on inside the step even when the caller runs under ``torch.no_grad()``.
    """
    model.prepare_training(n_train)
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
        step = training_step(trainee, options, len(batch))
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
    step = training_step(trainee, ThroughputOptions(), n)
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
        InputError: ``batch_size`` below 1 (``"batch_size: must be a positive integer"``).
        CompileFailed: ``options.compile`` and compilation failed (an ``InputError``).
    """
    check_int(batch_size, "batch_size", minimum=1)
    device = model.device
    generator = torch.Generator().manual_seed(seed)
    batch = torch.rand(batch_size, *image_shape, generator=generator).to(device)
    codes = torch.randn(batch_size, model.latent_dim, generator=generator).to(device)
    with forked_rng(device, seed):
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
def forked_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the global RNGs for a measurement and restore them after: the reparameterisation
    noise of timed steps must not shift the random draws of whatever runs next."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
