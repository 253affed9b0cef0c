"""Self-contained HTML report of a benchmark output directory.

``render_report(OUT)`` reads ``OUT/results.csv`` and the run directories ``OUT/runs/<run-id>/``
and writes ``OUT/report.html``: one file with no external references (CSS inline, images as
base64 ``data:`` URIs), so that it can be mailed, attached to a CI job or opened offline.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import struct
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from latentbench.reports.table import CONFIG_COLUMNS, SummaryTable, load_results, summary_table

__all__ = ["render_report"]

_log = logging.getLogger(__name__)

_TEMPLATES = Path(__file__).with_name("templates")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Known image grids, in display order: (file name, title, what the grid shows).
_KNOWN_IMAGES: tuple[tuple[str, str, str], ...] = (
    (
        "reconstructions.png",
        "Reconstructions",
        "top row: test inputs; row below: their reconstructions",
    ),
    ("samples.png", "Prior samples", "decoded from z drawn from the prior"),
    ("interpolations.png", "Interpolations", "decoded along latent interpolation paths"),
)

_EXPECTED_TITLES = ("Reconstructions", "Prior samples")

#: Integer upscaling target: small grids (28 px digits) are enlarged to about this width so
#: they are legible, with ``image-rendering: pixelated`` keeping the pixels crisp; two such
#: grids still fit side by side in the page width.
_TARGET_WIDTH = 480
_MAX_UPSCALE = 4


@dataclass(frozen=True)
class _Image:
    title: str
    caption: str
    alt: str
    data_uri: str
    width: int
    height: int


@dataclass
class _Run:
    run_id: str
    seed: str
    images: list[_Image] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # titles of expected grids not saved
    metrics: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, arrow


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
    runs_dir = out / "runs"

    suite_name, description = _suite_info(runs_dir, results)
    groups = _config_groups(runs_dir, results, table)
    context = {
        "suite_name": suite_name,
        "description": description,
        "counts": _counts(results),
        "table": _table_context(table),
        "caption": table.caption(),
        "failed": _failed_runs(runs_dir, results),
        "groups": groups,
    }
    html = _environment().get_template("report.html.j2").render(**context)
    return _write_atomic(out / "report.html", html)


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


def _write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then move it into place."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file 0600; a report is meant to be shared.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return path


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _run_dir(runs_dir: Path, run_id: str) -> Path | None:
    """The run's directory, or ``None`` if absent or if the id would escape ``runs/``."""
    candidate = runs_dir / run_id
    try:
        inside = candidate.resolve().is_relative_to(runs_dir.resolve())
    except OSError:
        return None
    # A run id comes from a CSV; never let "../../etc" read files outside the output directory.
    if not inside or candidate.resolve() == runs_dir.resolve() or not candidate.is_dir():
        return None
    return candidate


def _suite_info(runs_dir: Path, results: pd.DataFrame) -> tuple[str, str]:
    """Suite name and description, from the first run's ``config.json`` that has them."""
    names = results["suite"].dropna().astype(str)
    name = names.iloc[0] if len(names) else ""
    description = ""
    for run_id in pd.unique(results["run_id"].dropna().astype(str)):
        run_dir = _run_dir(runs_dir, run_id)
        config = _read_json(run_dir / "config.json") if run_dir else None
        if not config:
            continue
        suite = config.get("suite")
        # The resolved config may carry the [suite] table or just its name.
        if isinstance(suite, dict):
            name = name or str(suite.get("name") or "")
            description = str(suite.get("description") or "")
        elif isinstance(suite, str):
            name = name or suite
            description = str(config.get("description") or "")
        if description:
            break
    return name, description


def _counts(results: pd.DataFrame) -> dict[str, int]:
    status = results.groupby("run_id", sort=False)["status"].first()
    return {
        "runs": int(status.size),
        "done": int(status.eq("done").sum()),
        "failed": int(status.eq("failed").sum()),
    }


def _failed_runs(runs_dir: Path, results: pd.DataFrame) -> list[dict[str, str]]:
    """Failed runs with their configuration and reason."""
    failed = results[results["status"].eq("failed")].drop_duplicates("run_id")
    rows = []
    for record in failed.to_dict("records"):
        run_id = str(record["run_id"])
        reason = record.get("reason")
        if reason is None or pd.isna(reason) or not str(reason).strip():
            reason = _status_reason(runs_dir, run_id) or "no reason recorded"
        rows.append(
            {
                "run_id": run_id,
                "label": _config_label(record, with_seed=True),
                "reason": str(reason),
            }
        )
    return rows


def _status_reason(runs_dir: Path, run_id: str) -> str | None:
    """The reason from a run directory's ``status`` file (``failed: <reason>``)."""
    run_dir = _run_dir(runs_dir, run_id)
    if run_dir is None:
        return None
    try:
        status = (run_dir / "status").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    _, _, reason = status.partition(":")
    return reason.strip() or None


def _format_beta(beta: object) -> str | None:
    if beta is None or pd.isna(beta):
        return None
    return f"{float(beta):.4g}"


