"""One run, start to finish: data → model → train → evaluate → run directory.

``OUT/runs/<run-id>/`` holds ``config.json``, ``train.json`` (loss per epoch), ``model.pt`` (a
state_dict), ``metrics.json``, the report's images and ``status`` (``done`` or ``failed: why``).
A run whose status exists is not run again; one without (killed, or never started) resumes
from its last checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.data import DataSpec, ImageData, load_dataset
from latentbench.benchmarks.environment import write_environment
from latentbench.benchmarks.evaluate import (
    METRICS_FORMAT,
    check_metric_names,
    evaluate,
    plan_metrics,
    write_images,
)
from latentbench.benchmarks.extractors import cache_dir, default_extractor, resolve_extractor
from latentbench.benchmarks.feature_cache import RealFeatureCache
from latentbench.benchmarks.storage import (
    remove_stray_temporaries,
    save_torch_atomic,
    write_json_atomic,
    write_text_atomic,
)
from latentbench.benchmarks.train import CHECKPOINT, train
from latentbench.metrics.features import FeatureExtractor, FeatureOptions
from latentbench.models import build_model
from latentbench.models.registry import InputError


@dataclass
class RunOutcome:
    """What a run left: its id, ``done`` or ``failed``, the reason, metrics (with the number of
    samples each averages over) and seconds taken."""

    run_id: str
    status: str
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    samples: dict[str, int] = field(default_factory=dict)


@lru_cache(maxsize=4)
def cached_dataset(spec: DataSpec) -> ImageData:
    """Load each dataset once per process: every run of a suite shares it."""
    return load_dataset(spec)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; ``cuda`` without CUDA is an error."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device: must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device: cuda was asked for but torch sees no CUDA device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def read_status(run_dir: Path) -> tuple[str, str] | None:
    """``(status, reason)`` of a finished run, or ``None`` when it has not finished."""
    path = run_dir / "status"
    if not path.exists():
        return None
    status, _, reason = path.read_text(encoding="utf-8").strip().partition(":")
    return status, reason.strip()


def extractor_loader(config: RunConfig) -> Callable[[str], FeatureExtractor]:
    """Name → feature extractor for ``config``'s evaluation (``lenet-<dataset>`` extractors are
    trained on first use and cached; see :mod:`latentbench.benchmarks.extractors`)."""
    options = FeatureOptions(inception_weights=config.eval.inception_weights)
    return lambda name: resolve_extractor(name, config.data, options, cache_dir())


def planned_extractors(config: RunConfig) -> list[str]:
    """The feature extractors ``config``'s evaluation will use (for any model)."""
    capabilities = frozenset({"encode", "variational", "sample"})
    planned = plan_metrics(config.eval, capabilities, config.data.dataset,
                           (default_extractor(config.data.dataset),))
    return list(dict.fromkeys(p.extractor for p in planned if p.extractor is not None))


def preflight(config: RunConfig) -> None:
    """Check a config fully before anything is trained: data loads, model builds, metrics and
    feature extractors exist (an extractor trained for a dataset is trained here, once).

    Raises:
        InputError: the first problem found, naming its field.
    """
    data = cached_dataset(config.data)
    try:
        build_model(config.model, data.image_shape)
    except (RuntimeError, MemoryError, OverflowError) as err:  # torch cannot allocate the layers
        raise InputError(f"model: cannot build {config.model.name!r} with latent_dim "
                         f"{config.model.latent_dim}, width {config.model.width}, hidden "
                         f"{config.model.hidden} ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]})") from None
    check_metric_names(config.eval)
    load = extractor_loader(config)
    for name in planned_extractors(config):
        load(name)


def read_metrics(run_dir: Path) -> tuple[dict[str, float], dict[str, int]]:
    """Values and sample counts from a finished run's ``metrics.json``.

    Raises:
        InputError: the file was written by an incompatible version of latentbench.
    """
    path = run_dir / "metrics.json"
    if not path.exists():
        return {}, {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # a truncated or garbled file: JSON or UTF-8 errors
        raise InputError(f"{path}: not a metrics.json ({type(err).__name__}: {err}); delete "
                         f"the run's folder to run it again") from None
    if (not isinstance(stored, dict) or stored.get("format") != METRICS_FORMAT
            or not isinstance(stored.get("values"), dict)
            or not isinstance(stored.get("samples"), dict)):
        raise InputError(f"{path}: written by another version of latentbench (metrics format "
                         f"{stored.get('format') if isinstance(stored, dict) else '?'}, this "
                         f"version reads {METRICS_FORMAT}); rerun into a new --out folder")
    return stored["values"], stored["samples"]


def execute_run(config: RunConfig, out_dir: Path, device: torch.device,
                progress: bool = True) -> RunOutcome:
    """Run ``config`` into ``out_dir/runs/<run-id>/`` (or read back a finished run)."""
    run_dir = out_dir / "runs" / config.run_id
    finished = read_status(run_dir)
    if finished is not None:
        metrics, samples = read_metrics(run_dir)
        return RunOutcome(config.run_id, finished[0], finished[1], metrics, samples=samples)

    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stray_temporaries(run_dir)  # a kill mid-write left them; this run owns its folder
    write_json_atomic(run_dir / "config.json", config.to_dict())
    data = cached_dataset(config.data)
    torch.manual_seed(config.seed)  # the initial weights depend on the seed alone
    model = build_model(config.model, data.image_shape).to(device)

    outcome = train(model, data.train, config.train, config.seed, run_dir, progress=progress)
    write_json_atomic(run_dir / "train.json", outcome.history)
    if outcome.failed:
        write_text_atomic(run_dir / "status", f"failed: {outcome.reason}\n")
        return RunOutcome(config.run_id, "failed", outcome.reason,
                          seconds=time.perf_counter() - started)

    model.calibrate(data.train, config.eval.batch_size)
    save_torch_atomic(run_dir / "model.pt", model.state_dict())
    evaluation = evaluate(
        model, data.test, data.train, config.eval, config.seed, dataset=config.data.dataset,
        default_extractors=(default_extractor(config.data.dataset),),
        load_extractor=extractor_loader(config),
        real_features=RealFeatureCache(config.data, cache_dir() / "real-features"))
    write_json_atomic(run_dir / "metrics.json", evaluation.to_json())
    write_images(model, data.test, config.eval, config.seed, run_dir, data.test_labels)
    write_environment(run_dir / "environment.json", device)
    write_text_atomic(run_dir / "status", "done\n")
    (run_dir / CHECKPOINT).unlink(missing_ok=True)  # model.pt now holds the result
    return RunOutcome(config.run_id, "done", metrics=evaluation.values,
                      seconds=time.perf_counter() - started, samples=evaluation.samples)
