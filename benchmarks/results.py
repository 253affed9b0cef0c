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
from latentbench.benchmarks.model_files import file_digests
from latentbench.benchmarks.reference import reference_run_id
from latentbench.benchmarks.run import RunOutcome
from latentbench.metrics.registry import parse_key
from latentbench.models.priors import prior_label
from latentbench.models.zoo import model_class
from latentbench.reports.atomic import write_text_atomic
from latentbench.reports.schema import (
    REFERENCE_MODEL,
    STATUS_DONE,
    MetricsDocument,
    config_label,
    read_results_csv,
    results_frame_dtypes,
)


def effective_beta(config: RunConfig) -> float:
    """β as the model uses it: ``model.beta``, else the model's ``default_beta`` (the VAE's 1,
    β-TCVAE's 6); NaN for models without a β (an autoencoder, the annealed VAE, a GAN)."""
    if config.model.beta is not None:
        return float(config.model.beta)
    cls = model_class(config.model.name)
    if "variational" not in getattr(cls, "capabilities", ()):
        return math.nan
    default = getattr(cls, "default_beta", 1.0)
    return math.nan if default is None else float(default)


def config_record(config: RunConfig) -> dict[str, Any]:
    """The columns of results.csv that identify ``config``'s run.

    What was scored, as the model class says (:meth:`~LatentModel.identity`: a pythae model is
    ``pythae:VAE`` with its own latent size). A model read from files is named with the first 8
    hex digits of their sha256 — ``vae (weights 3f2a9c1e)``, ``pythae:VAE (5d01aa2e)``,
    ``samples:gan.npy (0b7c3f19)`` — so a table keeps weights scored as loaded apart from a run
    trained here, and two folders or sample files apart from each other. A prior other than
    N(0, I) joins the name: ``vae (prior mog, K=10)``.
    """
    identity = {"model": config.model.name, "beta": effective_beta(config),
                **model_class(config.model.name).identity(config.model)}
    digests = file_digests(config.model)
    prior = prior_label(config.model.prior, config.model.prior_components)
    if prior is not None:  # N(0, I) keeps the plain name every table had before
        identity["model"] = f"{identity['model']} (prior {prior})"
    if "model.weights" in digests:
        identity["model"] = f"{identity['model']} (weights {digests['model.weights'][:8]})"
    elif digests:  # a pythae folder, a sample file: two of them never merge into one row
        identity["model"] = f"{identity['model']} ({next(iter(digests.values()))[:8]})"
    return {"run_id": config.run_id, "suite": config.suite, "dataset": config.data.dataset,
            "model": identity["model"], "decoder": identity["decoder"],
            "beta": math.nan if identity["beta"] is None else identity["beta"],
            "latent_dim": identity["latent_dim"], "seed": config.seed}


def run_label(config: RunConfig) -> str:
    """The run's label, as the report and the tables show it (with its seed)."""
    return config_label(config_record(config), with_seed=True)


def reference_outcomes(references: list[tuple[RunConfig, MetricsDocument]]
                       ) -> list[tuple[dict[str, Any], RunOutcome]]:
    """The real-data reference rows' identity columns and outcomes (model ``real-data``, no
    decoder, β, latent size or seed)."""
    return [({"run_id": reference_run_id(config), "suite": config.suite,
              "dataset": config.data.dataset, "model": REFERENCE_MODEL},
             RunOutcome(reference_run_id(config), STATUS_DONE, metrics=metrics.values,
                        samples=metrics.samples, std_errors=metrics.std_errors))
            for config, metrics in references]


def results_frame(runs: list[tuple[RunConfig, RunOutcome]],
                  references: list[tuple[RunConfig, MetricsDocument]] = ()) -> pd.DataFrame:
    """The long-format table of ``runs`` and, first, the real-data ``references``; a failed
    run, or a finished one without a metric that applies to it, has one row with no metric, so
    that every run appears in the table."""
    rows = []
    identified = [*reference_outcomes(list(references)),
                  *((config_record(config), outcome) for config, outcome in runs)]
    for record, outcome in identified:
        base = {**record, "status": outcome.status, "reason": outcome.reason}
        if outcome.status != STATUS_DONE or not outcome.metrics:
            rows.append(base)
            continue
        for key, value in outcome.metrics.items():
            metric = parse_key(key)[0]
            rows.append({**base, "metric": key, "family": metric.family, "value": value,
                         "std_error": outcome.std_errors.get(key),
                         "samples": outcome.samples.get(key),
                         "higher_is_better": metric.higher_is_better, "target": metric.target,
                         "caveat": outcome.caveats.get(key)})
    return results_frame_dtypes(pd.DataFrame(rows))


def rows_to_keep(path: Path, suite: str, keep_all: bool) -> pd.DataFrame | None:
    """The rows of an existing ``results.csv`` that a command writing into the same folder
    keeps: with ``keep_all`` (``latentbench eval`` and ``score``, which add one run to a
    folder) every row; otherwise (``latentbench run``) the rows of other suites, so that runs
    added by ``eval``/``score`` survive a rerun of the suite while a suite's own runs that its
    file no longer holds are dropped. ``None`` without a readable file."""
    if not path.is_file():
        return None
    try:
        existing = read_results_csv(path)
    except (ValueError, UnicodeDecodeError):  # another version's file: replaced, as before
        return None
    return existing if keep_all else existing[existing["suite"].ne(suite).fillna(True)]


def write_results(path: Path, runs: list[tuple[RunConfig, RunOutcome]],
                  references: list[tuple[RunConfig, MetricsDocument]] = (),
                  kept: pd.DataFrame | None = None) -> pd.DataFrame:
    """Write ``results.csv`` (the reference rows first, then the runs, then the ``kept`` rows
    of earlier commands whose run ids these do not have) atomically and return the frame."""
    frame = results_frame(runs, references)
    if kept is not None and len(kept):
        kept = kept[~kept["run_id"].isin(set(frame["run_id"]))]
        if len(kept):
            frame = results_frame_dtypes(pd.concat([frame, kept], ignore_index=True))
    write_text_atomic(path, frame.to_csv(index=False))
    return frame
