"""results.csv: the long-format table of a suite, one row per run × metric."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.run import RunOutcome
from latentbench.benchmarks.storage import write_text_atomic
from latentbench.metrics.registry import parse_key
from latentbench.models.zoo import model_class

COLUMNS = ["run_id", "suite", "dataset", "model", "decoder", "beta", "latent_dim", "seed",
           "metric", "value", "samples", "higher_is_better", "status", "reason"]


def effective_beta(config: RunConfig) -> float:
    """β as the model uses it (the VAE's default 1 when unset); NaN for models without a KL."""
    if config.model.beta is not None:
        return float(config.model.beta)
    capabilities = getattr(model_class(config.model.name), "capabilities", ())
    return 1.0 if "variational" in capabilities else math.nan


def results_frame(runs: list[tuple[RunConfig, RunOutcome]]) -> pd.DataFrame:
    """The long-format table of ``runs``; a failed run, or a finished one without a metric that
    applies to it, has one row with no metric, so that every run appears in the table."""
    rows = []
    for config, outcome in runs:
        base = {"run_id": config.run_id, "suite": config.suite, "dataset": config.data.dataset,
                "model": config.model.name, "decoder": config.model.decoder,
                "beta": effective_beta(config), "latent_dim": config.model.latent_dim,
                "seed": config.seed, "status": outcome.status, "reason": outcome.reason}
        if outcome.status != "done" or not outcome.metrics:
            rows.append({**base, "metric": "", "value": math.nan, "samples": pd.NA,
                         "higher_is_better": ""})
            continue
        for key, value in outcome.metrics.items():
            higher = parse_key(key)[0].higher_is_better
            rows.append({**base, "metric": key, "value": value,
                         "samples": outcome.samples.get(key, pd.NA),
                         "higher_is_better": "" if higher is None else higher})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["samples"] = frame["samples"].astype("Int64")  # counts, blank where none
    return frame


def write_results(path: Path, runs: list[tuple[RunConfig, RunOutcome]]) -> pd.DataFrame:
    """Write ``results.csv`` atomically and return the frame."""
    frame = results_frame(runs)
    write_text_atomic(path, frame.to_csv(index=False))
    return frame
