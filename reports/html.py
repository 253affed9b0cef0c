"""Self-contained HTML report of a benchmark output directory.

``render_report(OUT)`` reads ``OUT/results.csv`` and the run directories ``OUT/runs/<run-id>/``
and writes ``OUT/report.html``: one file with no external references (CSS inline, images as
base64 ``data:`` URIs), so that it can be mailed, attached to a CI job or opened offline.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from latentbench.reports.atomic import write_text_atomic
from latentbench.reports.export import table_caption
from latentbench.reports.families import table_groups
from latentbench.reports.labels import config_key, direction_text
from latentbench.reports.rundir import EmbeddedImage, embed_png, read_json, read_timings, run_dir
from latentbench.reports.schema import (
    REFERENCE_MODEL,
    REPORT_FILE,
    RUNS_DIR,
    STATUS_FAILED,
    SUITE_FILE,
    EvalTimings,
    RunFiles,
    config_label,
)
from latentbench.reports.section_priors import priors
from latentbench.reports.sections import (
    beta_figures,
    decoder_spectra,
    disentanglement,
    environment,
    latent_space,
)
from latentbench.reports.side_by_side import decoder_comparison
from latentbench.reports.table import SummaryTable, load_results, summary_table

__all__ = ["render_report"]

_log = logging.getLogger(__name__)

_TEMPLATES = Path(__file__).with_name("templates")

#: Known image grids, in display order: (file name, title, what the grid shows).
_KNOWN_IMAGES: tuple[tuple[str, str, str], ...] = (
    (
        RunFiles.RECONSTRUCTIONS,
        "Reconstructions",
        "top row: test inputs; row below: their reconstructions",
    ),
    (RunFiles.SAMPLES, "Prior samples", "decoded from z drawn from the prior"),
    (RunFiles.INTERPOLATIONS, "Interpolations", "decoded along latent interpolation paths"),
    (RunFiles.TRAVERSALS, "Latent traversals", "one latent dimension varied per row"),
    (RunFiles.LATENT_GRID, "Decoded latent grid", "codes on a grid over the 2-d latent plane"),
)

_EXPECTED_TITLES = ("Reconstructions", "Prior samples")

#: Integer upscaling target: small grids (28 px digits) are enlarged to about this width so
#: they are legible, with ``image-rendering: pixelated`` keeping the pixels crisp; two such
#: grids still fit side by side in the page width.
_TARGET_WIDTH = 480
_MAX_UPSCALE = 4


#: Click a header of the summary table to sort by it (again to reverse). Metric cells sort
#: numerically on their mean (``data-value``), empty cells last; other cells as text. Allowed by
#: the page's Content-Security-Policy through its hash, so no other script can run.
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(headers, function (th, column) {
    th.tabIndex = 0;
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[column];
        var value = cell.getAttribute("data-value");
        if (value === null) { return cell.textContent.trim(); }
        return value === "" ? null : parseFloat(value);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
        var order = typeof x === "number" ? x - y : x.localeCompare(y, undefined, {numeric: true});
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
  });
});
"""
_SORT_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SORT_SCRIPT.encode()).digest()).decode()


#: How the timing table names the kinds of :meth:`EvalTimings.slowest`.
_TIMING_KINDS = {"metric": "metric", "pass": "shared pass"}


@dataclass(frozen=True)
class _RunTimings:
    """A run's evaluation time for its table: every metric and shared pass, slowest first, as
    ``(name, kind, seconds, share of the total)`` text, the rest and the total."""

    rows: list[tuple[str, str, str, str]]
    rest: str
    total: str


@dataclass
class _Run:
    run_id: str
    seed: str
    images: list[EmbeddedImage] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # titles of expected grids not saved
    metrics: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, arrow
    timings: _RunTimings | None = None  # None: its metrics.json has none (format 3)


@dataclass
class _ConfigGroup:
    anchor: str
    label: str
    runs: list[_Run] = field(default_factory=list)


