"""One run, start to finish: data → model → train → evaluate → run directory.

``OUT/runs/<run-id>/`` holds ``config.json``, ``train.json`` (loss per epoch), ``model.pt`` (a
state_dict), ``metrics.json``, the report's images and ``status`` (``done`` or ``failed: why``).
A run whose status exists is not run again; one without (killed, or never started) resumes
from its last checkpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.data import DataSpec, ImageData, load_dataset
from latentbench.benchmarks.evaluate import check_metric_names, evaluate, write_images
from latentbench.benchmarks.storage import (
    save_torch_atomic,
    write_json_atomic,
    write_text_atomic,
)
from latentbench.benchmarks.train import CHECKPOINT, train
from latentbench.models import build_model
from latentbench.models.registry import InputError


@dataclass
class RunOutcome:
    """What a run left: its id, ``done`` or ``failed``, the reason, metrics and seconds taken."""

    run_id: str
    status: str
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


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


def preflight(config: RunConfig) -> None:
    """Check a config fully before anything is trained: data loads, model builds, metrics exist.

    Raises:
        InputError: the first problem found, naming its field.
    """
    data = cached_dataset(config.data)
    build_model(config.model, data.image_shape)
    check_metric_names(config.eval)


def execute_run(config: RunConfig, out_dir: Path, device: torch.device,
                progress: bool = True) -> RunOutcome:
    """Run ``config`` into ``out_dir/runs/<run-id>/`` (or read back a finished run)."""
    run_dir = out_dir / "runs" / config.run_id
    finished = read_status(run_dir)
    if finished is not None:
        metrics_path = run_dir / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        return RunOutcome(config.run_id, finished[0], finished[1], metrics)

    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
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
    metrics = evaluate(model, data.test, data.train, config.eval, config.seed)
    write_json_atomic(run_dir / "metrics.json", metrics)
    write_images(model, data.test, config.eval, config.seed, run_dir)
    write_text_atomic(run_dir / "status", "done\n")
    (run_dir / CHECKPOINT).unlink(missing_ok=True)  # model.pt now holds the result
    return RunOutcome(config.run_id, "done", metrics=metrics,
                      seconds=time.perf_counter() - started)
