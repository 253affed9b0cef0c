"""The report's "Priors" section: VAEs with different priors p(z) (normal, mog, vamp, flow, a
plug-in) set side by side.

Every run of a model with a prior writes ``prior.json`` (:attr:`RunFiles.PRIOR`)::

    {"prior": "mog", "label": "mog, K=10", "latent_dim": 2,
     "density": {"z1": [G1 floats], "z2": [G2 floats], "log_prob": [[G1 floats] * G2]}}

``density`` only for 2-d codes, ``log_prob[i][j]`` being log p(z1[j], z2[i]). The section is
shown when the finished runs' ``prior.json`` files name two or more priors (two labels: a
mixture of 10 and one of 20 components are two priors); it holds the rate–distortion plane by
prior, a table of the likelihood and prior-fit metrics per configuration, each configuration's
prior samples and, for 2-d codes, the prior's density over the codes.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentbench.reports.figures import FIGURE_WIDTH_PX
from latentbench.reports.labels import arrow, config_key, direction_text
from latentbench.reports.plots_priors import (
    HDR_MASSES,
    ContourPanel,
    prior_contours,
    prior_rate_distortion,
)
from latentbench.reports.rundir import EmbeddedImage, embed_png, read_json, run_dir
from latentbench.reports.schema import CONFIG_COLUMNS, RunFiles, config_label, format_beta
from latentbench.reports.sections import read_latents
from latentbench.reports.table import summary_table

__all__ = ["TABLE_METRICS", "PriorInfo", "metric_title", "priors", "read_prior"]

#: The table's metrics, in column order, by base name (``fid`` stands for every
#: ``fid[<extractor>]``); each present in the results gets a column.
TABLE_METRICS: tuple[str, ...] = ("neg_elbo", "iwae_nll", "rate", "distortion", "prior_holes",
                                  "prior_coverage", "prior_mmd", "fid")
_TITLES = {"neg_elbo": "−ELBO", "iwae_nll": "IWAE NLL", "rate": "rate",
           "distortion": "distortion", "prior_holes": "prior holes",
           "prior_coverage": "prior coverage", "prior_mmd": "prior MMD", "fid": "FID"}
#: Directions where the results give none (they always should): only coverage is ↑.
_HIGHER_IS_BETTER = {"prior_coverage": True}
#: The two sides of the trade-off whose sum is −ELBO: shown, never bolded, since less of one
#: is bought with more of the other (a collapsed posterior has the lowest rate of all).
_UNRANKED = frozenset({"rate", "distortion"})
#: The registry name of N(0, I), the prior every other is compared with.
NORMAL = "normal"
#: The suffix the harness gives a model's name for a prior other than N(0, I).
_PRIOR_SUFFIX = " (prior "
_SAMPLE_WIDTH = 360


@dataclass(frozen=True)
class PriorInfo:
    """What a run's ``prior.json`` says.

    Attributes:
        name: The registry name (``normal``, ``mog``, ...) or ``"package.module:Class"``.
        label: The prior's description (``mog, K=10``); the name when there is none.
        latent_dim: The size of the codes, or ``None``.
        density: ``(z1, z2, log_prob)`` for 2-d codes when read, else ``None``.
    """

    name: str
    label: str
    latent_dim: int | None = None
    density: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def read_prior(path: Path, *, with_density: bool = True) -> PriorInfo | None:
    """A run's ``prior.json``, or ``None`` if it is missing, damaged or names no prior.

    A ``density`` that is not a valid grid (axes that are not increasing, a ``log_prob`` of
    another shape) is dropped and the rest kept: the run still counts for its prior.
    """
    document = read_json(path)
    if not document or not isinstance(document.get("prior"), str) or not document["prior"]:
        return None
    name = document["prior"]
    label = document.get("label")
    latent = document.get("latent_dim")
    latent_dim = latent if isinstance(latent, int) and not isinstance(latent, bool) else None
    density = _density(document.get("density")) if with_density else None
    return PriorInfo(name=name, label=str(label) if label else name, latent_dim=latent_dim,
                     density=density)


def _density(found: object) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if not isinstance(found, dict):
        return None
    try:
        # None (a JSON null written for −∞) becomes NaN, which the plots read as zero density.
        z1, z2, log_prob = (np.array(found[k], dtype=float) for k in ("z1", "z2", "log_prob"))
    except (KeyError, TypeError, ValueError):
        return None
    if z1.ndim != 1 or z2.ndim != 1 or min(z1.size, z2.size) < 2:
        return None
    if not (np.all(np.diff(z1) > 0) and np.all(np.diff(z2) > 0)):
        return None
    if log_prob.shape != (z2.size, z1.size) or not np.isfinite(log_prob).any():
        return None
    return z1, z2, log_prob


def metric_title(metric: str) -> str:
    """The column title of a metric key: ``−ELBO``, ``FID (lenet-mnist)``, ..."""
    base, _, rest = metric.partition("[")
    title = _TITLES.get(base, metric)
    return f"{title} ({rest.rstrip(']')})" if rest and base in _TITLES else title


def _base(metric: str) -> str:
    return metric.partition("[")[0]


@dataclass
class _Config:
    """A configuration of the section: its lowest-seed run's record and prior, and its runs."""

    record: dict[str, Any]
    prior: PriorInfo
    directory: Path
    run_ids: list[str] = field(default_factory=list)


