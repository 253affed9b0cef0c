"""``shapes``: a dSprites-style generator of 64×64 sprites with known generative factors.

dSprites (Matthey et al. 2017) holds every combination of shape (square, ellipse, heart) × scale
(6 values in [0.5, 1]) × orientation (40) × posX (32) × posY (32). This module draws the same
factor grids at random and rasterises each sprite by an inside-test at the pixel centres, so the
images are binary like dSprites; the exact outlines are ours, not the dSprites bitmaps.

Geometry (pixels, image indexed ``img[..., row, col]``, pixel ``(r, c)`` centred at
``(c + ½, r + ½)``):

* A sprite at scale ``s`` fits in a disc of radius ``R = 14·s`` around its centre, whatever its
  orientation: square of side ``√2·R`` (19.8 px at ``s = 1``, about a third of the image),
  ellipse with semi-axes ``R`` and ``R/2``, and a heart of width ≈ ``1.8·R``.
* The centre is at column ``15 + 34·x`` and row ``15 + 34·y`` for ``x, y ∈ [0, 1]``: ``x``
  moves the sprite right and ``y`` moves it *down*; the 15-px margin keeps every sprite inside
  the frame (the outermost pixel ring stays empty).
* Orientation φ rotates the sprite counter-clockwise as seen on screen; φ = 0 shows the ellipse
  lying horizontally and the heart upright.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from latentbench.benchmarks.data.registry import DATASETS, DataSpec, ImageData, generated_dataset

SIZE = 64
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.arange(40) * (2.0 * math.pi / 40)  # [0, 2π) without repeating 0 as 2π
POSITIONS = np.linspace(0.0, 1.0, 32)
# Six fully saturated hues 60° apart, painted on black: red, yellow, green, cyan, blue, magenta.
COLOURS = np.array(
    [[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]], dtype=np.float32
)
COLOUR_NAMES = ("red", "yellow", "green", "cyan", "blue", "magenta")

RADIUS = 14.0  # radius in px of the disc holding a scale-1 sprite at any orientation
MARGIN = RADIUS + 1.0  # centre range [15, 49]: a scale-1 sprite covers at most px 1 … 62
DEFAULT_N_TRAIN = 8192
DEFAULT_N_TEST = 2048
# Sprites rasterised per pass: a few [chunk, 64, 64] float32 temporaries of 8 MB each.
_CHUNK = 512

# The classic heart (X² + Y² − 1)³ − X²Y³ ≤ 0 spans X ∈ [−1.14, 1.14], Y ∈ [−1, 1.24]; its
# smallest enclosing disc is centred at (0, 0.25) with radius 1.25 (tip and lobes touch it).
# Unit-disc coordinates (u, v) map to X = 1.26·u, Y = 1.26·v + 0.25 (1.26: a hair of slack).
_HEART_SCALE = 1.26
_HEART_SHIFT = 0.25

_GRID_SIZES = (len(SHAPE_NAMES), len(SCALES), len(ORIENTATIONS), len(POSITIONS), len(POSITIONS))
_FACTOR_NAMES = ("shape", "scale", "orientation", "x", "y")


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of points ``(u, v)`` in sprite frame (unit disc holds the sprite, v up)."""
    if shape == 0:  # square of half-side 1/√2: its corners touch the unit circle
        return np.maximum(np.abs(u), np.abs(v)) <= np.float32(1.0 / math.sqrt(2.0))
    if shape == 1:  # ellipse with semi-axes 1 (along u) and 1/2 (along v)
        return u * u + 4.0 * (v * v) <= 1.0
    x2 = np.square(_HEART_SCALE * u)
    y = _HEART_SCALE * v + _HEART_SHIFT
    r2 = x2 + y * y - 1.0
    return r2 * r2 * r2 <= x2 * y * y * y


