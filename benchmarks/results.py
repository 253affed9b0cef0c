"""results.csv: the long-format table of a suite, one row per run × metric.

Its columns and dtypes are the contract in :mod:`latentbench.reports.schema`; this module fills
them from the harness's configs and run outcomes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.run import RunOutcome
from latentbench.metrics.registry import parse_key
from latentbench.models.zoo import model_class
from latentbench.reports.atomic import write_text_atomic
from latentbench.reports.schema import STATUS_DONE, config_label, results_frame_dtypes


def effective_beta(config: RunConfig) -> float:
    """β as the model uses it (the VAE's default 1 when unset); NaN for models without a KL."""
    if config.model.beta is not None:
        return float(config.model.beta)
    capabilities = getattr(model_class(config.model.name), "capabilities", ())
    return 1.0 if "variational" in capabilities else math.nan


def config_record(config: RunConfig) -> dict[str, Any]:
    """The columns of results.csv that identify ``config``'s run."""
    return {"run_id": config.run_id, "suite": config.suite, "dataset": config.data.dataset,
            "model": config.model.name, "decoder": config.model.decoder,
            "beta": effective_beta(config), "latent_dim": config.model.latent_dim,
            "seed": config.seed}


def run_label(config: RunConfig) -> str:
    """The run's label, as the report and the tables show it (with its seed)."""
    return config_label(config_record(config), with_seed=True)


def results_frame(runs: list[tuple[RunConfig, RunOutcome]]) -> pd.DataFrame:
    """The long-format table of ``runs``; a failed run, or a finished one without a metric that
    applies to it, has one row with no metric, so that every run appears in the table."""
    rows = []
    for config, outcome in runs:
        base = {**config_record(config), "status": outcome.status, "reason": outcome.reason}
        if outcome.status != STATUS_DONE or not outcome.metrics:
            rows.append(base)
            continue
        for key, value in outcome.metrics.items():
            rows.append({**base, "metric": key, "value": value,
                         "samples": outcome.samples.get(key),
                         "higher_is_better": parse_key(key)[0].higher_is_better})
    return results_frame_dtypes(pd.DataFrame(rows))


def write_results(path: Path, runs: list[tuple[RunConfig, RunOutcome]]) -> pd.DataFrame:
    """Write ``results.csv`` atomically and return the frame."""
    frame = results_frame(runs)
    write_text_atomic(path, frame.to_csv(index=False))
    return frame
