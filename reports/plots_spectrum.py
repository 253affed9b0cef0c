"""Power spectra of samples against the data, per decoder (Durall et al. 2020).

Up-convolutions leave a decoder's fingerprint at high spatial frequencies: transposed
convolutions typically add checkerboard energy, unpooling decoders miss it. Each panel is one
configuration; each decoder's sample spectrum is a line, the test images' spectrum the
reference in black.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from latentbench.reports.figures import colour_cycle, figure_png, panel_grid, plain_text

__all__ = ["spectra_by_decoder"]

_COLUMNS = 3


def spectra_by_decoder(
    panels: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], decoders: Sequence[str]
) -> bytes | None:
    """Azimuthally averaged power spectra, one panel per configuration, one line per decoder.

    Args:
        panels: Configuration label → decoder → a ``spectrum.json`` dict (``frequency``,
            ``samples``, ``data``).
        decoders: Decoder names, in legend order.

    Returns:
        PNG bytes, or ``None`` when there is no spectrum.
    """
    panels = {label: curves for label, curves in panels.items() if curves}
    if not panels:
        return None
    fig, axes = panel_grid(len(panels), _COLUMNS, row_height_in=3.4)
    colours = dict(zip(decoders, colour_cycle(len(decoders)), strict=True))
    for ax, (label, curves) in zip(axes.flat, panels.items(), strict=False):
        reference = next(iter(curves.values()))
        ax.plot(reference["frequency"], reference["data"], color="black", linewidth=2,
                label="test images")
        for decoder, curve in curves.items():
            # Zero power (the removed mean at r=0) has no place on a log axis.
            power = np.where(np.asarray(curve["samples"], float) > 0, curve["samples"], np.nan)
            ax.plot(curve["frequency"], power, color=colours.get(decoder), linewidth=1.4,
                    label=plain_text(f"samples: {decoder}"))
        ax.set_yscale("log")
        ax.set_title(plain_text(label), loc="left", fontsize=10, fontweight="bold")
        ax.set_xlabel("spatial frequency [cycles/pixel]")
        ax.set_ylabel("mean power [|FFT|²/pixel]")
        ax.tick_params(labelsize=8)
        ax.grid(color="#d1d9e0", linewidth=0.5)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    handles, labels = {}, {}
    for ax in axes.flat[: len(panels)]:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(text, handle)
            labels[text] = text
    fig.legend(list(handles.values()), list(labels), loc="outside upper left",
               ncols=min(5, len(handles)), frameon=False, fontsize=9)
    return figure_png(fig)