def priors(runs_dir: Path, results: pd.DataFrame,
           directions: Mapping[str, object]) -> dict[str, Any]:
    """The Priors section: VAEs with different priors compared.

    Args:
        runs_dir: ``OUT/runs``.
        results: Long-format rows (``results.csv`` columns) of the suite's runs.
        directions: Metric → ``higher_is_better``, for the table's ↑/↓.

    Returns:
        ``{}`` unless the finished runs' ``prior.json`` files name two or more priors (by
        label); else ``priors`` (the labels, N(0, I) first), ``rate_distortion`` and
        ``contours`` (:class:`EmbeddedImage` or ``None``), ``table`` (``None`` without any of
        :data:`TABLE_METRICS`, else ``headers``, ``rows`` and ``caption``), ``samples``
        (``[EmbeddedImage]``), ``masses`` (the contours' masses as text) and ``estimated``
        (whether any prior's KL is a Monte-Carlo estimate, i.e. any prior is not N(0, I)).
    """
    done = results[results["status"].eq("done").fillna(False)]
    if done.empty:
        return {}
    runs = done.drop_duplicates("run_id").sort_values([*CONFIG_COLUMNS, "seed", "run_id"],
                                                      na_position="last")
    configs: dict[tuple[str, ...], _Config] = {}
    prior_of: dict[str, PriorInfo] = {}
    for record in runs.to_dict("records"):
        run_id = str(record["run_id"])
        directory = run_dir(runs_dir, run_id)
        if directory is None:
            continue
        key = config_key(record)
        first = key not in configs
        info = read_prior(directory / RunFiles.PRIOR, with_density=first)
        if info is None:
            continue
        prior_of[run_id] = info
        if first:
            configs[key] = _Config(record=record, prior=info, directory=directory)
        configs[key].run_ids.append(run_id)
    # N(0, I) first: the baseline the others are read against.
    labels = sorted(dict.fromkeys(info.label for info in prior_of.values()),
                    key=lambda label: label != NORMAL)
    if len(labels) < 2:
        return {}
    ranked = done[done["run_id"].isin(prior_of) & done["metric"].notna()]
    return {
        "priors": labels,
        "rate_distortion": _rate_distortion(ranked, configs, labels),
        "table": _table(ranked, configs, directions),
        "samples": _samples(configs),
        "contours": _contours(configs),
        "masses": _join([f"{100 * mass:g} %" for mass in HDR_MASSES]),
        "estimated": any(info.name != NORMAL for info in prior_of.values()),
    }


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _base_model(model: object) -> str:
    return str(model).split(_PRIOR_SUFFIX, 1)[0]


