"""Figures across β: the rate–distortion plane and each metric against β.

β trades rate (KL to the prior) against distortion (reconstruction error); these figures show
that trade-off per model and decoder, one point per run and one line through the per-β means.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from latentbench.reports.figures import colour_cycle, figure_png, new_figure, plain_text
from latentbench.reports.labels import arrow
from latentbench.reports.schema import format_beta

__all__ = ["LINE_COLUMNS", "line_label", "metrics_vs_beta", "per_run", "rate_distortion"]

#: What one line of a β figure holds fixed: everything of a configuration except β.
LINE_COLUMNS: tuple[str, ...] = ("dataset", "model", "decoder", "latent_dim")
_COLUMNS = 4
_MAX_PANELS = 16


def line_label(key: tuple[object, ...]) -> str:
    """The legend label of a line keyed by :data:`LINE_COLUMNS`."""
    dataset, model, decoder, latent = key
    return plain_text(f"{model} · {decoder} · z={latent} ({dataset})")


def per_run(done: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per run with its β, line columns and the values of ``metrics``."""
    rows = done[done["metric"].isin(metrics)]
    wide = rows.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    info = rows.drop_duplicates("run_id").set_index("run_id")[[*LINE_COLUMNS, "beta", "seed"]]
    frame = info.join(wide, how="inner")
    frame["latent_dim"] = frame["latent_dim"].astype("string").fillna("–")
    return frame


def rate_distortion(done: pd.DataFrame) -> bytes | None:
    """Distortion against rate, one point per run, one line per model/decoder through the means.

    Args:
        done: Long-format rows of finished runs (``results.csv`` columns).

    Returns:
        PNG bytes, or ``None`` when no run has both ``rate`` and ``distortion``.
    """
    if done.empty:
        return None
    frame = per_run(done, ["rate", "distortion"])
    if not {"rate", "distortion"} <= set(frame.columns):
        return None
    frame = frame.dropna(subset=["rate", "distortion"])
    frame = frame[frame[["rate", "distortion"]].map(math.isfinite).all(axis=1)]
    if frame.empty:
        return None
    fig = new_figure(5.2, width_px=900)
    ax = fig.subplots()
    lines = list(frame.groupby(list(LINE_COLUMNS), sort=True))
    colours = colour_cycle(len(lines))
    for colour, (key, runs) in zip(colours, lines, strict=True):
        ax.scatter(runs["rate"], runs["distortion"], color=colour, alpha=0.45, s=18)
        means = runs.groupby("beta", dropna=False)[["rate", "distortion"]].mean().sort_index()
        ax.plot(means["rate"], means["distortion"], "-o", color=colour, markersize=5,
                label=line_label(key))
        for beta, point in means.iterrows():
            text = format_beta(beta)
            if text is not None:
                ax.annotate(f"β={text}", (point["rate"], point["distortion"]), fontsize=8,
                            textcoords="offset points", xytext=(5, 4), color=colour)
    ax.set_title("Rate–distortion plane (points: runs; line: mean over seeds per β)",
                 loc="left", fontsize=11, fontweight="bold")
    ax.set_xlabel("rate: KL(q(z|x) ‖ p(z)) [nats/image]")
    ax.set_ylabel("distortion: −log p(x|z) [nats/image]")
    ax.grid(color="#d1d9e0", linewidth=0.6)
    ax.legend(fontsize=9, frameon=False)
    return figure_png(fig)


def metrics_vs_beta(done: pd.DataFrame, directions: Mapping[str, object]) -> bytes | None:
    """Small multiples: each metric against β (log scale), mean ± 1 sd over seeds.

    Args:
        done: Long-format rows of finished runs.
        directions: Metric → ``higher_is_better`` for the ↑/↓ in panel titles.

    Returns:
        PNG bytes, or ``None`` when no model/decoder line has two or more values of β.
    """
    with_beta = done[done["beta"].notna() & done["metric"].notna()]
    with_beta = with_beta[with_beta["value"].map(lambda v: math.isfinite(float(v)))]
    if with_beta.empty:
        return None
    if with_beta.groupby(list(LINE_COLUMNS), dropna=False)["beta"].nunique().max() < 2:
        return None
    metrics = [str(m) for m in pd.unique(with_beta["metric"])][:_MAX_PANELS]
    columns = min(_COLUMNS, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    fig = new_figure(rows * 2.7 + 0.6)
    axes = fig.subplots(rows, columns, squeeze=False)
    keys = sorted(with_beta.groupby(list(LINE_COLUMNS), dropna=False).groups)
    colours = dict(zip(keys, colour_cycle(len(keys)), strict=True))
    for ax, metric in zip(axes.flat, metrics, strict=False):
        panel = with_beta[with_beta["metric"] == metric]
        for key, runs in panel.groupby(list(LINE_COLUMNS), dropna=False):
            stats = runs.groupby("beta")["value"].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), fmt="-o",
                        markersize=4, capsize=3, color=colours[key], label=line_label(key))
        direction = arrow(directions.get(metric))
        ax.set_title(plain_text(metric) + (f"  {direction}" if direction else ""),
                     loc="left", fontsize=10, fontweight="bold")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("β (log scale)")
        ax.tick_params(labelsize=8)
        ax.grid(color="#d1d9e0", linewidth=0.6)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=min(4, len(labels)),
               frameon=False, fontsize=9)
    return figure_png(fig)
