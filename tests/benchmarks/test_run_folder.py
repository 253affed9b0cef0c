"""A run folder: status and metrics round trips, the refusal of another version's metrics.json,
and a real (tiny) sweep whose every file is readable by other users."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch

from latentbench.benchmarks.run_folder import RunFolder
from latentbench.benchmarks.suite import load_suite
from latentbench.benchmarks.sweep import run_suite
from latentbench.models.registry import InputError
from latentbench.reports import render_report
from latentbench.reports.schema import MetricsDocument, RunFiles

TINY = """
[suite]
name = "modes"
description = "one tiny VAE, to check file modes"

[data]
dataset = "mnist5k"
n_train = 64
n_test = 32

[model]
name = "vae"
latent_dim = 2
width = 4
hidden = 16

[train]
epochs = 2
batch_size = 32
checkpoint_seconds = 0

[eval]
samples = 4
grid_images = 4
metrics = ["recon_mse", "rate", "fid", "precision"]
"""


def test_status_round_trip_and_unfinished_runs(tmp_path: Path):
    folder = RunFolder(tmp_path, "abc123")
    assert folder.status() is None  # never started: resumes
    folder.write_status("failed", "non-finite loss\nin epoch 3")
    assert folder.status() == ("failed", "non-finite loss in epoch 3")  # one line
    folder.write_status("done")
    assert folder.status() == ("done", "")
    assert folder.path == tmp_path / "runs" / "abc123"


def test_metrics_round_trip_and_another_version_is_refused(tmp_path: Path):
    folder = RunFolder(tmp_path, "r1")
    assert folder.read_metrics() == MetricsDocument()  # a failed run has none
    written = MetricsDocument(values={"recon_mse": 0.01}, samples={"recon_mse": 1000},
                              details={"recon_mse": {"std": 0.001}}, errors={"fid": "no CUDA"})
    folder.prepare()
    folder.write_metrics(written)
    assert folder.read_metrics() == written
    stored = json.loads(folder.file(RunFiles.METRICS).read_text())
    stored["format"] = 1
    folder.file(RunFiles.METRICS).write_text(json.dumps(stored))
    with pytest.raises(InputError, match="another version of latentbench"):
        folder.read_metrics()
    folder.file(RunFiles.METRICS).write_text('{"format": 2, "valu')  # truncated
    with pytest.raises(InputError, match="not a metrics.json"):
        folder.read_metrics()


def test_every_file_of_a_sweep_is_readable_by_others(tmp_path: Path):
    suite_file = tmp_path / "modes.toml"
    suite_file.write_text(TINY)
    out = tmp_path / "out"
    previous = os.umask(0o022)  # the usual umask, whatever the test runner's
    try:
        [(config, outcome)] = run_suite(load_suite(str(suite_file)), out, torch.device("cpu"),
                                        progress=False)
        render_report(out)
    finally:
        os.umask(previous)
    assert outcome.status == "done", outcome.reason
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.relative_to(out).as_posix().replace(config.run_id, "ID") for p in files}
    assert {"results.csv", "suite.json", "report.html", "runs/ID/config.json",
            "runs/ID/metrics.json", "runs/ID/model.pt", "runs/ID/status",
            "runs/ID/train.json", "runs/ID/environment.json", "runs/ID/images.json",
            "runs/ID/reconstructions.png", "runs/ID/latent_grid.png"} <= names
    modes = {p.relative_to(out).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert modes == dict.fromkeys(modes, 0o644)
    assert "one tiny VAE, to check file modes" in (out / "report.html").read_text()