def _tags(configs: dict[tuple[str, ...], _Config]) -> dict[tuple[str, ...], str]:
    """What tells apart configurations of one colour (one prior): the parts of their labels
    that vary across the section, besides the prior and the dataset (a panel of its own)."""
    parts: dict[tuple[str, ...], dict[str, str]] = {}
    for key, config in configs.items():
        record = config.record
        beta = format_beta(record["beta"])
        parts[key] = {
            "model": _base_model(record["model"]),
            "decoder": "" if pd.isna(record["decoder"]) else str(record["decoder"]),
            "beta": "" if beta is None else f"β={beta}",
            "latent_dim": "" if pd.isna(record["latent_dim"]) else f"z={record['latent_dim']}",
        }
    varying = [name for name in ("model", "decoder", "beta", "latent_dim")
               if len({p[name] for p in parts.values()}) > 1]
    return {key: " · ".join(p[name] for name in varying if p[name]) for key, p in parts.items()}


def _rate_distortion(ranked: pd.DataFrame, configs: dict[tuple[str, ...], _Config],
                     labels: list[str]) -> EmbeddedImage | None:
    rows = ranked[ranked["metric"].isin(["rate", "distortion"])]
    if rows.empty:
        return None
    wide = rows.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    if not {"rate", "distortion"} <= set(wide.columns):
        return None
    tags = _tags(configs)
    order = {label: i for i, label in enumerate(labels)}
    records = []
    for key, config in configs.items():
        for run_id in config.run_ids:
            if run_id in wide.index:
                records.append({
                    "dataset": str(config.record["dataset"]),
                    "configuration": config_label(config.record),
                    "prior": config.prior.label,
                    "latent_dim": config.record["latent_dim"],
                    "tag": tags[key],
                    "rate": wide.at[run_id, "rate"],
                    "distortion": wide.at[run_id, "distortion"],
                })
    frame = pd.DataFrame(records)
    if frame.empty:
        return None
    frame = frame.sort_values("prior", key=lambda p: p.map(order), kind="stable")
    png = prior_rate_distortion(frame)
    if png is None:
        return None
    return embed_png(png, title="Rate–distortion plane by prior",
                     alt="Distortion against rate per run, coloured by prior, with the mean "
                         "of each configuration", target_width=FIGURE_WIDTH_PX, fit=True)


def _table(ranked: pd.DataFrame, configs: dict[tuple[str, ...], _Config],
           directions: Mapping[str, object]) -> dict[str, Any] | None:
    """The metrics per configuration: mean ± sample standard deviation over seeds, the clear
    best per column in bold and the tied in italics, by the summary table's own rule."""
    rows = ranked[ranked["metric"].map(lambda m: _base(str(m)) in TABLE_METRICS)]
    if rows.empty:
        return None
    table = summary_table(rows)
    metrics = sorted(table.metrics, key=lambda m: (TABLE_METRICS.index(_base(m)), m))
    table = table.select(metrics)
    headers = []
    for metric in metrics:
        direction = directions.get(metric)
        if direction is None or direction is pd.NA or pd.isna(direction):  # type: ignore[arg-type]
            found = table.higher_is_better.get(metric, pd.NA)
            direction = _HIGHER_IS_BETTER.get(_base(metric), False) if pd.isna(found) else found
        headers.append({"key": metric, "title": metric_title(metric),
                        "arrow": arrow(direction), "direction": direction_text(direction)})
    body = []
    for index in table.mean.index:
        record = dict(zip(CONFIG_COLUMNS, index, strict=True))
        config = configs.get(config_key(record))
        n = int(table.seeds[index])
        cells = []
        for metric in metrics:
            count = int(table.count.at[index, metric])
            mean = table.mean.at[index, metric]
            std = table.std.at[index, metric]
            if count == 0 or pd.isna(mean):
                cells.append({"text": "", "value": "", "best": False, "tied": False})
                continue
            text = f"{float(mean):.4g}"
            if count > 1 and not pd.isna(std):
                text += f" ± {float(std):.2g}"
            if count != n:
                text += f" (n={count})"
            if table.caveat.at[index, metric]:
                text += " ‡"
            ranked = _base(metric) not in _UNRANKED
            cells.append({"text": text, "value": repr(float(mean)),
                          "best": ranked and bool(table.best.at[index, metric]),
                          "tied": ranked and bool(table.tied.at[index, metric])})
        # The prior has a column of its own: the model without the suffix that names it.
        body.append({"label": config_label({**record, "model": _base_model(record["model"])}),
                     "prior": config.prior.label if config else "",
                     "n": n, "cells": cells})
    return {"headers": headers, "rows": body, "caption": _caption(table)}