def render_report(out_dir: Path | str) -> Path:
    """Write ``OUT/report.html``, a single self-contained HTML report of a benchmark run.

    The report holds the suite's name and description, the summary table (mean ± std over
    seeds, ↑/↓ metric directions, best value per metric in bold), the failed runs with their
    reasons, and for every finished run its image grids (reconstructions, prior samples and
    any other PNG in the run directory) embedded as base64 ``data:`` URIs.

    The file is written to a temporary name in ``OUT`` and moved into place with
    :func:`os.replace`, so a reader never sees a half-written report.

    Args:
        out_dir: The benchmark output directory (holding ``results.csv`` and ``runs/``).

    Returns:
        The path of the written ``report.html``.

    Raises:
        FileNotFoundError: If ``out_dir`` has no ``results.csv``.
        ValueError: If ``results.csv`` lacks required columns.
    """
    out = Path(out_dir)
    results = load_results(out)
    table = summary_table(results)
    runs_dir = out / RUNS_DIR

    suite_name, description = _suite_info(out, results)
    # The real-data reference is a row of the tables, not a run: it has no folder to show.
    runs = results[results["model"].ne(REFERENCE_MODEL)]
    groups = _config_groups(runs_dir, runs, table)
    anchors = {key: group.anchor for key, group in groups.items()}
    decoders = decoder_comparison(
        runs_dir,
        runs,
        anchors=anchors,
        directions=table.higher_is_better.to_dict(),
    )
    context = {
        "suite_name": suite_name,
        "description": description,
        "counts": _counts(runs),
        "tables": [
            {"name": group.name, "title": group.title,
             "caption": table_caption(table.select(group.metrics), results),
             "table": _table_context(table.select(group.metrics), anchors)}
            for group in table_groups(results, table.metrics)
        ],
        "failed": _failed_runs(runs),
        "decoders": decoders,
        "spectra": decoder_spectra(runs_dir, runs),
        "beta": beta_figures(runs, table.higher_is_better.to_dict()),
        "disentanglement": disentanglement(runs_dir, runs, table.higher_is_better.to_dict()),
        "latent": latent_space(runs_dir, runs),
        "priors": priors(runs_dir, runs, table.higher_is_better.to_dict()),
        "environment": environment(runs_dir, runs),
        "groups": list(groups.values()),
        "sort_script": _SORT_SCRIPT,
        "script_hash": _SORT_SCRIPT_HASH,
    }
    html = _environment().get_template("report.html.j2").render(**context)
    return write_text_atomic(out / REPORT_FILE, html)


@cache
def _environment() -> Environment:
    # Autoescape everything: suite descriptions, model names and failure reasons are user text.
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _suite_info(out: Path, results: pd.DataFrame) -> tuple[str, str]:
    """Suite name and description from ``OUT/suite.json``; the name from results.csv if the
    file is missing (a results.csv copied out of its folder)."""
    suite = read_json(out / SUITE_FILE) or {}
    names = results["suite"].dropna().astype(str)
    name = str(suite.get("name") or (names.iloc[0] if len(names) else ""))
    return name, str(suite.get("description") or "")


def _counts(results: pd.DataFrame) -> dict[str, int]:
    status = results.groupby("run_id", sort=False)["status"].first()
    return {
        "runs": int(status.size),
        "done": int(status.eq("done").sum()),
        "failed": int(status.eq("failed").sum()),
    }


def _failed_runs(results: pd.DataFrame) -> list[dict[str, str]]:
    """Failed runs with their configuration and reason."""
    failed = results[results["status"].eq(STATUS_FAILED)].drop_duplicates("run_id")
    return [
        {
            "run_id": str(record["run_id"]),
            "label": config_label(record, with_seed=True),
            "reason": "no reason recorded" if pd.isna(record["reason"]) else str(record["reason"]),
        }
        for record in failed.to_dict("records")
    ]


