"""pytest-benchmark: start-up of the ``latentbench`` command line against importing torch.

``latentbench --help``, ``list suites`` and ``compare`` on two results.csv files import no torch
(ARCHITECTURE.md, "Contracts"), so each, a whole process from start to exit, must take less wall
time than ``python -c "import torch"`` alone, measured in the same run: a ratio, never an
absolute time, since the load on the machine moves both alike. ``extra_info`` records
``over_torch_import``, the command's seconds over torch's: on a 2-core CI machine --help and
list take a few percent of the torch import, compare about a quarter (it imports pandas).

With ``--benchmark-disable`` (the default run) each command runs once and the same ratio is
checked against the fastest of two torch imports.
"""

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from latentbench.reports.schema import RESULTS_COLUMNS

TORCH_IMPORTS = 2


def wall_seconds(*args: str) -> float:
    """Seconds for ``python ARGS`` to start, run and exit; it must exit 0."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return seconds


@pytest.fixture(scope="module")
def torch_import_seconds() -> float:
    """The fastest of a few ``python -c "import torch"`` (the one a loaded machine disturbs
    least)."""
    return min(wall_seconds("-c", "import torch") for _ in range(TORCH_IMPORTS))


def write_results_csv(path: Path, recon_mse: float) -> Path:
    """A small results.csv: two seeds of one VAE, two metrics each, every schema column."""
    rows = [{"run_id": f"run{seed}", "suite": "tiny", "dataset": "mnist5k", "model": "vae",
             "decoder": "transposed", "beta": 1.0, "latent_dim": 16, "seed": seed,
             "metric": metric, "value": value + 0.001 * seed, "samples": 1000,
             "higher_is_better": False, "status": "done", "reason": ""}
            for seed in (0, 1) for metric, value in (("recon_mse", recon_mse), ("rate", 20.0))]
    pd.DataFrame(rows, columns=list(RESULTS_COLUMNS)).to_csv(path, index=False)
    return path


def command(tmp_path: Path, name: str) -> list[str]:
    if name == "compare":
        return ["compare", str(write_results_csv(tmp_path / "baseline.csv", 0.02)),
                str(write_results_csv(tmp_path / "current.csv", 0.02))]
    return name.split()


@pytest.mark.parametrize("name", ["--help", "list suites", "compare"])
def test_cli_starts_faster_than_torch_imports(benchmark, torch_import_seconds, tmp_path, name):
    args = ["-m", "latentbench.benchmarks.cli", *command(tmp_path, name)]
    seconds = benchmark.pedantic(wall_seconds, args=args, rounds=5 if benchmark.enabled else 1)
    if benchmark.enabled:
        seconds = benchmark.stats.stats.median
    ratio = seconds / torch_import_seconds
    benchmark.extra_info.update({"torch_import_s": round(torch_import_seconds, 3),
                                 "over_torch_import": round(ratio, 3)})
    assert ratio < 1, (f"latentbench {name} took {seconds:.2f} s, importing torch "
                       f"{torch_import_seconds:.2f} s: does it import torch?")