def _caption(table: Any) -> str:
    counts = sorted(set(table.seeds.tolist()))
    if counts == [1]:
        what = ("Values of a single seed per configuration (no spread over seeds to show; "
                "each run's standard error over test images is in the summary table)")
    else:
        seeds = (f"{counts[0]} seeds" if len(counts) == 1
                 else f"n seeds ({counts[0]}–{counts[-1]}, see column n)")
        what = (f"Mean ± sample standard deviation (ddof=1) over {seeds} per configuration; "
                "a value from a single seed has no ±")
    parts = [what + ". The best per column (and dataset) in bold only where it beats the "
             "runner-up by more than their combined uncertainty (as in the summary table), "
             "entries tied for best in italics; ↑ higher is better, ↓ lower is better. Rate "
             "and distortion are not ranked: their sum is −ELBO, and less of one is bought "
             "with more of the other."]
    parts += [f"‡ {text}; not ranked." for text in table.caveats()]
    return " ".join(parts)


def _samples(configs: dict[tuple[str, ...], _Config]) -> list[EmbeddedImage]:
    images = []
    for config in configs.values():
        path = config.directory / RunFiles.SAMPLES
        if not path.is_file():
            continue
        label = config_label(config.record, with_seed=True)
        captions = read_json(config.directory / RunFiles.IMAGES) or {}
        how = str(captions.get(RunFiles.SAMPLES, "") or "")
        caption = f"prior: {config.prior.label}" + (f" · {how}" if how else "")
        image = embed_png(path.read_bytes(), title=label, caption=caption,
                          alt=f"Prior samples of {label}, prior {config.prior.label}",
                          target_width=_SAMPLE_WIDTH)
        if image is not None:
            images.append(image)
    return images


def _contours(configs: dict[tuple[str, ...], _Config]) -> EmbeddedImage | None:
    panels = []
    for config in configs.values():
        if config.prior.density is None or config.prior.latent_dim not in (None, 2):
            continue
        z1, z2, log_prob = config.prior.density
        points = labels = None
        latents = read_latents(config.directory / RunFiles.LATENTS) or {}
        mean = latents.get("mean")
        if mean is not None and mean.ndim == 2 and mean.shape[1] == 2:
            points = np.asarray(mean, float)
            found = latents.get("labels")
            if found is not None and found.shape == (len(points),):
                labels = found
        title = f"{config_label(config.record, with_seed=True)} — prior {config.prior.label}"
        panels.append(ContourPanel(title=title, z1=z1, z2=z2, log_prob=log_prob,
                                   points=points, labels=labels))
    png = prior_contours(panels)
    if png is None:
        return None
    return embed_png(png, title="Each prior's density over its codes",
                     alt="Posterior means coloured by class under contours of the prior's "
                         "highest-density regions, per configuration",
                     target_width=FIGURE_WIDTH_PX, fit=True)
