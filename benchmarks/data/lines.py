"""``lines``: the ACAI synthetic lines benchmark (Berthelot et al. 2019, ``brain-research/acai``).

Each image is 32×32×1 and shows one 2-px anti-aliased line of length 15 px that starts at the
image centre and points at angle θ ~ U[0, 2π). The angle is the single ground-truth factor, so a
good interpolation between two lines is a line rotating from one angle to the other (see the
"Interpolation" section of METRICS.md).

Two pixel conventions meet here:

* :func:`draw_lines` renders in the ACAI convention, background −1 and ink +1, exactly as the
  reference ``lib/data.py`` ``draw_line`` does.
* The registered dataset stores ``(x + 1) / 2`` in [0, 1], like every other dataset of the suite.
  Metric code that compares with ACAI numbers maps back with :func:`lines_to_acai`.

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

from latentbench.benchmarks.data.registry import DATASETS, DataSpec, ImageData, generated_dataset

SIZE = 32
LINE_WIDTH = 2.0
N_CLASSES = 10
DEFAULT_N_TRAIN = 8192
DEFAULT_N_TEST = 2048
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


def lines_to_acai(images01: torch.Tensor) -> torch.Tensor:
    """Map stored ``lines`` images from [0, 1] back to the ACAI convention [−1, 1]: ``2x − 1``."""
    return images01 * 2.0 - 1.0


def angle_labels(theta: np.ndarray) -> np.ndarray:
    """ACAI class labels ``⌊10θ / 2π⌋`` as int64 in 0…9 (θ in [0, 2π)).

    The reference divides by ``2π − 1e-6`` to keep θ → 2π out of class 10; clipping does the
    same without shifting the bin edges.
    """
    bins = np.floor(theta * (N_CLASSES / (2.0 * math.pi))).astype(np.int64)
    return np.clip(bins, 0, N_CLASSES - 1)


def _split(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` lines from ``rng``: images in [0, 1], labels, and θ as a ``[n, 1]`` factor."""
    # random(n) draws doubles one after another, so the first k of n equal a draw of k: a
    # smaller n_train is a prefix of the default split.
    theta = rng.random(n) * (2.0 * math.pi)
    images = draw_lines(theta).add_(1.0).mul_(0.5)
    labels = torch.from_numpy(angle_labels(theta))
    factors = torch.from_numpy(theta.astype(np.float32)).unsqueeze(1)
    return images, labels, factors


@DATASETS.register("lines")
def load_lines(spec: DataSpec) -> ImageData:
    """The ACAI lines dataset, generated from ``spec.seed``.

    θ ~ U[0, 2π) from ``numpy.random.Generator``; train and test use two independent child
    streams of ``SeedSequence(spec.seed)``, so they do not overlap and one does not depend on
    the other's size.

    Args:
        spec: ``n_train`` / ``n_test`` (default 8192 / 2048) images are drawn; ``seed`` fixes
            them. ``root``, ``download`` and ``channels`` are ignored.

    Returns:
        ``ImageData`` with 1×32×32 images in [0, 1] (``(x + 1) / 2`` of :func:`draw_lines`,
        whose output is in [−1, 1]; use :func:`lines_to_acai` to map back), int64 labels
        ``⌊10θ/2π⌋`` in 0…9, and float32 factors ``[N, 1]`` = θ in radians named ``("angle",)``.
    """
    return generated_dataset(spec, "lines", _split, ("angle",), DEFAULT_N_TRAIN, DEFAULT_N_TEST)