def draw_sprites(
    shape: np.ndarray,
    scale: np.ndarray,
    orientation: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    colour: np.ndarray | None = None,
) -> torch.Tensor:
    """Rasterise sprites from factor values, vectorised over the batch.

    For each sprite with centre ``(c_x, c_y) = (15 + 34x, 15 + 34y)`` px and radius
    ``R = 14·scale``, every pixel centre ``p`` is taken into the sprite frame,
    ``(u, v) = Rot(−φ)·(p_col − c_x, −(p_row − c_y)) / R``, and the pixel is on iff ``(u, v)``
    passes the shape's inside test (square ``max(|u|, |v|) ≤ 1/√2``, ellipse
    ``u² + 4v² ≤ 1``, heart ``(X² + Y² − 1)³ − X²Y³ ≤ 0`` with ``X = 1.26u``,
    ``Y = 1.26v + 0.25``). Computed in float32 numpy, which is single-threaded and so does
    not stall when other processes hold the cores (torch's thread pool can).

    Args:
        shape: int ``[N]`` in 0…2 (square, ellipse, heart).
        scale: ``[N]`` sprite scale; the dSprites grid is ``SCALES`` (0.5 … 1). Values above 1
            may leave the frame.
        orientation: ``[N]`` rotation φ in radians, counter-clockwise on screen.
        x, y: ``[N]`` positions in [0, 1]; ``x`` moves right, ``y`` moves down.
        colour: optional int ``[N]`` in 0…5 indexing ``COLOURS``; given → 3 channels.

    Returns:
        float32 ``[N, 1, 64, 64]`` in {0, 1}, or ``[N, 3, 64, 64]`` with the sprite painted
        ``COLOURS[colour]`` on black.

    Raises:
        ValueError: arrays of different lengths, or a shape/colour index out of range.
    """
    columns = [np.asarray(a).reshape(-1) for a in (shape, scale, orientation, x, y)]
    if colour is not None:
        columns.append(np.asarray(colour).reshape(-1))
    n = columns[0].size
    if any(col.size != n for col in columns):
        raise ValueError(f"factor arrays differ in length: {[col.size for col in columns]}")
    shape_idx = columns[0].astype(np.int64)
    if n and (shape_idx.min() < 0 or shape_idx.max() >= len(SHAPE_NAMES)):
        raise ValueError(f"shape: indices must be in 0..{len(SHAPE_NAMES) - 1}")
    colour_idx = None
    if colour is not None:
        colour_idx = columns[5].astype(np.int64)
        if n and (colour_idx.min() < 0 or colour_idx.max() >= len(COLOURS)):
            raise ValueError(f"colour: indices must be in 0..{len(COLOURS) - 1}")
    out = np.empty((n, 1 if colour_idx is None else 3, SIZE, SIZE), dtype=np.float32)
    grid = np.arange(SIZE, dtype=np.float32) + np.float32(0.5)  # pixel centres
    scale_all, phi_all, x_all, y_all = (col.astype(np.float32) for col in columns[1:5])
    span = np.float32(SIZE - 2.0 * MARGIN)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        chunk_shapes = shape_idx[start:stop]
        mask = np.empty((stop - start, SIZE, SIZE), dtype=bool)
        for k in range(len(SHAPE_NAMES)):  # one inside-test per shape, on its members only
            members = np.flatnonzero(chunk_shapes == k)
            if not members.size:
                continue
            rows = start + members
            inv_r = (np.float32(1.0 / RADIUS) / scale_all[rows])[:, None, None]
            phi = phi_all[rows][:, None, None]
            cx = (np.float32(MARGIN) + span * x_all[rows])[:, None, None]
            cy = (np.float32(MARGIN) + span * y_all[rows])[:, None, None]
            # Offsets from the centre in radii, vertical axis pointing up (rows grow down).
            dx = (grid[None, None, :] - cx) * inv_r  # [m, 1, 64]
            dy = (cy - grid[None, :, None]) * inv_r  # [m, 64, 1]
            cos, sin = np.cos(phi), np.sin(phi)
            u = cos * dx + sin * dy  # Rot(−φ) undoes the sprite's rotation: [m, 64, 64]
            v = cos * dy - sin * dx
            mask[members] = _inside(k, u, v)
        if colour_idx is None:
            out[start:stop, 0] = mask
        else:
            paint = COLOURS[colour_idx[start:stop]]  # [B, 3]
            np.multiply(mask[:, None], paint[:, :, None, None], out=out[start:stop])
    return torch.from_numpy(out)


