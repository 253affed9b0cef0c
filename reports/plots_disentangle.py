"""Figures of the disentanglement section: the scores against reconstruction (the trade-off β
buys), and which latent holds which ground-truth factor.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentbench.reports.figures import colour_cycle, figure_png, panel_grid, plain_text
from latentbench.reports.plots_tradeoff import LINE_COLUMNS, line_label, per_run
from latentbench.reports.schema import format_beta

__all__ = [
    "RECONSTRUCTION_AXIS",
    "TRADEOFF_METRICS",
    "MIPanel",
    "disentanglement_vs_reconstruction",
    "mutual_information_heatmaps",
]

#: The scores drawn against reconstruction, those the results have, in this order.
TRADEOFF_METRICS = ("mig", "dci_disentanglement", "factorvae_score", "sap")
#: The reconstruction axis: the first of these the results have (nats per image, or a mean).
RECONSTRUCTION_AXIS = ("distortion", "recon_bce", "recon_mse")
_COLUMNS = 2


def disentanglement_vs_reconstruction(done: pd.DataFrame) -> tuple[bytes, str] | None:
    """One panel per score of :data:`TRADEOFF_METRICS`: the score against reconstruction error,
    a faint point per run and, per model line and β, the mean over seeds with ±1 sample
    standard deviation on both axes, labelled with its β.

    Args:
        done: Long-format rows of finished runs (``results.csv`` columns).

    Returns:
        ``(png, reconstruction metric)``, or ``None`` when no run has a reconstruction score
        and one of the scores.
    """
    present = set(done["metric"].dropna().astype(str))
    axis = next((m for m in RECONSTRUCTION_AXIS if m in present), None)
    scores = [m for m in TRADEOFF_METRICS if m in present]
    if axis is None or not scores:
        return None
    frame = per_run(done, [axis, *scores])
    frame = frame[frame[axis].map(lambda v: math.isfinite(float(v)))]
    if frame.empty:
        return None
    fig, axes = panel_grid(len(scores), _COLUMNS, row_height_in=3.6)
    keys = sorted(frame.groupby(list(LINE_COLUMNS), dropna=False).groups)
    colours = dict(zip(keys, colour_cycle(len(keys)), strict=True))
    for ax, score in zip(axes.flat, scores, strict=False):
        runs = frame.dropna(subset=[score])
        for key, line in runs.groupby(list(LINE_COLUMNS), dropna=False):
            colour = colours[key]
            ax.scatter(line[axis], line[score], color=colour, alpha=0.35, s=16)
            stats = line.groupby("beta", dropna=False)[[axis, score]].agg(["mean", "std"])
            ax.errorbar(stats[(axis, "mean")], stats[(score, "mean")],
                        xerr=stats[(axis, "std")].fillna(0), yerr=stats[(score, "std")].fillna(0),
                        fmt="o", markersize=5, capsize=3, color=colour, label=line_label(key))
            for beta, row in stats.iterrows():
                text = format_beta(beta)
                if text is not None:
                    ax.annotate(f"β={text}", (row[(axis, "mean")], row[(score, "mean")]),
                                textcoords="offset points", xytext=(5, 4), fontsize=8,
                                color=colour)
        ax.set_title(plain_text(score) + "  ↑", loc="left", fontsize=10, fontweight="bold")
        ax.set_xlabel(f"{axis} ↓ (reconstruction error)")
        ax.tick_params(labelsize=8)
        ax.grid(color="#d1d9e0", linewidth=0.6)
    for ax in axes.flat[len(scores):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=min(3, len(labels)),
               frameon=False, fontsize=9)
    return figure_png(fig), axis


@dataclass(frozen=True)
class MIPanel:
    """One run's factor-by-latent information, normalised per factor.

    Attributes:
        title: the configuration's label.
        matrix: ``[K, d]``: I(z_j; v_k) / H(v_k), the share of factor k's entropy latent j
            holds (0 … 1).
        factors: the K factor names, one per row.
    """

    title: str
    matrix: np.ndarray
    factors: tuple[str, ...]

    @classmethod
    def from_mig_details(cls, title: str, details: dict) -> MIPanel | None:
        """From ``mig``'s metrics.json details (``mi_matrix`` ``[d, K]`` and
        ``factor_entropy`` ``[K]`` in nats, ``factor_names``); ``None`` when they are absent or
        malformed (a metrics.json written by another version)."""
        try:
            mi = np.asarray(details["mi_matrix"], float)
            entropy = np.asarray(details["factor_entropy"], float)
            names = tuple(str(n) for n in details["factor_names"])
        except (KeyError, TypeError, ValueError):
            return None
        if mi.ndim != 2 or mi.shape[1] != len(entropy) or len(names) != len(entropy):
            return None
        return cls(title, (mi / np.maximum(entropy, 1e-12)).T, names)


def mutual_information_heatmaps(panels: list[MIPanel]) -> bytes | None:
    """A heatmap per run: factors down, latents across, the normalised mutual information as
    colour (one 0 … 1 scale for all) and, where at least 0.05, as a number."""
    if not panels:
        return None
    fig, axes = panel_grid(len(panels), _COLUMNS, row_height_in=2.4)
    image = None
    for ax, panel in zip(axes.flat, panels, strict=False):
        image = ax.imshow(panel.matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        rows, columns = panel.matrix.shape
        for k in range(rows):
            for j in range(columns):
                value = panel.matrix[k, j]
                if value >= 0.05:
                    ax.text(j, k, f"{value:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if value > 0.6 else "white")
        ax.set_xticks(range(columns), [f"z{j}" for j in range(columns)], fontsize=8)
        ax.set_yticks(range(rows), [plain_text(f) for f in panel.factors], fontsize=8)
        ax.set_title(plain_text(panel.title), loc="left", fontsize=10, fontweight="bold")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes, shrink=0.8, label="I(z; factor) / H(factor)")
    return figure_png(fig)