def _config_groups(
    runs_dir: Path, results: pd.DataFrame, table: SummaryTable
) -> dict[tuple[str, ...], _ConfigGroup]:
    """One group per configuration (in table order), holding its finished runs by seed.

    Keyed by :func:`config_key`; configurations without a finished run are left out.
    """
    done = results[results["status"].eq("done")]
    arrows = {m: table.direction(m) for m in table.metrics}

    groups: dict[tuple[str, ...], _ConfigGroup] = {}
    configs = table.mean.index.to_frame(index=False).to_dict("records")
    for index, config in enumerate(configs):
        if config["model"] == REFERENCE_MODEL:
            continue
        key = config_key(config)
        groups[key] = _ConfigGroup(anchor=f"config-{index}", label=config_label(config))

    ordered = done.sort_values(["seed", "run_id"], na_position="last")
    for run_id, rows in ordered.groupby("run_id", sort=False):
        first = rows.iloc[0].to_dict()
        group = groups.get(config_key(first))
        if group is None:  # a done run without any metric row has no table row
            group = groups.setdefault(
                config_key(first),
                _ConfigGroup(anchor=f"config-{len(groups)}", label=config_label(first)),
            )
        run = _Run(
            run_id=str(run_id),
            seed="–" if pd.isna(first["seed"]) else str(first["seed"]),
        )
        metric_rows = rows[rows["metric"].notna()]
        run.metrics = [
            (str(m), "" if pd.isna(v) else f"{v:.4g}", arrows.get(str(m), ""))
            for m, v in zip(metric_rows["metric"], metric_rows["value"], strict=True)
        ]
        directory = run_dir(runs_dir, str(run_id))
        if directory is not None:
            run.images = _run_images(directory, config_label(first, with_seed=True))
            timings = read_timings(directory)
            run.timings = None if timings is None else _timing_table(timings)
        # Reconstructions and samples are expected of every run; say so when one is absent
        # (e.g. a model without an encoder) rather than leave a silent gap.
        titles = {image.title for image in run.images}
        run.missing = [t for t in _EXPECTED_TITLES if t not in titles] if run.images else []
        group.runs.append(run)
    return {key: group for key, group in groups.items() if group.runs}


def _timing_table(timings: EvalTimings) -> _RunTimings:
    """The rows of a run's timing table; the rest is the evaluation's time in neither a metric
    nor a pass (the driver's bookkeeping), shown so the column visibly adds up to the total."""
    total = timings.total

    def share(seconds: float) -> str:
        return f"{100 * seconds / total:.1f} %" if total > 0 else "–"

    parts = timings.slowest()
    rest = max(0.0, total - sum(seconds for _, _, seconds in parts))
    rows = [(name, _TIMING_KINDS[kind], f"{seconds:.3f}", share(seconds))
            for kind, name, seconds in parts]
    return _RunTimings(rows=rows, rest=f"{rest:.3f}", total=f"{total:.3f}")


def _run_images(directory: Path, label: str) -> list[EmbeddedImage]:
    """The run's PNG grids, known ones first, each embedded as a data URI."""
    known = {name: (title, caption) for name, title, caption in _KNOWN_IMAGES}
    # The harness may describe its grids (how a model samples, say) in images.json.
    captions = read_json(directory / RunFiles.IMAGES) or {}
    paths = [directory / name for name, _, _ in _KNOWN_IMAGES if (directory / name).is_file()]
    paths += sorted(p for p in directory.glob("*.png") if p.name not in known and p.is_file())

    images = []
    for path in paths:
        title, caption = known.get(path.name, (path.stem.replace("_", " ").capitalize(), ""))
        caption = str(captions.get(path.name, caption))
        image = embed_png(
            path.read_bytes(),
            title=title,
            caption=caption,
            alt=f"{title} for {label}" + (f" ({caption})" if caption else ""),
            target_width=_TARGET_WIDTH,
            max_upscale=_MAX_UPSCALE,
        )
        if image is None:
            _log.warning("skipping %s: not a PNG file", path)
            continue
        images.append(image)
    return images


def _table_context(table: SummaryTable, anchors: dict[tuple[str, ...], str]) -> dict[str, Any]:
    """The summary table as plain lists for the template; rows link to their configuration's
    runs by ``anchors`` (the reference row has none)."""
    configs = table.mean.index.to_frame(index=False).to_dict("records")
    rows = [
        {
            "anchor": anchors.get(config_key(config), ""),
            "reference": bool(reference),
            "config": list(config_values),
            "cells": list(zip(cell_values, best_values, tied_values, mean_values, strict=True)),
        }
        for config, reference, config_values, cell_values, best_values, tied_values, mean_values
        in zip(
            configs,
            table.reference,
            table.config_frame().itertuples(index=False),
            table.cells().itertuples(index=False),
            table.best.itertuples(index=False),
            table.tied.itertuples(index=False),
            # Full-precision means for the numeric sort; "" sorts an empty cell last.
            table.mean.map(lambda v: "" if pd.isna(v) else repr(float(v))).itertuples(
                index=False),
            strict=True,
        )
    ]
    return {
        "config_headers": ["dataset", "model", "decoder", "β", "latent", "n"],
        "metrics": [
            {
                "name": metric,
                "arrow": table.direction(metric),
                "direction": direction_text(table.higher_is_better[metric],
                                            table.target[metric]),
            }
            for metric in table.metrics
        ],
        "rows": rows,
    }
