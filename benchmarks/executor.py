"""Running a suite's runs: check every config first, then run them, then write the results."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.results import write_results
from latentbench.benchmarks.run import RunOutcome, execute_run, preflight
from latentbench.benchmarks.suite import Suite


def _summary(outcome: RunOutcome) -> str:
    if outcome.status != "done":
        return f"FAILED: {outcome.reason}"
    shown = [f"{k} {v:.4g}" for k, v in list(outcome.metrics.items())[:4]]
    return ", ".join(shown)


def run_local(suite: Suite, out_dir: Path, device: torch.device,
              progress: bool = True) -> list[tuple[RunConfig, RunOutcome]]:
    """Run every run of ``suite`` in this process, one after the other.

    All configs are checked before the first run trains (bad input costs no compute), and
    ``results.csv`` is rewritten after each run, so a kill loses at most the run in progress.
    """
    for config in suite.runs:
        preflight(config)
    done: list[tuple[RunConfig, RunOutcome]] = []
    for number, config in enumerate(suite.runs, start=1):
        outcome = execute_run(config, out_dir, device, progress=progress)
        took = f"{outcome.seconds:.1f} s" if outcome.seconds else "done before"
        tqdm.write(f"[{number}/{len(suite.runs)}] {config.label} ({config.run_id}): "
                   f"{_summary(outcome)} [{took}]", file=sys.stdout)
        sys.stdout.flush()  # one line per run shows up at once in CI logs and pipes, too
        done.append((config, outcome))
        write_results(out_dir / "results.csv", done)
    return done
