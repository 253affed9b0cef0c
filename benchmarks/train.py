"""The training loop: one flat pass over epochs and batches, with checkpoints and a NaN guard.

Data lives on the device as one tensor and is batched by indexing with a shuffled permutation,
so no per-sample Python work happens in the loop. Each epoch but the last ends with an atomic
checkpoint, written behind the loop (:mod:`checkpoint`); the last one's place is taken by the
run's ``model.pt``. Starting the same run again picks up after the last checkpointed epoch and,
on the CPU, reproduces the uninterrupted run bit for bit (the shuffle of epoch e depends only on
(seed, e), and the global RNG state used by the reparameterization noise is checkpointed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from latentbench.benchmarks.checkpoint import CheckpointWriter, resume, training_state
from latentbench.benchmarks.config import TrainSpec
from latentbench.models.protocol import LatentModel

# How often (in steps) the loss is read back from the device: each read is a sync, so the guard
# checks a running sum rather than every step; a NaN or Inf poisons the sum and is still caught.
CHECK_EVERY = 20
#: A run has diverged when the running mean loss of an epoch is non-finite or its magnitude
#: exceeds this. An absolute bound, not one relative to the first epoch: losses are summed over
#: pixels, so a healthy model's lie between about -1e4 (a Gaussian likelihood) and 1e4 (BCE on a
#: 3×32×32 image) on every shipped suite, while an exploding one (Adam at lr 10 on an AE) is past
#: 1e16 within an epoch; a GAN's losses near 0 make any ratio rule fire on noise.
DIVERGED_LOSS = 1e12


@dataclass
class TrainOutcome:
    """How training ended: ``failed`` with a ``reason``, or not; per-epoch mean losses."""

    failed: bool = False
    reason: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int = 0


def epoch_permutation(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The shuffle of one epoch: a function of (seed, epoch) only, so resuming reproduces it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def accumulate(totals: dict[str, torch.Tensor], pending: list[dict[str, torch.Tensor]]) -> None:
    """Add the values logged in ``pending`` (one dict per step) to the float64 running sums in
    ``totals``, one stacked sum per name, and empty ``pending``."""
    for name in dict.fromkeys(name for logged in pending for name in logged):
        block = torch.stack([logged[name] for logged in pending if name in logged])
        block = block.double().sum(0)
        totals[name] = totals[name] + block if name in totals else block
    pending.clear()


def diverged(mean_loss: float) -> str | None:
    """Why ``mean_loss`` (an epoch's running mean) ends training, or ``None`` if it does not."""
    if not math.isfinite(mean_loss):
        return f"non-finite loss ({mean_loss})"
    if abs(mean_loss) > DIVERGED_LOSS:
        return f"exploding loss ({mean_loss:.3g}, beyond ±{DIVERGED_LOSS:.0e})"
    return None


def train(model: LatentModel, train_images: torch.Tensor, spec: TrainSpec, seed: int,
          checkpoint: Path, progress: bool = True,
          epoch_images: Callable[[int, int], torch.Tensor] | None = None) -> TrainOutcome:
    """Train ``model`` on ``train_images`` (float32 ``[N, C, H, W]`` in [0, 1]) with Adam.

    Checkpoints go to ``checkpoint`` (the run folder's ``checkpoint.pt``), and training resumes
    from it when it is present and readable. A diverged loss (see :func:`diverged`) stops
    training and returns ``failed`` with the reason, epoch and step; it does not raise.
    ``epoch_images(epoch, seed)``, when given, supplies each epoch's training images instead
    (``data.binarize = "dynamic"``: a new Bernoulli draw per epoch, a function of the epoch, so
    a resumed run sees the same draws).
    """
    if spec.epochs == 0:  # scored as built or loaded: no optimiser, no checkpoint
        model.eval()
        return TrainOutcome()
    device = model.device
    images = train_images.to(device)
    # Before the resume, so that a checkpoint's state replaces whatever the hook sets.
    model.prepare_training(len(images))
    optimizers = model.configure_optimizers(spec.lr)
    outcome = TrainOutcome()
    history = resume(checkpoint, model, optimizers)
    if history is not None:
        outcome.history = history
        outcome.resumed_from_epoch = len(history)
        if progress:
            tqdm.write(f"{checkpoint.parent.name}: resuming after epoch "
                       f"{outcome.resumed_from_epoch}")

    writer = CheckpointWriter(checkpoint)
    last_checkpoint = time.perf_counter()
    model.train()
    steps = math.ceil(len(images) / spec.batch_size)
    for epoch in range(outcome.resumed_from_epoch, spec.epochs):
        started = time.perf_counter()
        totals: dict[str, torch.Tensor] = {}  # running sums on the device: no sync per step
        pending: list[dict[str, torch.Tensor]] = []  # logged since the last read, not yet summed
        if epoch_images is not None:  # data.binarize = "dynamic": a new draw each epoch
            images = epoch_images(epoch, seed).to(device)
        order = epoch_permutation(len(images), seed, epoch, device)
        bar = tqdm(order.split(spec.batch_size), total=steps, leave=False, mininterval=1.0,
                   desc=f"epoch {epoch + 1}/{spec.epochs}", disable=None if progress else True)
        for step, index in enumerate(bar, start=1):
            terms = model.train_step(images[index], optimizers)
            # Only detached references here: a cast and an add per logged value were 8 kernel
            # launches a step for a VAE, 7% of a launch-bound GPU step; they are summed in
            # blocks at each read instead.
            pending.append({name: value.detach()
                            for name, value in {"loss": terms.loss, **terms.parts}.items()})
            if step % CHECK_EVERY == 0 or step == steps:
                accumulate(totals, pending)
                mean_loss = totals["loss"].item() / step
                why = diverged(mean_loss)
                if why is not None:
                    bar.close()
                    writer.wait()
                    outcome.failed = True
                    outcome.reason = f"{why} in epoch {epoch + 1}, by step {step} of {steps}"
                    return outcome
                bar.set_postfix(loss=f"{mean_loss:.4g}", refresh=False)
        outcome.history.append({"epoch": epoch + 1,
                                **{name: total.item() / steps for name, total in totals.items()},
                                "seconds": time.perf_counter() - started})
        # After the last epoch the run's model.pt takes the checkpoint's place.
        due = time.perf_counter() - last_checkpoint >= spec.checkpoint_seconds
        if due and epoch + 1 < spec.epochs:
            last_checkpoint = time.perf_counter()
            writer.save(training_state(model, optimizers, outcome.history))
    writer.wait()
    model.eval()
    return outcome
