"""The report's "Decoders side by side" section: the same model with each decoder, in columns.

A suite that varies the decoder (the shipped ``decoders`` and ``gan`` suites) is read best
decoder against decoder with everything else equal. :func:`decoder_comparison` builds that view
from the results: one row per configuration with the decoder left out (dataset, model, β,
latent size), one column per decoder, each cell the prior samples and reconstructions of that
decoder's run, and a bar chart of every metric by decoder.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from latentbench.reports.figures import FIGURE_WIDTH_PX, metrics_by_decoder
from latentbench.reports.labels import config_key
from latentbench.reports.rundir import EmbeddedImage, embed_png, run_dir
from latentbench.reports.schema import RunFiles, config_label

__all__ = ["DecoderCell", "DecoderComparison", "DecoderRow", "decoder_comparison"]

#: What a configuration is without its decoder: the rows of the side-by-side grid.
ROW_COLUMNS: tuple[str, ...] = ("dataset", "model", "beta", "latent_dim")

#: Metrics that exist only for a model that reconstructs its input (one with an encoder).
_RECONSTRUCTION_METRICS = frozenset({"recon_mse", "recon_bce", "psnr", "ssim", "distortion"})

#: The report's content width (page 1240 px less its padding) and what each table cell adds to
#: its image (padding and borders): five decoder columns must fit without a scroll bar.
_CONTENT_WIDTH = 1184
_CELL_CHROME = 22
#: With few decoders the columns are wide, but a row should still fit on a screen: grids are
#: enlarged to at most this width (a 242 px grid of 28 px digits stays 1:1).
_MAX_CELL_IMAGE = 400


@dataclass(frozen=True)
class DecoderCell:
    """One decoder's run of one configuration.

    Attributes:
        decoder: The decoder (the column).
        run_id: The run shown; empty when the configuration has no finished run with it.
        seed: That run's seed as text.
        anchor: The id of the run's section in the report's "Runs" part, for a link.
        samples: The run's ``samples.png``, if saved.
        reconstructions: The run's ``reconstructions.png``, if saved.
        samples_note: Why there are no samples (only set when ``samples`` is missing).
        reconstructions_note: Why there are no reconstructions, e.g. "no encoder".
        note: Why there is no run at all ("failed: …", "not run").
        failed: ``True`` when the cell's runs all failed.
    """

    decoder: str
    run_id: str = ""
    seed: str = ""
    anchor: str = ""
    samples: EmbeddedImage | None = None
    reconstructions: EmbeddedImage | None = None
    samples_note: str = ""
    reconstructions_note: str = ""
    note: str = ""
    failed: bool = False


@dataclass(frozen=True)
class DecoderRow:
    """A configuration without its decoder, with one cell per decoder.

    Attributes:
        label: The configuration, e.g. ``mnist5k · vae · β=1 · z=16``.
        seed: The seed shown in every cell, or empty if the cells show different seeds
            (then each cell names its own).
        cells: One per decoder, in the comparison's decoder order.
    """

    label: str
    seed: str
    cells: list[DecoderCell]


@dataclass(frozen=True)
class DecoderComparison:
    """Everything the template needs for the "Decoders side by side" section.

    Attributes:
        decoders: The decoders, in the order they first appear in ``results.csv``.
        rows: One per configuration with the decoder left out, in summary-table order.
        figure: Bar charts of the metrics by decoder, or ``None`` if no metric was measured
            for two decoders.
        figure_metrics: The metrics in the figure, in panel order.
        multi_seed: Whether any bar averages more than one seed (so has an error bar).
    """

    decoders: list[str]
    rows: list[DecoderRow]
    figure: EmbeddedImage | None
    figure_metrics: list[str]
    multi_seed: bool


def decoder_comparison(
    runs_dir: Path,
    results: pd.DataFrame,
    anchors: Mapping[tuple[str, ...], str],
    directions: Mapping[str, object],
) -> DecoderComparison | None:
    """Build the side-by-side view of a suite's decoders.

    The view is made only when the suite compares decoders: at least two decoders appear in
    the results, at least one configuration (dataset, model, β, latent size) was run with two
    or more of them, and at least one run finished. A suite that merely uses different
    decoders for unrelated models has nothing to put side by side.

    Each cell shows one finished run: the lowest seed finished by every decoder of the row if
    there is one (so that all cells of a row are comparable), else each decoder's lowest
    finished seed.

    Args:
        runs_dir: ``OUT/runs``.
        results: Output of :func:`~latentbench.reports.table.load_results`.
        anchors: Full configuration key (:func:`~latentbench.reports.labels.config_key`) →
            the id of its section in the report, for links from the cells.
        directions: Metric → ``higher_is_better``, for the figure's titles.

    Returns:
        The comparison, or ``None`` if the suite does not compare decoders.
    """
    results = results[results["decoder"].notna()]
    runs = results.drop_duplicates("run_id").copy()
    runs["decoder"] = runs["decoder"].astype(str)
    decoders = [str(d) for d in pd.unique(runs["decoder"])]
    if len(decoders) < 2:
        return None
    # A string key: NaN β would never group with itself, and tuples make awkward group keys.
    runs["row"] = ["\x1f".join(config_key(r, ROW_COLUMNS)) for r in runs.to_dict("records")]
    if runs.groupby("row", sort=False)["decoder"].nunique().max() < 2:
        return None
    if not runs["status"].eq("done").any():
        return None  # nothing to show but failures, which the report lists on their own

    # Rows in the summary table's order; within a cell, the lowest seed first.
    runs = runs.sort_values([*ROW_COLUMNS, "seed", "run_id"], na_position="last")
    done_metrics = results[results["status"].eq("done") & results["metric"].notna()]
    metrics_of = done_metrics.groupby("run_id")["metric"].agg(lambda m: set(m.astype(str)))
    fit_width = min(_MAX_CELL_IMAGE, _CONTENT_WIDTH // len(decoders) - _CELL_CHROME)

    rows = [
        _row(runs_dir, group, decoders, anchors, metrics_of, fit_width)
        for _, group in runs.groupby("row", sort=False)
    ]
    figure, figure_metrics, multi_seed = _figure(done_metrics, runs, decoders, directions)
    return DecoderComparison(
        decoders=decoders,
        rows=rows,
        figure=figure,
        figure_metrics=figure_metrics,
        multi_seed=multi_seed,
    )


def _row(
    runs_dir: Path,
    runs: pd.DataFrame,
    decoders: list[str],
    anchors: Mapping[tuple[str, ...], str],
    metrics_of: pd.Series,
    fit_width: int,
) -> DecoderRow:
    """One configuration's cells, choosing which seed each cell shows."""
    first = runs.iloc[0].to_dict()
    done = runs[runs["status"].eq("done")]
    seed_sets = [set(group["seed"].dropna()) for _, group in done.groupby("decoder")]
    common = set.intersection(*seed_sets) if seed_sets else set()
    row_seed = min(common) if common else None
    if row_seed is not None:
        # Prefer the seed every decoder finished; seedless runs of a decoder still count.
        done = done[done["seed"].eq(row_seed).fillna(False) | done["seed"].isna()]

    cells = []
    for decoder in decoders:
        chosen = done[done["decoder"].eq(decoder)]
        if len(chosen):
            record = chosen.iloc[0].to_dict()
            cells.append(_run_cell(runs_dir, record, anchors, metrics_of, fit_width))
            continue
        failed = runs[runs["decoder"].eq(decoder) & runs["status"].eq("failed")]
        if len(failed):
            reason = failed["reason"].dropna().astype(str)
            text = reason.iloc[0] if len(reason) else "see Failed runs"
            cells.append(DecoderCell(decoder=decoder, note=f"run failed: {text}", failed=True))
        else:
            cells.append(DecoderCell(decoder=decoder, note="not run"))
    return DecoderRow(
        label=config_label(first, with_decoder=False),
        seed="" if row_seed is None else str(row_seed),
        cells=cells,
    )


