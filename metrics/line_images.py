"""The ACAI line renderer (Berthelot et al. 2019, ``brain-research/acai`` ``lib/data.py``).

:func:`draw_lines` draws the images of the ``lines`` dataset and the bank of true lines that the
ACAI scores (:mod:`latentbench.metrics.acai`) match interpolants against. Both must come from
this one renderer: a second copy could drift from it and would score the data itself as off the
line manifold. It lives in ``metrics`` because ``metrics`` may not import ``benchmarks``, while
the dataset in ``benchmarks`` may import it from here.

Each image shows one 2-px anti-aliased line of length ``size / 2 − 1`` px (15 px at 32×32) that
starts at the image centre and points at angle θ, in the ACAI pixel convention: background −1,
ink +1, exactly as the reference ``draw_line`` does.

Coordinates: an image is indexed ``img[..., row, col]``. The reference's ``x`` is the column
(pointing right) and its ``y`` the row (pointing *down*). The end point of the line is
``(col, row) = (16 + 15 cos(−θ), 16 + 15 sin(−θ))`` with the centre at ``(16, 16)``, so θ = 0
points right and θ = π/2 points up (towards row 1): θ is counter-clockwise as seen on screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

#: Image side of the ``lines`` benchmark.
SIZE = 32
LINE_WIDTH = 2.0
# Images rendered per vectorised pass: bounds the float64 scratch buffer to ~16 MB.
_CHUNK = 2048


def draw_lines(
    angles: torch.Tensor | np.ndarray | Sequence[float], size: int = SIZE
) -> torch.Tensor:
    """Render ACAI lines, one image per angle, in the ACAI pixel convention [−1, 1].

    Port of the reference scanline renderer, vectorised over images. With centre
    ``c = size / 2`` and length ``r = c − 1`` the line runs from ``(c, c)`` to
    ``(c + r cos(−θ), c + r sin(−θ))`` in (column, row) coordinates. The renderer walks the
    integer positions ``a`` of the line's major axis (columns when the line is closer to
    horizontal, rows otherwise) from ``⌊a₀⌋`` to ``⌈a₁⌉ − 1``; at each it places a band of
    width ``w = 2`` along the minor axis starting at ``s(a) = b₀ − w/2 + (a − a₀ − ½)·Δb/Δa``
    and adds ``2·weight·coverage`` to each pixel the band touches, where coverage is the overlap
    of the band with the pixel's unit interval and ``weight`` is the fractional coverage of the
    first scan position (``⌈a₀⌉ − a₀``; 1 elsewhere). Finally ``x = clip(m − 1, −1, 1)``.

    Reference quirks kept on purpose, so scores compare with ACAI's: the sample point of scan
    position ``a`` is ``a − ½`` (not the pixel centre ``a + ½``); the last scan position always
    gets weight 1 because the reference's end-weight branch can never fire; and the centre
    pixel row/column is drawn only when the centre is the start of the scan. The ink therefore
    is ``≈ 2·15·max(|cos θ|, |sin θ|)`` pixels (21 at 45°, 30 along an axis), not constant.
    Arithmetic is float64 like the reference, cast to float32 at the end, so pixel values match
    the reference to float32 rounding.

    Args:
        angles: ``N`` angles θ in radians (any real value; only θ mod 2π matters), as a 1-D
            tensor, array or sequence, or a scalar for ``N = 1``.
        size: image side; the benchmark uses 32. Must be at least 4 (below 16 the reference
            writes out of bounds and fails; here such contributions are dropped).

    Returns:
        float32 ``[N, 1, size, size]``: background exactly −1, full ink +1, anti-aliased edges
        strictly between.

    Raises:
        ValueError: ``angles`` has more than one dimension or a non-finite value, or
            ``size < 4``.
    """
    if isinstance(angles, torch.Tensor):
        angles = angles.detach().cpu().numpy()
    theta = np.asarray(angles, dtype=np.float64)
    if theta.ndim > 1:
        raise ValueError(f"angles: expected a 1-D sequence, got shape {theta.shape}")
    theta = theta.reshape(-1)
    if not np.all(np.isfinite(theta)):
        raise ValueError("angles: every angle must be finite")
    if size < 4:
        raise ValueError(f"size: must be at least 4, got {size}")
    out = torch.empty((theta.size, 1, size, size), dtype=torch.float32)
    for start in range(0, theta.size, _CHUNK):
        chunk = _render(theta[start : start + _CHUNK], size)
        out[start : start + chunk.shape[0], 0] = torch.from_numpy(chunk)
    return out


def _render(theta: np.ndarray, size: int) -> np.ndarray:
    """The reference algorithm on a batch: float64 angles ``[n]`` → float32 ``[n, size, size]``."""
    n = theta.size
    w = LINE_WIDTH
    c = size * 0.5
    r = c - 1.0
    end_col = c + r * np.cos(-theta)
    end_row = c + r * np.sin(-theta)
    # Scan along columns when the line is closer to horizontal (the reference's "flip").
    flip = np.abs(c - end_row) < np.abs(c - end_col)
    a_end = np.where(flip, end_col, end_row)  # major (scan) axis
    b_end = np.where(flip, end_row, end_col)  # minor axis
    # Scan towards increasing major coordinate: swap the end points when the line goes back.
    swap = a_end < c
    a0 = np.where(swap, a_end, c)
    a1 = np.where(swap, c, a_end)
    b0 = np.where(swap, b_end, c) - w / 2
    b1 = np.where(swap, c, b_end) - w / 2
    da = a1 - a0
    ds = np.divide(b1 - b0, da, out=np.zeros_like(da), where=da != 0)

    first = np.floor(a0)  # int() in the reference: the coordinates are positive
    stop = np.ceil(a1)
    full_from, full_to = np.ceil(a0), np.floor(a1)
    n_scan = int((stop - first).max(initial=0))
    n_band = math.ceil(w) + 1  # pixels a band of width w can touch beyond its left one

    image_base = np.arange(n) * (size * size)
    flat_parts, weight_parts = [], []

    def add(minor: np.ndarray, major: np.ndarray, coverage: np.ndarray, keep: np.ndarray) -> None:
        row = np.where(flip, minor, major)
        col = np.where(flip, major, minor)
        keep = keep & (row >= 0) & (row < size) & (col >= 0) & (col < size)
        flat = image_base + row.astype(np.int64) * size + col.astype(np.int64)
        flat_parts.append(flat[keep])
        weight_parts.append(2.0 * coverage[keep])

    # One pass per scan position (≤ 16 for 32 px), vectorised over the batch.
    for k in range(n_scan):
        a = first + k
        valid = a < stop
        # The reference's `elif y > yi[1]` branch is unreachable (a ≤ ⌈a₁⌉ − 1 ≤ ⌊a₁⌋ when a₁
        # is fractional), so only the first scan position can have a weight below 1.
        weight = np.where(a < full_from, full_from - a0, np.where(a > full_to, a1 - full_to, 1.0))
        xs = b0 + (a - a0 - 0.5) * ds
        xe = xs + w
        lo, hi = np.ceil(xs), np.floor(xe)
        add(np.floor(xs), a, weight * (lo - xs), valid & (lo != xs))  # partial left pixel
        for j in range(n_band):  # fully covered pixels lo … hi − 1
            add(lo + j, a, weight, valid & (lo + j < hi))
        add(hi, a, weight * (xe - hi), valid & (hi != xe))  # partial right pixel

    # Pixels never receive two non-zero contributions, so the sum equals the reference's `+=`.
    ink = np.bincount(
        np.concatenate(flat_parts), np.concatenate(weight_parts), minlength=n * size * size
    )
    return np.clip(ink - 1.0, -1.0, 1.0).reshape(n, size, size).astype(np.float32)
