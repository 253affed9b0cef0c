"""Figures that compare the priors p(z) of VAEs: the rate–distortion plane coloured by prior,
and each prior's own density drawn over the codes of a 2-d latent.

A prior's density is drawn as the contours of its highest-density regions (HDRs): the region
``{z : p(z) ≥ t_m}`` that holds mass ``m`` of the prior, for ``m`` = 50 %, 90 % and 99 %. The
thresholds ``t_m`` are found on the harness's grid of log-densities (:func:`hdr_thresholds`).

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentbench.reports.figures import (
    colour_cycle,
    figure_png,
    new_figure,
    panel_grid,
    plain_text,
)
from latentbench.reports.plots_latent import (
    class_legend,
    class_palette,
    finish_panel,
    scatter_by_class,
)

__all__ = ["HDR_MASSES", "RUN_COLUMNS", "ContourPanel", "contour_figure", "hdr_thresholds",
           "prior_contours", "prior_rate_distortion", "rate_distortion_figure"]

#: The masses whose highest-density regions are drawn.
HDR_MASSES: tuple[float, ...] = (0.5, 0.9, 0.99)
#: The columns :func:`prior_rate_distortion` reads, one row per run.
RUN_COLUMNS: tuple[str, ...] = ("dataset", "configuration", "prior", "latent_dim", "tag",
                                "rate", "distortion")
#: Marker of each latent size, in increasing size order (repeats after the last).
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_COLUMNS = 3


def hdr_thresholds(z1: np.ndarray, z2: np.ndarray, log_prob: np.ndarray,
                   masses: Sequence[float] = HDR_MASSES) -> dict[float, float]:
    """The log-density thresholds of the highest-density regions of a density on a grid.

    The density ``p = exp(log_prob)`` is integrated with the midpoint rule: each grid point
    stands for a cell of width ``Δz1 × Δz2`` (:func:`numpy.gradient` of the axes, so a grid
    need not be evenly spaced). The values are sorted from the highest down and their masses
    accumulated; the threshold of mass ``m`` is the density at which the accumulated mass first
    reaches ``m``, so ``{p ≥ t_m}`` holds (just over) ``m`` of the mass.

    The mass is that of the prior, not of the grid: it is divided by the grid's total only where
    that exceeds 1 (the midpoint rule's error on a normalised density). A grid that holds less
    than ``m`` of the mass (too small for the prior) has no threshold for ``m``: a contour that
    would be drawn at the grid's edge is left out rather than drawn wrongly.

    Args:
        z1: ``[G1]`` increasing coordinates of the first latent.
        z2: ``[G2]`` increasing coordinates of the second latent.
        log_prob: ``[G2, G1]`` log-densities, ``log_prob[i, j] = log p(z1[j], z2[i])``;
            non-finite values count as zero density.
        masses: the masses wanted, each in (0, 1).

    Returns:
        ``mass → log-density threshold`` for the masses the grid holds.

    Raises:
        ValueError: axes that are not increasing 1-d arrays of two or more points, or a
            ``log_prob`` of another shape.
    """
    z1, z2 = np.asarray(z1, float), np.asarray(z2, float)
    log_prob = np.asarray(log_prob, float)
    for axis in (z1, z2):
        if axis.ndim != 1 or axis.size < 2 or not np.all(np.isfinite(axis)) \
                or not np.all(np.diff(axis) > 0):
            raise ValueError("grid axes must be increasing 1-d arrays of two or more points")
    if log_prob.shape != (z2.size, z1.size):
        raise ValueError(f"log_prob has shape {log_prob.shape}, the grid {(z2.size, z1.size)}")
    finite = np.where(np.isfinite(log_prob), log_prob, -np.inf)
    density = np.exp(finite)
    cell = np.outer(np.gradient(z2), np.gradient(z1))
    flat_density, flat_mass = density.ravel(), (density * cell).ravel()
    order = np.argsort(-flat_density, kind="stable")
    cumulative = np.cumsum(flat_mass[order])
    total = float(cumulative[-1]) if cumulative.size else 0.0
    if total <= 0 or not math.isfinite(total):
        return {}
    cumulative = cumulative / max(total, 1.0)
    thresholds: dict[float, float] = {}
    for mass in masses:
        if not 0 < mass < 1:
            raise ValueError(f"a mass must be in (0, 1), got {mass}")
        index = int(np.searchsorted(cumulative, mass, side="left"))
        if index >= cumulative.size:  # the grid holds less than this mass
            continue
        thresholds[float(mass)] = float(finite.ravel()[order[index]])
    return thresholds


# --- the rate–distortion plane ---------------------------------------------------------------


def prior_rate_distortion(runs: pd.DataFrame) -> bytes | None:
    """Distortion against rate, one colour per prior: every run a faint point, each
    configuration's mean over seeds a bold marker (its shape the latent size) with ±1 sample
    standard deviation over seeds as error bars on both axes (none for a single seed).

    Args:
        runs: one row per finished run with :data:`RUN_COLUMNS`: ``configuration`` (its label),
            ``prior`` (the prior's label), ``latent_dim``, ``tag`` (a short text written beside
            the mean marker, ``""`` for none), ``rate`` and ``distortion`` (nats per image).
            A dataset gets a panel of its own.

    Returns:
        PNG bytes, or ``None`` when no run has a finite rate and distortion.
    """
    fig = rate_distortion_figure(runs)
    return None if fig is None else figure_png(fig)


def rate_distortion_figure(runs: pd.DataFrame) -> Any:
    """The figure of :func:`prior_rate_distortion` (a matplotlib Figure, or ``None``)."""
    from matplotlib.lines import Line2D

    if runs.empty or not {"rate", "distortion"} <= set(runs.columns):
        return None
    frame = runs.copy()
    for column in ("rate", "distortion"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame = frame[np.isfinite(frame["rate"]) & np.isfinite(frame["distortion"])]
    if frame.empty:
        return None
    frame["latent_dim"] = frame["latent_dim"].map(lambda v: "–" if pd.isna(v) else str(v))
    priors = list(dict.fromkeys(frame["prior"].astype(str)))
    colours = dict(zip(priors, colour_cycle(len(priors)), strict=True))
    sizes = sorted(set(frame["latent_dim"]),
                   key=lambda v: (0, int(v), "") if v.isdigit() else (1, 0, v))
    markers = {size: _MARKERS[i % len(_MARKERS)] for i, size in enumerate(sizes)}
    datasets = list(dict.fromkeys(frame["dataset"].astype(str)))

    columns = min(2, len(datasets))
    rows = math.ceil(len(datasets) / columns)
    fig = new_figure(rows * 4.8 + 0.6, width_px=900 if columns == 1 else 1180)
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        panel = frame[frame["dataset"].astype(str) == dataset]
        for _, points in panel.groupby("configuration", sort=False):
            prior, size = str(points["prior"].iloc[0]), str(points["latent_dim"].iloc[0])
            colour, marker = colours[prior], markers[size]
            ax.scatter(points["rate"], points["distortion"], color=colour, marker=marker,
                       alpha=0.3, s=16, linewidths=0)
            n = len(points)
            mean_rate, mean_distortion = points["rate"].mean(), points["distortion"].mean()
            spread = {"xerr": points["rate"].std(ddof=1),
                      "yerr": points["distortion"].std(ddof=1)} if n > 1 else {}
            ax.errorbar(mean_rate, mean_distortion, fmt=marker, color=colour, markersize=8,
                        markeredgecolor="#1f2328", markeredgewidth=0.8, capsize=3,
                        elinewidth=1.2, zorder=3, **spread)
            tag = str(points["tag"].iloc[0]) if "tag" in points else ""
            if tag:
                ax.annotate(plain_text(tag), (mean_rate, mean_distortion), fontsize=8,
                            textcoords="offset points", xytext=(6, 5), color=colour)
        title = "Rate–distortion plane by prior"
        if len(datasets) > 1:
            title += f" ({plain_text(dataset)})"
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
        ax.set_xlabel("rate: KL(q(z|x) ‖ p(z)) [nats/image]")
        ax.set_ylabel("distortion: −log p(x|z) [nats/image]")
        ax.grid(color="#d1d9e0", linewidth=0.6)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(datasets):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colours[p], marker="o", linestyle="", markersize=7,
                      label=f"prior: {plain_text(p)}") for p in priors]
    if len(sizes) > 1:
        handles += [Line2D([], [], color="#59636e", marker=markers[s], linestyle="",
                           markersize=7, label=f"z={s}") for s in sizes]
    fig.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=9)
    return fig


# --- the prior's density over the codes ------------------------------------------------------


@dataclass(frozen=True)
class ContourPanel:
    """One configuration's 2-d codes and its prior's log-density on a grid.

    Attributes:
        title: The configuration, seed and prior.
        z1: ``[G1]`` grid coordinates of the first latent.
        z2: ``[G2]`` grid coordinates of the second latent.
        log_prob: ``[G2, G1]`` log-densities (``log_prob[i, j]`` at ``(z1[j], z2[i])``).
        points: ``[N, 2]`` posterior means of test images, or ``None`` when not saved.
        labels: ``[N]`` class labels, or ``None``.
    """

    title: str
    z1: np.ndarray
    z2: np.ndarray
    log_prob: np.ndarray
    points: np.ndarray | None = None
    labels: np.ndarray | None = None

    def thresholds(self, masses: Sequence[float] = HDR_MASSES) -> dict[float, float]:
        """:func:`hdr_thresholds` of this panel's grid."""
        return hdr_thresholds(self.z1, self.z2, self.log_prob, masses)


def _mass_text(mass: float) -> str:
    return f"{100 * mass:g} %"


def prior_contours(panels: list[ContourPanel],
                   masses: Sequence[float] = HDR_MASSES) -> bytes | None:
    """One panel per configuration: its codes coloured by class under the contours of its
    prior's highest-density regions, each labelled with the mass it encloses.

    Returns:
        PNG bytes, or ``None`` for no panels.
    """
    return figure_png(contour_figure(panels, masses)) if panels else None


def contour_figure(panels: list[ContourPanel], masses: Sequence[float] = HDR_MASSES) -> Any:
    """The figure of :func:`prior_contours` (a matplotlib Figure), for tests of what it draws."""
    fig, axes = panel_grid(len(panels), _COLUMNS, row_height_in=3.9)
    palette = class_palette([p.labels for p in panels if p.points is not None])
    legend_axis = None
    for ax, panel in zip(axes.flat, panels, strict=False):
        if panel.points is not None and len(panel.points):
            scatter_by_class(ax, panel.points, panel.labels, palette)
            if panel.labels is not None and legend_axis is None:
                legend_axis = ax
        thresholds = panel.thresholds(masses)
        # contour wants increasing levels: the widest region (largest mass) has the lowest.
        levels = sorted({value: mass for mass, value in thresholds.items()}.items())
        if levels:
            finite = np.asarray(panel.log_prob, float)
            floor = float(np.min(finite[np.isfinite(finite)])) - 100.0
            finite = np.where(np.isfinite(finite), finite, floor)
            drawn = ax.contour(panel.z1, panel.z2, finite, levels=[v for v, _ in levels],
                               colors="#1f2328", linewidths=1.1, linestyles="solid")
            ax.clabel(drawn, fmt={v: _mass_text(m) for v, m in levels}, fontsize=8,
                      inline=True)
        missing = [m for m in masses if m not in thresholds]
        if missing:
            ax.text(0.02, 0.02, "grid holds < " + _mass_text(min(missing)) + " of the mass",
                    transform=ax.transAxes, fontsize=7, color="#59636e")
        ax.set_xlabel("z1 (posterior mean)")
        ax.set_ylabel("z2 (posterior mean)")
        ax.set_aspect("equal", adjustable="datalim")  # a round prior looks round
        finish_panel(fig, ax, panel.title)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    class_legend(fig, legend_axis)
    return fig