def _run_cell(
    runs_dir: Path,
    record: dict[str, Any],
    anchors: Mapping[tuple[str, ...], str],
    metrics_of: pd.Series,
    fit_width: int,
) -> DecoderCell:
    """A finished run's cell: its samples above its reconstructions."""
    run_id = str(record["run_id"])
    label = config_label(record, with_seed=True)
    directory = run_dir(runs_dir, run_id)

    def embed(name: str, title: str) -> EmbeddedImage | None:
        path = directory / name if directory is not None else None
        if path is None or not path.is_file():
            return None
        return embed_png(
            path.read_bytes(),
            title=title,
            alt=f"{title} for {label}",
            target_width=fit_width,
            fit=True,
        )

    samples = embed(RunFiles.SAMPLES, "Prior samples")
    reconstructions = embed(RunFiles.RECONSTRUCTIONS, "Reconstructions")
    # A model without an encoder (a GAN) has no reconstruction metric either; a missing grid
    # of a model that does reconstruct was just not saved.
    measured = metrics_of.get(run_id, set())
    has_encoder = bool(measured & _RECONSTRUCTION_METRICS)
    return DecoderCell(
        decoder=str(record["decoder"]),
        run_id=run_id,
        seed="" if pd.isna(record["seed"]) else str(record["seed"]),
        anchor=anchors.get(config_key(record), ""),
        samples=samples,
        reconstructions=reconstructions,
        samples_note="" if samples else "no samples saved",
        reconstructions_note=""
        if reconstructions
        else ("reconstructions not saved" if has_encoder else "no encoder: nothing to reconstruct"),
    )


def _figure(
    done_metrics: pd.DataFrame,
    runs: pd.DataFrame,
    decoders: list[str],
    directions: Mapping[str, object],
) -> tuple[EmbeddedImage | None, list[str], bool]:
    """The metrics-by-decoder bar charts, embedded; hue is the configuration's row label."""
    labels = {
        str(r["run_id"]): config_label(r, with_decoder=False) for r in runs.to_dict("records")
    }
    values = pd.DataFrame(
        {
            "decoder": done_metrics["decoder"].astype(str).to_numpy(),
            "configuration": done_metrics["run_id"].astype(str).map(labels).to_numpy(),
            "metric": done_metrics["metric"].astype(str).to_numpy(),
            "value": done_metrics["value"].astype("float64").to_numpy(),
        }
    )
    configurations = list(dict.fromkeys(labels[r] for r in runs["run_id"].astype(str)))
    drawn = metrics_by_decoder(values, decoders, configurations, directions)
    if drawn is None:
        return None, [], False
    png, metrics = drawn
    shown = values[values["metric"].isin(metrics)].dropna(subset=["value"])
    multi_seed = bool(
        (shown.groupby(["metric", "decoder", "configuration"])["value"].count() > 1).any()
    )
    figure = embed_png(
        png,
        title="Metrics by decoder",
        alt="Bar charts, one per metric, of each decoder's value per configuration: "
        + ", ".join(metrics),
        target_width=FIGURE_WIDTH_PX,
        max_upscale=1,
    )
    if figure is not None:  # a chart is drawn at its display size: no blocky pixels wanted
        figure = replace(figure, smooth=True)
    return figure, metrics, multi_seed