def _config_label(record: dict[str, Any], with_seed: bool = False) -> str:
    """A short human label such as ``mnist5k · vae · transposed · β=1 · z=16 · seed 0``."""
    parts = [str(record["dataset"]), str(record["model"]), str(record["decoder"])]
    beta = _format_beta(record["beta"])
    if beta is not None:
        parts.append(f"β={beta}")
    if not pd.isna(record["latent_dim"]):
        parts.append(f"z={record['latent_dim']}")
    if with_seed and not pd.isna(record["seed"]):
        parts.append(f"seed {record['seed']}")
    return " · ".join(parts)


def _config_key(record: dict[str, Any]) -> tuple[str, ...]:
    # NaN != NaN, so key configurations by their display strings instead of raw values.
    return tuple("" if pd.isna(record[c]) else str(record[c]) for c in CONFIG_COLUMNS)


def _config_groups(
    runs_dir: Path, results: pd.DataFrame, table: SummaryTable
) -> list[_ConfigGroup]:
    """One group per configuration (in table order), holding its finished runs by seed."""
    done = results[results["status"].eq("done")]
    arrows = {m: _arrow(table.higher_is_better[m]) for m in table.metrics}

    groups: dict[tuple[str, ...], _ConfigGroup] = {}
    for index, config in enumerate(table.mean.index.to_frame(index=False).to_dict("records")):
        key = _config_key(config)
        groups[key] = _ConfigGroup(anchor=f"config-{index}", label=_config_label(config))

    ordered = done.sort_values(["seed", "run_id"], na_position="last")
    for run_id, rows in ordered.groupby("run_id", sort=False):
        first = rows.iloc[0].to_dict()
        group = groups.get(_config_key(first))
        if group is None:  # a done run without any metric row has no table row
            group = groups.setdefault(
                _config_key(first),
                _ConfigGroup(anchor=f"config-{len(groups)}", label=_config_label(first)),
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
        run_dir = _run_dir(runs_dir, str(run_id))
        if run_dir is not None:
            run.images = _run_images(run_dir, _config_label(first, with_seed=True))
        # Reconstructions and samples are expected of every run; say so when one is absent
        # (e.g. a model without an encoder) rather than leave a silent gap.
        titles = {image.title for image in run.images}
        run.missing = [t for t in _EXPECTED_TITLES if t not in titles] if run.images else []
        group.runs.append(run)
    return [group for group in groups.values() if group.runs]


def _run_images(run_dir: Path, label: str) -> list[_Image]:
    """The run's PNG grids, known ones first, each embedded as a data URI."""
    known = {name: (title, caption) for name, title, caption in _KNOWN_IMAGES}
    # The harness may describe its grids (how a model samples, say) in images.json.
    manifest = run_dir / "images.json"
    captions = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
    paths = [run_dir / name for name, _, _ in _KNOWN_IMAGES if (run_dir / name).is_file()]
    paths += sorted(p for p in run_dir.glob("*.png") if p.name not in known and p.is_file())

    images = []
    for path in paths:
        data = path.read_bytes()
        size = _png_size(data)
        if size is None:
            _log.warning("skipping %s: not a PNG file", path)
            continue
        title, caption = known.get(path.name, (path.stem.replace("_", " ").capitalize(), ""))
        caption = str(captions.get(path.name, caption))
        width, height = size
        scale = max(1, min(_MAX_UPSCALE, round(_TARGET_WIDTH / max(width, 1))))
        images.append(
            _Image(
                title=title,
                caption=caption,
                alt=f"{title} for {label}" + (f" ({caption})" if caption else ""),
                data_uri="data:image/png;base64," + base64.b64encode(data).decode("ascii"),
                width=width * scale,
                height=height * scale,
            )
        )
    return images


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or ``None`` if ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _arrow(direction: object) -> str:
    if direction is None or direction is pd.NA or pd.isna(direction):
        return ""
    return "↑" if bool(direction) else "↓"


def _direction_text(direction: object) -> str:
    arrow = _arrow(direction)
    return {"↑": "higher is better", "↓": "lower is better"}.get(arrow, "direction unknown")


def _table_context(table: SummaryTable) -> dict[str, Any]:
    """The summary table as plain lists for the template."""
    rows = [
        {
            # Groups are numbered in table order, so row i links to section config-i.
            "anchor": f"config-{index}",
            "config": list(config_values),
            "cells": list(zip(cell_values, best_values, strict=True)),
        }
        for index, (config_values, cell_values, best_values) in enumerate(
            zip(
                table.config_frame().itertuples(index=False),
                table.cells().itertuples(index=False),
                table.best.itertuples(index=False),
                strict=True,
            )
        )
    ]
    return {
        "config_headers": ["dataset", "model", "decoder", "β", "latent", "n"],
        "metrics": [
            {
                "name": metric,
                "arrow": _arrow(table.higher_is_better[metric]),
                "direction": _direction_text(table.higher_is_better[metric]),
            }
            for metric in table.metrics
        ],
        "rows": rows,
    }
