"""The shipped suites end to end, timed as a user runs them: ``latentbench run SUITE`` in a
fresh process, start-up, data, training, evaluation, artifacts and report included.

``pytest benchmarks/perf/test_suite_time.py --benchmark-enable`` runs ``smoke`` and ``quick``
once each (quick takes minutes) and records in ``extra_info``: the wall seconds, and per run the
training seconds (``train.json``), the evaluation seconds (``metrics.json`` timings) and the
evaluation's slowest metric. The one assertion is a ratio within the same run: each run's
evaluation takes less time than its training. The wall times are recorded, not asserted: a
loaded machine moves them; the README states what was measured.

With ``--benchmark-disable`` (the default run) a tiny one-epoch suite runs instead, and the
same numbers are checked for presence and consistency.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")

TINY = """
[suite]
name = "tiny-timed"
description = "one VAE, one epoch: the default run's check of this benchmark"
[data]
dataset = "mnist5k"
n_train = 64
n_test = 32
[model]
name = "vae"
latent_dim = 4
width = 4
hidden = 16
[train]
epochs = 1
batch_size = 32
[eval]
metrics = ["recon_mse", "neg_elbo", "iwae_nll"]
iwae_k = 4
"""


def run_timings(out: Path) -> list[dict[str, float | str]]:
    """Per run of a finished suite folder: training and evaluation seconds, slowest metric."""
    rows = []
    for folder in sorted((out / "runs").iterdir()):
        history = json.loads((folder / "train.json").read_text())
        timings = json.loads((folder / "metrics.json").read_text())["timings"]
        slowest = max(timings["metrics"], key=timings["metrics"].get)
        rows.append({"run": folder.name, "train_s": round(sum(e["seconds"] for e in history), 2),
                     "eval_s": round(timings["total"], 2), "slowest_metric": slowest,
                     "slowest_s": round(timings["metrics"][slowest], 2)})
    return rows


@pytest.mark.parametrize("suite", ["smoke", "quick"])
def test_suite_wall_time(benchmark, suite, tmp_path):
    if not benchmark.enabled and suite != "smoke":
        pytest.skip("minutes long: run with --benchmark-enable")
    target = suite
    if not benchmark.enabled:
        target = str(tmp_path / "tiny.toml")
        Path(target).write_text(TINY)
    out = tmp_path / "out"

    def run() -> float:
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        done = subprocess.run([SCRIPT, "run", target, "--out", str(out), "--no-progress"],
                              capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, done.stderr[-3000:]
        return time.perf_counter() - started

    wall = benchmark.pedantic(run, rounds=1, iterations=1)
    rows = run_timings(out)
    benchmark.extra_info.update({"suite": suite, "wall_s": round(wall, 1), "runs": rows})
    assert rows and all(row["train_s"] > 0 and row["eval_s"] > 0 for row in rows)
    if benchmark.enabled:
        slower = [row for row in rows if row["eval_s"] >= row["train_s"]]
        assert not slower, f"evaluation took longer than training: {slower}"
