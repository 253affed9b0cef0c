"""Figures for the report, drawn with matplotlib and returned as PNG bytes.

Figures are rendered in memory on a bare :class:`matplotlib.figure.Figure` (the Agg canvas,
never ``pyplot``), so making a report opens no window, needs no display, leaks no global
figure state and is safe in a worker thread. matplotlib is imported on first use: it takes about
half a second to import, which a caller that only wants a table should not pay.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from io import BytesIO
from typing import Any

import pandas as pd

from latentbench.reports.labels import arrow

__all__ = ["FIGURE_WIDTH_PX", "colour_cycle", "figure_png", "metrics_by_decoder", "new_figure",
           "plain_text"]

#: Width of a rendered figure: just under the report's content width, so it is shown 1:1.
FIGURE_WIDTH_PX = 1180
_DPI = 100


#: seaborn's "colorblind" palette (``seaborn.color_palette("colorblind")``), written out: the
#: report took nothing else from seaborn, whose import cost 1.5 s of every report.
COLORBLIND = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4",
              "#949494", "#ece133", "#56b4e9")
#: matplotlib's "tab10" (its default colour cycle), for classes such as digit labels.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
         "#bcbd22", "#17becf")


def colour_cycle(n: int, colours: Sequence[str] = COLORBLIND) -> list[str]:
    """``n`` colours from ``colours``, starting again at the first after the last (as seaborn's
    ``color_palette(name, n)`` does)."""
    return [colours[i % len(colours)] for i in range(n)]


def new_figure(height_in: float, width_px: int = FIGURE_WIDTH_PX) -> Any:
    """A bare Agg :class:`~matplotlib.figure.Figure` with constrained layout (no pyplot)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_px / _DPI, height_in), dpi=_DPI, layout="constrained")


def panel_grid(panels: int, columns: int, row_height_in: float) -> tuple[Any, Any]:
    """A figure with ``panels`` axes laid out ``columns`` to a row (fewer when there are fewer
    panels); returns the figure and a 2-D array of axes (unused ones are the caller's to hide)."""
    columns = min(columns, panels)
    rows = math.ceil(panels / columns)
    fig = new_figure(rows * row_height_in + 0.5)
    return fig, fig.subplots(rows, columns, squeeze=False)


def figure_png(fig: Any) -> bytes:
    """The figure as PNG bytes on a white background."""
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, facecolor="white")
    return buffer.getvalue()


def plain_text(text: object) -> str:
    """User text safe for a matplotlib label: a ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


#: The metrics-by-decoder panels: four to a row, each this tall, plus a legend row per four
#: configurations.
_COLUMNS = 4
_PANEL_HEIGHT_IN = 2.6
_LEGEND_ROW_IN = 0.28


def metrics_by_decoder(
    values: pd.DataFrame,
    decoders: Sequence[str],
    configurations: Sequence[str],
    directions: Mapping[str, object],
) -> tuple[bytes, list[str]] | None:
    """Small multiples of bar charts: one panel per metric, decoders on the x axis.

    Each panel shows one metric; bars are grouped by decoder (x) and coloured by model
    configuration (hue). A bar is the mean over seeds and, where a configuration has more than
    one seed, its error bar is ±1 sample standard deviation (``ddof=1``, as in the summary
    table); a configuration with one seed has no error bar. Only metrics measured for at least
    two decoders get a panel: a metric with a single decoder compares nothing.

    Args:
        values: One row per finished run × metric with columns ``decoder``, ``configuration``
            (a label of the configuration without its decoder), ``metric`` and ``value``.
            Non-finite values are ignored.
        decoders: Decoder names in x-axis order (the same in every panel).
        configurations: Configuration labels in legend order.
        directions: Metric → ``higher_is_better`` (``True``, ``False`` or missing/NA), shown
            as ↑/↓ in the panel titles.

    Returns:
        ``(png_bytes, metrics)`` with the metrics drawn in panel order, or ``None`` if no metric
        was measured for two decoders.
    """
    from matplotlib.patches import Patch

    if values.empty:  # e.g. a GAN-only suite before any sample metric applies
        return None
    finite = values[pd.to_numeric(values["value"], errors="coerce").map(math.isfinite)]
    finite = finite[finite["decoder"].isin(decoders) & finite["configuration"].isin(configurations)]
    per_metric = finite.groupby("metric", sort=False)["decoder"].nunique()
    metrics = [str(m) for m in per_metric.index if per_metric[m] >= 2]
    if not metrics:
        return None

    columns = min(_COLUMNS, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    legend_columns = min(len(configurations), 4)
    legend_rows = math.ceil(len(configurations) / legend_columns)
    fig = new_figure(rows * _PANEL_HEIGHT_IN + legend_rows * _LEGEND_ROW_IN + 0.3)
    axes = fig.subplots(rows, columns, squeeze=False)

    # One colour per configuration across all panels, so the legend reads for every panel.
    palette = dict(zip(configurations, colour_cycle(len(configurations)), strict=True))
    # Mean and sample standard deviation (ddof=1, as in the summary table) of every bar at once;
    # plain Axes.bar with them, not seaborn's barplot, which re-aggregated the frame per panel
    # and took most of a 30-panel figure's 7 s.
    bars = finite.assign(value=finite["value"].astype(float)).groupby(
        ["metric", "decoder", "configuration"], sort=False)["value"].agg(["mean", "std", "count"])
    spread = bool((bars["count"] > 1).any())
    width = 0.8 / len(configurations)
    x_of = {decoder: i for i, decoder in enumerate(decoders)}
    offset = {c: (j + 0.5) * width - 0.4 for j, c in enumerate(configurations)}

    for ax, metric in zip(axes.flat, metrics, strict=False):
        panel = bars.loc[metric]
        for configuration, rows in panel.groupby(level="configuration", sort=False):
            rows = rows.droplevel("configuration")
            x = [x_of[decoder] + offset[configuration] for decoder in rows.index]
            ax.bar(x, rows["mean"], width=width, color=palette[configuration])
            if spread:
                ax.errorbar(x, rows["mean"], yerr=rows["std"].where(rows["count"] > 1),
                            fmt="none", ecolor="#24292f", elinewidth=1.0, capsize=3)
        ax.set_xticks(range(len(decoders)), list(decoders))
        ax.set_xlim(-0.5, len(decoders) - 0.5)
        direction = arrow(directions.get(metric))
        # "$" would start matplotlib's mathtext; a metric name is plain text.
        title = metric.replace("$", r"\$") + (f"  {direction}" if direction else "")
        ax.set_title(title, fontsize=11, fontweight="bold", loc="left")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelrotation=30, labelsize=9)
        ax.tick_params(axis="y", labelsize=8)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
        ax.grid(axis="y", color="#d1d9e0", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)

    handles = [Patch(facecolor=palette[c], label=c) for c in configurations]
    fig.legend(
        handles=handles,
        loc="outside upper left",
        ncols=legend_columns,
        frameon=False,
        fontsize=10,
    )
    return figure_png(fig), metrics
