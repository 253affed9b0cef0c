"""The latent space of each configuration: posterior means of test images coloured by class.

Panels sit side by side so that an AE's unregularised codes can be set against a VAE's
prior-shaped ones. Codes wider than two are shown by their 2-d PCA projection, which the
harness stores in ``latents.npz``.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np

from latentbench.reports.figures import TAB10, colour_cycle, figure_png, panel_grid, plain_text

__all__ = ["LatentPanel", "class_legend", "class_palette", "finish_panel", "latent_figure",
           "latent_scatter", "scatter_by_class"]

_COLUMNS = 3


@dataclass(frozen=True)
class LatentPanel:
    """One configuration's codes.

    Attributes:
        title: The configuration and seed.
        points: ``[N, 2]`` coordinates (the code itself or its PCA projection).
        labels: ``[N]`` class labels, or ``None``.
        explained: PCA explained-variance ratios of the two axes, ``None`` for raw 2-d codes.
    """

    title: str
    points: np.ndarray
    labels: np.ndarray | None
    explained: tuple[float, float] | None = None


#: Characters of a bold 10 pt title per inch of panel width: titles are wrapped to this so that
#: long configuration labels stay inside their own panel instead of running into the next.
_TITLE_CHARS_PER_INCH = 11.5


def latent_scatter(panels: list[LatentPanel]) -> bytes | None:
    """One scatter per configuration, points coloured by class.

    Returns:
        PNG bytes, or ``None`` for no panels.
    """
    return figure_png(latent_figure(panels)) if panels else None


def class_palette(labels: list[np.ndarray | None]) -> dict[int, Any]:
    """One colour per class found in any of ``labels`` (``None``: a panel without labels)."""
    classes = sorted({int(c) for found in labels if found is not None for c in np.unique(found)})
    return dict(zip(classes, colour_cycle(len(classes), TAB10), strict=True))


def scatter_by_class(ax: Any, points: np.ndarray, labels: np.ndarray | None,
                     palette: dict[int, Any]) -> None:
    """The codes ``points`` ``[N, 2]`` on ``ax``, one colour per class of ``labels`` (grey
    without labels), each class labelled for the legend."""
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5, color="#59636e",
                   rasterized=True)
        return
    for label, colour in palette.items():
        chosen = labels == label
        if chosen.any():
            ax.scatter(points[chosen, 0], points[chosen, 1], s=3, alpha=0.6, color=colour,
                       label=str(label), rasterized=True)


def finish_panel(fig: Any, ax: Any, title: str) -> None:
    """A panel's title, wrapped to its width, and its small ticks and light grid."""
    width_in = ax.get_position().width * fig.get_figwidth()
    ax.set_title(textwrap.fill(plain_text(title), max(12, int(width_in * _TITLE_CHARS_PER_INCH)),
                               break_on_hyphens=False, break_long_words=False),
                 loc="left", fontsize=10, fontweight="bold")
    ax.tick_params(labelsize=8)
    ax.grid(color="#d1d9e0", linewidth=0.5)


def class_legend(fig: Any, ax: Any | None) -> None:
    """The class legend of ``ax`` (a panel with labelled codes) right of the figure."""
    if ax is not None:
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", title="class", frameon=False,
                   markerscale=4, fontsize=9)


def latent_figure(panels: list[LatentPanel]) -> Any:
    """The figure of :func:`latent_scatter` (a matplotlib Figure), for tests of its layout."""
    fig, axes = panel_grid(len(panels), _COLUMNS, row_height_in=3.9)
    palette = class_palette([p.labels for p in panels])
    legend_axis = None
    for ax, panel in zip(axes.flat, panels, strict=False):
        scatter_by_class(ax, panel.points, panel.labels, palette)
        if panel.labels is not None and legend_axis is None:
            legend_axis = ax
        if panel.explained is None:
            ax.set_xlabel("z1 (posterior mean)")
            ax.set_ylabel("z2 (posterior mean)")
        else:
            ax.set_xlabel(f"PC 1 ({panel.explained[0]:.0%} of variance)")
            ax.set_ylabel(f"PC 2 ({panel.explained[1]:.0%} of variance)")
        finish_panel(fig, ax, panel.title)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    class_legend(fig, legend_axis)
    return fig
