r"""The ACAI lines scores (Berthelot et al. 2019, "Understanding and Improving Interpolation in
Autoencoders via an Adversarial Regularizer"; reference ``brain-research/acai`` ``lib/eval.py``).

On the ``lines`` dataset every image is a line at one angle θ, so a good interpolation between
two lines is a line turning from one angle to the other at an even pace. Each decoded
interpolant is matched to the nearest of 10,000 true lines by cosine distance in pixel space:

- **Mean Distance**: the cosine distance to that nearest line, averaged over all interpolants
  (0: every interpolant is a real line);
- **Smoothness**: with :math:`\hat\theta_t` the angle of the nearest line, unwrapped along the
  path, :math:`\max_t |\hat\theta_{t+1} - \hat\theta_t| / |\hat\theta_{T-1} - \hat\theta_0|
  - 1/(T - 1)` (0: the angle moves at an even pace; :math:`1 - 1/(T - 1)`: it jumps at once).

Both are computed in the ACAI pixel convention [−1, 1] (background −1), where cosine distance
is what it is in the reference; the stored dataset is in [0, 1] and maps back with ``2x − 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from latentbench.metrics.context import EvalContext
from latentbench.metrics.interpolation import evaluation_paths, path_details, standard_error
from latentbench.metrics.line_images import draw_lines
from latentbench.metrics.registry import Score, register_metric

#: How many true lines the reference compares with, at θ = k·2π/10⁴.
REFERENCE_LINES = 10_000
#: Below this total change of angle (radians) a path's smoothness is undefined (the reference).
MIN_TOTAL_ANGLE = 1e-4
# Interpolants compared with the bank at once: bounds the float64 similarity block to ~20 MB.
_QUERY_CHUNK = 256


class LineBank(NamedTuple):
    """The true lines interpolants are matched against.

    Attributes:
        images: ``[K, H, W]`` (or ``[K, 1, H, W]``) in the ACAI convention [−1, 1].
        angles: ``[K]``, the angle of each line in radians.
    """

    images: Tensor | np.ndarray
    angles: Tensor | np.ndarray


def true_lines(size: int = 32, count: int = REFERENCE_LINES) -> LineBank:
    """The reference's bank: ``count`` lines at θ = linspace(0, 2π − 2π/count, count), drawn by
    :func:`~latentbench.metrics.line_images.draw_lines`, the renderer of the ``lines`` dataset.

    Build it once and pass it as ``reference=`` to score many sets of interpolations.

    Args:
        size: image side (the benchmark's is 32).
        count: number of lines (the reference's is 10,000).

    Returns:
        A :class:`LineBank` with float32 images ``[count, size, size]`` and float64 angles.
    """
    angles = np.linspace(0.0, 2 * np.pi - 2 * np.pi / count, count)
    return LineBank(draw_lines(angles, size=size)[:, 0], torch.from_numpy(angles))


def _as_float64(value: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _interpolation_images(interpolations: Tensor | np.ndarray) -> np.ndarray:
    """Validate and drop the channel axis: float64 ``[n, T, H, W]``."""
    x = _as_float64(interpolations)
    if x.ndim == 5:
        if x.shape[2] == 1:
            x = x[:, :, 0]
        elif x.shape[4] == 1:
            x = x[..., 0]
        else:
            raise ValueError(f"interpolations: expected one channel ([n, T, 1, H, W] or "
                             f"[n, T, H, W, 1]), got shape {x.shape}")
    if x.ndim != 4:
        raise ValueError(f"interpolations: expected [n_interp, n_steps, H, W] with an optional "
                         f"channel axis of size 1, got shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 2:
        raise ValueError(f"interpolations: need at least 1 interpolation of at least 2 steps, "
                         f"got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("interpolations: every pixel must be finite")
    return x


def _bank_arrays(reference: LineBank, image_shape: tuple[int, int]) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Validate the bank: unit-norm float64 rows ``[K, H·W]`` and angles ``[K]``."""
    images, angles = _as_float64(reference.images), _as_float64(reference.angles)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or images.shape[1:] != image_shape or images.shape[0] < 1:
        raise ValueError(f"reference: expected images [K, {image_shape[0]}, {image_shape[1]}] "
                         f"like the interpolations, got shape {images.shape}")
    if angles.shape != (images.shape[0],):
        raise ValueError(f"reference: expected one angle per line, {images.shape[0]}, got "
                         f"shape {angles.shape}")
    if not (np.all(np.isfinite(images)) and np.all(np.isfinite(angles))):
        raise ValueError("reference: images and angles must be finite")
    flat = images.reshape(len(images), -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("reference: a line image of all zeros has no cosine distance")
    return flat / norms, angles


def nearest_lines(images: np.ndarray, reference: LineBank) -> tuple[np.ndarray, np.ndarray]:
    r"""For every image, the cosine distance to the nearest line of ``reference`` and its angle.

    Cosine distance :math:`1 - \langle x, y \rangle / (\lVert x \rVert \lVert y \rVert)` of the
    raw pixels (scipy's ``cosine``, as the reference uses), float64, clipped to [0, 2]; the
    nearest line is the first one at the smallest distance. An image of all zeros (uniform grey
    in [−1, 1]) has no direction: it gets similarity 0, distance 1, where the reference gives
    NaN.

    Args:
        images: ``[N, H, W]`` in [−1, 1].
        reference: the true lines, ``[K, H, W]``.

    Returns:
        float64 distances ``[N]`` and angles ``[N]``.
    """
    bank, angles = _bank_arrays(reference, images.shape[1:])
    flat = images.reshape(len(images), -1)
    distance, nearest = np.empty(len(flat)), np.empty(len(flat), dtype=np.int64)
    for start in range(0, len(flat), _QUERY_CHUNK):
        query = flat[start:start + _QUERY_CHUNK]
        norms = np.linalg.norm(query, axis=1, keepdims=True)
        cosine = 1.0 - (query / np.where(norms > 0, norms, 1.0)) @ bank.T
        index = np.argmin(cosine, axis=1)
        nearest[start:start + len(query)] = index
        distance[start:start + len(query)] = cosine[np.arange(len(query)), index]
    return np.clip(distance, 0.0, 2.0), angles[nearest]


def angle_smoothness(angles: np.ndarray) -> np.ndarray:
    r"""ACAI smoothness of each interpolation from the angles of its lines.

    :math:`\hat\theta` is unwrapped along the steps (``np.unwrap``: a jump of more than π is
    taken as the short way round), then
    :math:`s = \max_t |\hat\theta_{t+1} - \hat\theta_t| / |\hat\theta_{T-1} - \hat\theta_0|
    - 1/(T - 1)`.

    Args:
        angles: ``[n, T]`` radians, ``T`` ≥ 2.

    Returns:
        float64 ``[n]``; NaN where :math:`|\hat\theta_{T-1} - \hat\theta_0|` <
        :data:`MIN_TOTAL_ANGLE` (the path ends where it began; the score is undefined).
    """
    theta = np.unwrap(np.asarray(angles, dtype=np.float64), axis=-1)
    steps = np.abs(np.diff(theta, axis=-1))
    total = np.abs(theta[:, -1] - theta[:, 0])
    defined = total >= MIN_TOTAL_ANGLE
    ratio = steps.max(axis=-1) / np.where(defined, total, 1.0)
    return np.where(defined, ratio - 1.0 / (theta.shape[1] - 1), np.nan)


@dataclass(frozen=True)
class LineScores:
    """Per-interpolant and per-interpolation ACAI quantities.

    Attributes:
        distance: ``[n, T]`` cosine distance of each interpolant to its nearest true line.
        angle: ``[n, T]`` that line's angle.
        smoothness: ``[n]`` :func:`angle_smoothness`, NaN where undefined.
    """

    distance: np.ndarray
    angle: np.ndarray
    smoothness: np.ndarray

    @property
    def mean_distance(self) -> float:
        return float(self.distance.mean())

    @property
    def mean_smoothness(self) -> float:
        """Mean over all interpolations with undefined ones counted as 0, as the reference
        does (its sum over the defined scores divided by the count of all); NaN if none is
        defined."""
        defined = ~np.isnan(self.smoothness)
        if not defined.any():
            return float("nan")
        return float(self.smoothness[defined].sum() / len(self.smoothness))


def line_scores(interpolations: Tensor | np.ndarray,
                reference: LineBank | None = None) -> LineScores:
    """The quantities behind :func:`acai_lines_metrics`; same arguments and errors."""
    images = _interpolation_images(interpolations)
    n, steps, height, width = images.shape
    if reference is None:
        if height != width:
            raise ValueError(f"interpolations: the default true lines are square, got "
                             f"{height}×{width}; pass reference=")
        reference = true_lines(height)
    distance, angle = nearest_lines(images.reshape(n * steps, height, width), reference)
    angle = angle.reshape(n, steps)
    return LineScores(distance.reshape(n, steps), angle, angle_smoothness(angle))


def acai_lines_metrics(interpolations: Tensor | np.ndarray, *,
                       reference: LineBank | None = None) -> dict[str, float]:
    r"""ACAI's Mean Distance and Smoothness of line interpolations (``lib/eval.py``
    ``line_eval``).

    For every interpolant :math:`x`, the nearest true line is
    :math:`\arg\min_k d_{\cos}(x, \ell_k)` over the bank (by default the reference's 10,000
    lines at :math:`\theta_k = 2\pi k / 10^4`, see :func:`true_lines`), with
    :math:`d_{\cos}(x, y) = 1 - \langle x, y \rangle / (\lVert x \rVert \lVert y \rVert)` on raw
    pixels. Then

    - ``mean_distance`` = mean over all interpolants of :math:`\min_k d_{\cos}(x, \ell_k)`;
    - ``smoothness`` = mean over interpolations of :func:`angle_smoothness`; an interpolation
      whose nearest-line angle ends where it began (change < 1e-4 rad) is undefined and counts
      as 0 in the mean, as in the reference; NaN if every one is undefined.

    Lower is better for both; a perfect interpolation scores ≈ 0 / ≈ 0, a pixel crossfade
    between 5π/7 and 3π/2 ≈ 7.2e-3 / 0.94.

    Args:
        interpolations: ``[n_interp, n_steps, H, W]``, or with a channel axis of size 1
            (``[n, T, 1, H, W]`` or ``[n, T, H, W, 1]``), endpoints included, in the ACAI
            pixel convention [−1, 1] (background −1) — map images in [0, 1] with ``2x − 1``
            first. Tensor or array; computed in float64.
        reference: the true lines to match against (build once with :func:`true_lines` when
            scoring repeatedly); ``None`` renders the default bank for ``H = W``.

    Returns:
        ``{"mean_distance": float, "smoothness": float}``.

    Raises:
        ValueError: a shape other than the above, fewer than 2 steps, non-finite pixels, a
            non-square image without ``reference``, or a ``reference`` whose images do not
            match the interpolations' ``H × W`` or whose angles do not match its images.
    """
    scores = line_scores(interpolations, reference)
    return {"mean_distance": scores.mean_distance, "smoothness": scores.mean_smoothness}


def acai_scores(ctx: EvalContext) -> dict[str, Score]:
    """Both ACAI scores from one decode of the protocol's paths, computed once per evaluation.

    The paths are :func:`~latentbench.metrics.interpolation.evaluation_paths` (``interp_pairs``
    × ``interp_steps`` between random test pairs, endpoints included, on ``interp_path``; ACAI
    uses 16 × 16 on a straight line), decoded to [0, 1] and mapped to [−1, 1] by ``2x − 1``.

    The paths are the independent units, so both standard errors are the std over paths / √paths:
    of each path's mean distance (whose mean is the Mean Distance, every path having the same
    steps), and of each path's smoothness with the undefined ones as 0 (as in the mean).
    """

    def compute() -> dict[str, Score]:
        paths = evaluation_paths(ctx)
        scores = line_scores(paths * 2 - 1)
        pairs, steps = scores.angle.shape
        details = {**path_details(ctx), "pairs": pairs, "steps": steps}
        undefined = int(np.isnan(scores.smoothness).sum())
        smoothness_error = (standard_error(np.nan_to_num(scores.smoothness, nan=0.0))
                            if undefined < pairs else None)
        return {
            "mean_distance": Score(
                scores.mean_distance, samples=pairs * steps,
                std_error=standard_error(scores.distance.mean(1)),
                details={**details, "std_error_method": "std over paths of their mean "
                                                        "distance (n − 1) / √paths"}),
            "smoothness": Score(
                scores.mean_smoothness, samples=pairs, std_error=smoothness_error,
                details={**details, "undefined_pairs_counted_as_0": undefined,
                         "std_error_method": "std over paths (undefined as 0, n − 1) / "
                                             "√paths"}),
        }

    return ctx.shared(("acai_scores",), compute)


@register_metric("acai_mean_distance", higher_is_better=False, family="interpolation",
                 needs={"encode"}, unit="cosine distance", datasets={"lines"})
def acai_mean_distance(ctx: EvalContext) -> Score:
    """ACAI Mean Distance: cosine distance of decoded interpolants to the nearest true line."""
    return acai_scores(ctx)["mean_distance"]


@register_metric("acai_smoothness", higher_is_better=False, family="interpolation",
                 needs={"encode"}, unit="ratio", datasets={"lines"})
def acai_smoothness(ctx: EvalContext) -> Score:
    """ACAI Smoothness: largest step of the nearest line's angle over its total change."""
    return acai_scores(ctx)["smoothness"]
