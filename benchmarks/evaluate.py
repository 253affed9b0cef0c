"""The evaluation driver: which metrics a run gets, computing them, and the report's images."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from latentbench.benchmarks.config import EvalSpec
from latentbench.benchmarks.storage import write_bytes_atomic, write_json_atomic
from latentbench.metrics import METRICS, EvalContext, Metric
from latentbench.models.protocol import LatentModel


def check_metric_names(spec: EvalSpec) -> None:
    """Raise :class:`InputError` for a metric name that is not registered."""
    for name in spec.metrics or ():
        METRICS.get(name)


def select_metrics(spec: EvalSpec, model: LatentModel) -> list[Metric]:
    """The metrics asked for (all registered ones when none are named) that apply to ``model``.

    One that needs a capability the model lacks is left out: absent from results, never zero.
    """
    names = spec.metrics if spec.metrics is not None else list(METRICS)
    chosen = [METRICS.get(name) for name in names]
    return [m for m in chosen if m.applies_to(model.capabilities)]


@torch.no_grad()
def evaluate(model: LatentModel, test_images: torch.Tensor, train_images: torch.Tensor,
             spec: EvalSpec, seed: int) -> dict[str, float]:
    """Compute the selected metrics; passes shared between metrics run once."""
    model.eval()
    ctx = EvalContext(model=model, test_images=test_images, train_images=train_images,
                      batch_size=spec.batch_size, seed=seed)
    return {metric.name: metric.compute(ctx) for metric in select_metrics(spec, model)}


def _png(images: torch.Tensor, nrow: int) -> bytes:
    # Imported here: torchvision takes ~2 s to import, which every CLI call would otherwise pay.
    from torchvision.utils import make_grid, save_image

    buffer = io.BytesIO()
    save_image(make_grid(images.float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0),
               buffer, format="png")
    return buffer.getvalue()


@torch.no_grad()
def write_images(model: LatentModel, test_images: torch.Tensor, spec: EvalSpec, seed: int,
                 run_dir: Path) -> dict[str, str]:
    """Write ``reconstructions.png`` (inputs above their reconstructions) for models with an
    encoder, ``samples.png`` (prior samples) for models that sample, and ``images.json`` with a
    caption for each; return the captions."""
    model.eval()
    written: dict[str, str] = {}
    if "encode" in model.capabilities:
        inputs = test_images[: spec.grid_images].to(model.device)
        grid = torch.cat([inputs, model.reconstruct(inputs)])
        write_bytes_atomic(run_dir / "reconstructions.png", _png(grid, nrow=len(inputs)))
        written["reconstructions.png"] = "top row: test inputs; row below: their reconstructions"
    if "sample" in model.capabilities:
        samples = model.sample(spec.samples, generator=torch.Generator().manual_seed(seed))
        nrow = max(1, round(spec.samples**0.5))
        write_bytes_atomic(run_dir / "samples.png", _png(samples, nrow=nrow))
        written["samples.png"] = model.sampling
    write_json_atomic(run_dir / "images.json", written)
    return written