def sample_factor_indices(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rows of grid indices (shape, scale, orientation, x, y, colour), uniform.

    Each row takes six consecutive uniform doubles, so the first ``k`` rows of a draw of ``n``
    equal a draw of ``k`` (a smaller split is a prefix of the default one), and the colour column
    is drawn whether or not it is used, so 1- and 3-channel data share their geometry.
    """
    counts = np.array([*_GRID_SIZES, len(COLOURS)])
    idx = np.floor(rng.random((n, counts.size)) * counts).astype(np.int64)
    return np.minimum(idx, counts - 1)  # guard the (rounding) case u·k == k


def factor_values(idx: np.ndarray) -> np.ndarray:
    """Grid indices ``[n, 5 or 6]`` → factor values (shape index, scale, orientation in radians,
    x, y, colour index), float64."""
    columns = [idx[:, 0].astype(np.float64), SCALES[idx[:, 1]], ORIENTATIONS[idx[:, 2]],
               POSITIONS[idx[:, 3]], POSITIONS[idx[:, 4]]]
    if idx.shape[1] > 5:
        columns.append(idx[:, 5].astype(np.float64))
    return np.stack(columns, axis=1)


def render_indices(idx: np.ndarray) -> torch.Tensor:
    """The sprites of grid indices ``[n, 5]`` (white on black, 1 channel) or ``[n, 6]`` (the
    last column the colour: 3 channels)."""
    values = factor_values(idx)
    return draw_sprites(*values[:, :5].T, colour=idx[:, 5] if idx.shape[1] > 5 else None)


@dataclass(frozen=True)
class ShapesFactors:
    """The factor grid of ``shapes`` as a :class:`~latentbench.metrics.factors.FactorSampler`:
    dSprites' shape 3 × scale 6 × orientation 40 × x 32 × y 32 (737,280 sprites), times colour 6
    for the 3-channel variant. Points are drawn uniformly over the grid and rendered on demand,
    so the disentanglement metrics sample the whole grid without ever holding it."""

    coloured: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return (*_FACTOR_NAMES, "colour") if self.coloured else _FACTOR_NAMES

    @property
    def sizes(self) -> tuple[int, ...]:
        return (*_GRID_SIZES, len(COLOURS)) if self.coloured else _GRID_SIZES

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` uniform grid points, int64 ``[n, 5 or 6]`` (the draw of :func:`_split`)."""
        return sample_factor_indices(rng, n)[:, :len(self.sizes)]

    def render(self, indices: np.ndarray) -> torch.Tensor:
        """float32 ``[n, 1 or 3, 64, 64]`` sprites of grid points ``indices``.

        Raises:
            ValueError: ``indices`` not ``[n, K]`` integers inside the grid.
        """
        indices = np.asarray(indices)
        sizes = np.array(self.sizes)
        if (indices.ndim != 2 or indices.shape[1] != len(sizes)
                or not np.issubdtype(indices.dtype, np.integer)):
            raise ValueError(f"indices: expected integer [n, {len(sizes)}] grid indices, got "
                             f"{indices.dtype} {indices.shape}")
        if len(indices) and ((indices < 0).any() or (indices >= sizes).any()):
            raise ValueError(f"indices: each column k must be in 0..sizes[k] - 1, sizes "
                             f"{self.sizes}")
        return render_indices(indices)


def _split(
    rng: np.random.Generator, n: int, coloured: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` random sprites: images, shape labels, factor values ``[n, 5 or 6]``."""
    idx = ShapesFactors(coloured).sample(n, rng)
    labels = torch.from_numpy(idx[:, 0].copy())
    return render_indices(idx), labels, torch.from_numpy(factor_values(idx).astype(np.float32))


@DATASETS.register("shapes")
def load_shapes(spec: DataSpec) -> ImageData:
    """dSprites-style sprites with factors drawn uniformly from the dSprites grids.

    Train and test come from two independent child streams of ``SeedSequence(spec.seed)``.
    Factors are stored as *values*, not grid indices: shape index (0 square, 1 ellipse,
    2 heart), scale (0.5 … 1), orientation (radians, multiples of 2π/40), x and y (in [0, 1],
    multiples of 1/31) and, for colour data, the colour index 0…5 into ``COLOURS``.

    Args:
        spec: ``n_train`` / ``n_test`` (default 8192 / 2048) sprites are drawn; ``channels``
            None or 1 → binary white-on-black, 3 → RGB with a colour factor; ``seed`` fixes
            the draw. ``root`` and ``download`` are ignored.

    Returns:
        ``ImageData`` with float32 ``[N, C, 64, 64]`` images in {0, 1} (per channel), int64
        labels = shape index, float32 factors ``[N, 5]`` named
        ``("shape", "scale", "orientation", "x", "y")``, plus ``"colour"`` when ``C = 3``, and
        the :class:`ShapesFactors` sampler of the grid for the disentanglement metrics.
    """
    sampler = ShapesFactors(spec.channels == 3)
    data = generated_dataset(spec, "shapes", lambda rng, n: _split(rng, n, sampler.coloured),
                             sampler.names, DEFAULT_N_TRAIN, DEFAULT_N_TEST)
    return replace(data, factor_sampler=sampler)
