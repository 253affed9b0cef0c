"""The evaluation driver: which metrics a run gets, computing them, and the report's images."""

from __future__ import annotations

import io
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from latentbench.benchmarks.artifacts import write_latent_artifacts
from latentbench.benchmarks.config import EvalSpec
from latentbench.benchmarks.storage import write_bytes_atomic, write_json_atomic
from latentbench.metrics import METRICS, EvalContext, Metric
from latentbench.metrics.context import RealFeatureStore
from latentbench.metrics.interpolation import interpolation_strips
from latentbench.metrics.registry import Score, metric_key, parse_key
from latentbench.models.protocol import LatentModel

#: Version of the metrics.json layout; a reader meeting another one refuses it.
METRICS_FORMAT = 2


@dataclass(frozen=True)
class PlannedMetric:
    """One score to compute: a registered metric, in a feature space or not."""

    metric: Metric
    extractor: str | None = None

    @property
    def key(self) -> str:
        return metric_key(self.metric.name, self.extractor)


@dataclass
class Evaluation:
    """What :func:`evaluate` found: values by key, sample counts, details and errors.

    Attributes:
        values: key → the number that goes into results.csv.
        samples: key → how many images (or generated samples) the value averages over.
        details: key → what else the metric reported (KL per dimension, a KID std, ...).
        errors: key → why the metric could not be computed; that key has no value.
    """

    values: dict[str, float] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": METRICS_FORMAT, "values": self.values, "samples": self.samples,
                "details": self.details, "errors": self.errors}


def check_metric_names(spec: EvalSpec) -> None:
    """Raise :class:`InputError` for a metric key that is not ``name`` or ``name[extractor]``
    of a registered metric."""
    for key in spec.metrics or ():
        parse_key(key)


def plan_metrics(spec: EvalSpec, capabilities: frozenset[str], dataset: str,
                 default_extractors: tuple[str, ...]) -> list[PlannedMetric]:
    """The scores a model gets: the metrics asked for (every default one when none are named)
    that apply to its capabilities and dataset, each feature-space metric once per extractor
    (``spec.features``, else ``default_extractors``) unless its key names one.

    A metric that needs a capability the model lacks is left out: absent, never zero.
    """
    keys = spec.metrics if spec.metrics is not None else [
        name for name, metric in METRICS.items() if metric.default]
    extractors = spec.features if spec.features is not None else default_extractors
    planned: list[PlannedMetric] = []
    for key in keys:
        metric, extractor = parse_key(key)
        if not metric.applies_to(capabilities, dataset):
            continue
        if not metric.feature_space:
            planned.append(PlannedMetric(metric))
        elif extractor is not None:
            planned.append(PlannedMetric(metric, extractor))
        else:
            planned.extend(PlannedMetric(metric, name) for name in extractors)
    return list(dict.fromkeys(planned))  # a key named twice is computed once


@torch.no_grad()
def evaluate(model: LatentModel, test_images: torch.Tensor, train_images: torch.Tensor,
             spec: EvalSpec, seed: int, *, dataset: str = "",
             default_extractors: tuple[str, ...] = (),
             load_extractor: Callable[[str], Any] | None = None,
             real_features: RealFeatureStore | None = None) -> Evaluation:
    """Compute the planned metrics; passes shared between metrics run once.

    A metric that raises is recorded under ``errors`` with its reason and the others go on, so
    an evaluation never loses the scores it already has.
    """
    model.eval()
    ctx = EvalContext(model=model, test_images=test_images, train_images=train_images,
                      batch_size=spec.batch_size, seed=seed, settings=spec, dataset=dataset,
                      load_extractor=load_extractor, real_features=real_features)
    result = Evaluation()
    for planned in plan_metrics(spec, model.capabilities, dataset, default_extractors):
        args = () if planned.extractor is None else (planned.extractor,)
        try:
            score = planned.metric.compute(ctx, *args)
        except Exception as error:  # one broken score must not sink the others
            result.errors[planned.key] = "".join(
                traceback.format_exception_only(error)).strip()
            continue
        if not isinstance(score, Score):
            score = Score(float(score))
        result.values[planned.key] = float(score.value)
        result.samples[planned.key] = (score.samples if score.samples is not None
                                       else len(test_images))
        if score.details:
            result.details[planned.key] = score.details
    return result


def _png(images: torch.Tensor, nrow: int) -> bytes:
    # Imported here: torchvision takes ~2 s to import, which every CLI call would otherwise pay.
    from torchvision.utils import make_grid, save_image

    buffer = io.BytesIO()
    save_image(make_grid(images.float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0),
               buffer, format="png")
    return buffer.getvalue()


@torch.no_grad()
def write_images(model: LatentModel, test_images: torch.Tensor, spec: EvalSpec, seed: int,
                 run_dir: Path, test_labels: torch.Tensor | None = None) -> dict[str, str]:
    """Write ``reconstructions.png`` (inputs above their reconstructions) for models with an
    encoder, ``samples.png`` (prior samples) for models that sample, ``interpolations.png``
    (one latent path per row), the latent-space files and power spectrum of
    :func:`~latentbench.benchmarks.artifacts.write_latent_artifacts` (``test_labels`` colour
    the latent scatter) and ``images.json`` with a caption for each PNG; return the
    captions."""
    model.eval()
    written: dict[str, str] = {}
    samples = None
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
    strips = interpolation_strips(EvalContext(model, test_images, test_images, spec.batch_size,
                                              seed, settings=spec), rows=spec.grid_images)
    write_bytes_atomic(run_dir / "interpolations.png", _png(strips, nrow=spec.interp_steps))
    ends = ("the reconstructions of two test images" if "encode" in model.capabilities
            else "two latent draws")
    written["interpolations.png"] = (f"each row: {spec.interp_steps} decodes along a "
                                     f"{spec.interp_path} path between {ends}")
    written.update(write_latent_artifacts(model, test_images, test_labels, samples,
                                          spec.batch_size, run_dir))
    write_json_atomic(run_dir / "images.json", written)
    return written
