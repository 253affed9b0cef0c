"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020)
of a fake feature set against a real one, with the k-nearest-neighbour balls of each set as its
manifold estimate.

The definitions are those of ``clovaai/generative-evaluation-prdc`` (``prdc.compute_prdc``):
Euclidean distances, strict ``<``, the radius of a point the distance to its k-th nearest
neighbour in its own set excluding itself. That reference builds three full distance matrices
(N × N, M × M, N × M): at N = M = 50,000 each is 20 GB in float64. Here no matrix larger than a
block of ``chunk_size`` rows ever exists, and only per-point counts and flags survive a block,
so memory grows linearly in N + M.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from latentbench.metrics.feature_input import feature_matrix
from latentbench.models.registry import check_int

# Bytes of float64 distances in one block when ``chunk_size`` is not given. A block lives with
# boolean masks an eighth its size each, so ~0.35 GiB is in flight: well inside the suite's
# 4 GiB for 50,000 samples a set, and large enough (≈ 670 rows against 50,000) that the
# per-block overhead of the matrix product and the reductions stays negligible.
BLOCK_BYTES = 256 * 2**20


def _squared_distances(rows: torch.Tensor, rows_sq: torch.Tensor, cols: torch.Tensor,
                       cols_sq: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """‖a − b‖² for every pair of a row and a column point, as one matrix product, written into
    the first ``len(rows)`` rows of ``out``.

    ‖a‖² + ‖b‖² − 2 aᵀb costs one GEMM, against d passes for the differences; its round-off is
    a few ε·(‖a‖² + ‖b‖²), which is why callers centre the points first. Clamped at 0, where that
    round-off could make a tiny distance negative.
    """
    block = out[:len(rows)]
    torch.addmm(cols_sq.unsqueeze(0), rows, cols.T, alpha=-2.0, out=block)
    return block.add_(rows_sq.unsqueeze(1)).clamp_(min=0.0)


def _spread(points: torch.Tensor) -> float:
    """Root-mean-square deviation of the coordinates from their means."""
    # var's reduction allocates no [N, d] temporary, unlike (points − mean)²: at d = 2048 and
    # N = 50,000 that would be 0.8 GB twice over.
    return float(points.var(0, correction=0).mean().sqrt())


def _shift(mean: torch.Tensor, spread: float) -> torch.Tensor:
    """A point to subtract before the distance identity: ``mean`` rounded to a multiple of
    2^(⌊log₂ spread⌋ − 12).

    Centring keeps the norms, and so the identity's round-off, at the scale of the distances
    even for sets far from the origin. Rounding the centre to a coarse power-of-two grid keeps
    the subtraction exact on integer or other dyadic data, whose distances — and so its ties,
    which strict ``<`` decides — then come out exactly; the leftover offset is at most
    2⁻¹³ × spread, too small to cost precision.
    """
    if not (spread > 0.0 and math.isfinite(spread)):
        return torch.zeros_like(mean)  # a set of one repeated point: nothing to gain
    grid = 2.0 ** (math.floor(math.log2(spread)) - 12)
    return torch.round(mean / grid) * grid


def _kth_neighbour_sq(points: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Squared distance from each point to its k-th nearest neighbour in ``points``, itself
    excluded: the (k + 1)-th smallest entry of its row, the first being its own zero, as the
    reference takes it. A duplicate of a point counts as a neighbour at distance 0."""
    mean = points.mean(0)
    points = points - _shift(mean, _spread(points))
    norms = (points * points).sum(1)
    radii = torch.empty(len(points), dtype=points.dtype, device=points.device)
    buffer = _block_buffer(chunk, len(points), points)
    for start in range(0, len(points), chunk):
        stop = min(start + chunk, len(points))
        block = _squared_distances(points[start:stop], norms[start:stop], points, norms, buffer)
        # The identity leaves ~1e-15 instead of 0 on the diagonal; set the self-distance exactly,
        # so that it is the row's smallest entry whatever the round-off among duplicates.
        block.diagonal(offset=start).zero_()
        # topk then max, not kthvalue: ~10× faster on CPU for small k (measured 0.05 vs 0.4 s
        # on a 3,000 × 10,000 block), and the same value.
        smallest = torch.topk(block, k + 1, dim=1, largest=False, sorted=False).values
        radii[start:stop] = smallest.amax(1)
    return radii


def _default_chunk(n_cols: int) -> int:
    return max(1, BLOCK_BYTES // (8 * n_cols))


def _block_buffer(chunk: int, n_cols: int, like: torch.Tensor) -> torch.Tensor:
    """One block's memory, reused by every block of a pass. A fresh 256 MiB tensor per block
    is a fresh mmap whose pages the kernel faults in and zeroes: at 50,000 a set that was ~40%
    of the run, as system time."""
    return torch.empty(min(chunk, len(like)), n_cols, dtype=like.dtype, device=like.device)


def _column_counts(mask: torch.Tensor) -> torch.Tensor:
    """The number of True entries in each column of a boolean matrix.

    Summed in bytes, 255 rows at a time so that no byte overflows: a sum that stays in uint8 is
    vectorised, and ran ~30× faster than ``mask.sum(0)`` or a widening sum into int32 (1.8 vs
    58 ms on a 671 × 50,000 block, where the widening sum was a quarter of the cross pass).
    """
    rows = mask.view(torch.uint8)
    counts = torch.zeros(mask.shape[1], dtype=torch.int64, device=mask.device)
    for start in range(0, len(rows), 255):
        counts += rows[start:start + 255].sum(0, dtype=torch.uint8)
    return counts


def _checked_sets(real: object, fake: object, k: object, *, fake_radii: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The two feature matrices (on the real set's device) and ``k``, checked as :func:`prdc`
    documents: equal dimension, and more than ``k`` points in each set (in the real set only
    when no fake point's radius is needed, as for coverage)."""
    device = real.device if isinstance(real, torch.Tensor) else None
    x, y = feature_matrix("real", real, device), feature_matrix("fake", fake, device)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real and fake differ in feature dimension: {x.shape[1]} vs "
                         f"{y.shape[1]}")
    k = check_int(k, "k", minimum=1)
    if not fake_radii and len(x) <= k:
        raise ValueError(f"the real set needs more than k = {k} points, got {len(x)}")
    if fake_radii and min(len(x), len(y)) <= k:
        raise ValueError(f"each set needs more than k = {k} points for a k-th neighbour besides "
                         f"itself, got {len(x)} real and {len(y)} fake")
    return x, y, k


def prdc(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 5, *,
         chunk_size: int | None = None) -> dict[str, float]:
    r"""Precision, recall, density and coverage of ``fake`` against ``real``.

    With :math:`X` the N real and :math:`Y` the M fake features, and
    :math:`\mathrm{NND}_k(x)` the distance from :math:`x` to its k-th nearest neighbour in its own
    set, itself excluded:

    .. math::
        \text{precision} &= \tfrac1M \textstyle\sum_j
            \mathbb 1[\exists i\; \lVert Y_j - X_i\rVert < \mathrm{NND}_k(X_i)] \\
        \text{recall} &= \tfrac1N \textstyle\sum_i
            \mathbb 1[\exists j\; \lVert X_i - Y_j\rVert < \mathrm{NND}_k(Y_j)] \\
        \text{density} &= \tfrac1{kM} \textstyle\sum_j \sum_i
            \mathbb 1[\lVert Y_j - X_i\rVert < \mathrm{NND}_k(X_i)] \\
        \text{coverage} &= \tfrac1N \textstyle\sum_i
            \mathbb 1[\min_j \lVert X_i - Y_j\rVert < \mathrm{NND}_k(X_i)]

    exactly as ``prdc.compute_prdc`` of ``clovaai/generative-evaluation-prdc`` defines them
    (Euclidean, strict ``<``; Kynkäänniemi's own code uses ≤ and k = 3, which gives other
    numbers). Precision, recall and coverage lie in [0, 1]; density in [0, N/k] and is ≈ 1 when
    the two sets come from one distribution. ``fake = real`` gives 1 for precision, recall and
    coverage, and density exactly 1 when no two distances tie.

    Memory: distances are computed in float64 blocks of ``chunk_size`` rows against a whole set
    — three passes (real × real for the real radii, fake × fake, real × fake for the four
    scores) — and each block is reduced to per-point counts and flags before the next. Peak
    extra memory is about ``10 × chunk_size × max(N, M)`` bytes (the float64 block and a
    boolean mask) plus ``O((N + M) d)`` for centred float64 copies of the inputs. The default
    chunk keeps a block near 256 MiB, so 50,000 × 50,000 stays well under 1 GiB where the
    reference needs three 20 GB matrices. Time is that of the three matrix products and the
    reductions over their entries, ``O((N² + M² + NM) d)``.

    Float64 throughout, as the reference computes its distances (scikit-learn upcasts float32
    features): the scores are counts of strict comparisons, so the distances should be as exact
    as the reference's for the counts to agree. Float32 would move comparisons within ~1e-7
    relative of a radius for about a third less time at d = 64 (measured per 671 × 50,000
    block: the matrix product 49 vs 81 ms, the top-k 34 vs 47 ms, the comparisons alike).

    Args:
        real: real features, shape ``[N, d]``; NumPy array or tensor (a tensor's device is used).
        fake: fake features, shape ``[M, d]``.
        k: the neighbour whose distance is a point's radius; both sets need more than k points
            (the reference's ``argpartition`` needs k + 2).
        chunk_size: rows per distance block; ``None`` picks one for a ~256 MiB block. It changes
            memory and speed, never the result.

    Returns:
        ``{"precision", "recall", "density", "coverage"}`` → Python floats.

    Raises:
        ValueError: inputs that are not 2-D, differ in d or hold NaN or infinite entries; k
            below 1 or not below a set's size; ``chunk_size`` below 1.
    """
    x, y, k = _checked_sets(real, fake, k)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", minimum=1)

    real_radii = _kth_neighbour_sq(x, k, chunk_size or _default_chunk(len(x)))
    fake_radii = _kth_neighbour_sq(y, k, chunk_size or _default_chunk(len(y)))

    # One shift for both sets keeps cross distances; the midpoint of the means keeps both sets'
    # norms small when the sets lie far apart, on the finer of the two sets' grids.
    x_mean, y_mean = x.mean(0), y.mean(0)
    spreads = [s for s in (_spread(x), _spread(y)) if s > 0.0]
    centre = _shift(0.5 * (x_mean + y_mean), min(spreads, default=0.0))
    x, y = x - centre, y - centre
    x_norms, y_norms = (x * x).sum(1), (y * y).sum(1)

    # Squared distances against squared radii: the same comparisons as the reference's, since
    # squaring is monotone on distances ≥ 0, without a square root over N × M entries.
    in_real_balls = torch.zeros(len(y), dtype=torch.int64, device=x.device)  # per fake point
    near_fake = torch.zeros(len(x), dtype=torch.bool, device=x.device)  # recall, per real point
    covered = torch.zeros(len(x), dtype=torch.bool, device=x.device)  # coverage, per real point
    chunk = chunk_size or _default_chunk(len(y))
    buffer = _block_buffer(chunk, len(y), x)
    mask_buffer = torch.empty(buffer.shape, dtype=torch.bool, device=x.device)
    for start in range(0, len(x), chunk):
        stop = min(start + chunk, len(x))
        block = _squared_distances(x[start:stop], x_norms[start:stop], y, y_norms, buffer)
        # Y_j in the ball of X_i
        inside = torch.lt(block, real_radii[start:stop].unsqueeze(1), out=mask_buffer[:len(block)])
        in_real_balls += _column_counts(inside)
        # min_j ‖X_i − Y_j‖ < NND_k(X_i) ⟺ some Y_j lies inside X_i's ball.
        covered[start:stop] = inside.any(1)
        near_fake[start:stop] = torch.lt(block, fake_radii.unsqueeze(0), out=inside).any(1)

    return {
        "precision": float((in_real_balls > 0).double().mean()),
        "recall": float(near_fake.double().mean()),
        "density": float(in_real_balls.sum()) / (k * len(y)),
        "coverage": float(covered.double().mean()),
    }


#: Neighbours kept per real point for the bootstrap's radii, beyond k: a resample draws each
#: row a Poisson(1) number of times, so the k-th neighbour with multiplicity lies among the
#: first k + 40 distinct ones but with a probability below 1e-10 (P(Poisson(45) < 5)).
BOOTSTRAP_NEIGHBOUR_MARGIN = 40
# Entries of the [rounds, pairs] work arrays of the bootstrap (bool and int64: ~40 MiB).
_BOOTSTRAP_ENTRIES = 2**22


def _neighbour_lists(points: torch.Tensor, count: int, chunk: int) -> tuple[torch.Tensor,
                                                                            torch.Tensor]:
    """The ``count`` nearest other points of each point, nearest first: squared distances and
    indices ``[N, count]``; a point's own index is never among them (a duplicate's is)."""
    points = points - _shift(points.mean(0), _spread(points))
    norms = (points * points).sum(1)
    distances = torch.empty(len(points), count, dtype=points.dtype, device=points.device)
    indices = torch.empty(len(points), count, dtype=torch.int64, device=points.device)
    buffer = _block_buffer(chunk, len(points), points)
    for start in range(0, len(points), chunk):
        stop = min(start + chunk, len(points))
        block = _squared_distances(points[start:stop], norms[start:stop], points, norms, buffer)
        block.diagonal(offset=start).fill_(-1.0)  # itself first, whatever the ties
        nearest = torch.topk(block, count + 1, dim=1, largest=False, sorted=True)
        distances[start:stop] = nearest.values[:, 1:]
        indices[start:stop] = nearest.indices[:, 1:]
    return distances, indices


def _bootstrap_radii(distances: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor,
                     k: int) -> torch.Tensor:
    """Squared k-NN radius of every point in every resample: the distance to the neighbour at
    which the multiplicities of the other points, nearest first, reach k. ``[B, N]``."""
    radii = torch.empty(counts.shape, dtype=distances.dtype, device=distances.device)
    for b, weights in enumerate(counts):
        reached = weights[indices].cumsum(1) >= k
        # argmax finds the first True; a row that never reaches k (below 1e-10, see the
        # margin) takes its farthest kept neighbour.
        position = torch.where(reached.any(1), reached.int().argmax(1),
                               torch.full_like(reached[:, 0], len(reached[0]) - 1,
                                               dtype=torch.int64))
        radii[b] = distances.gather(1, position.unsqueeze(1)).squeeze(1)
    return radii


def prdc_bootstrap(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int,
                   counts: np.ndarray | torch.Tensor, *,
                   chunk_size: int | None = None) -> dict[str, np.ndarray]:
    r"""Precision, recall, density and coverage of ``fake`` against bootstrap resamples of
    ``real``, for their bootstrap standard errors over the real (test) set.

    Resample b holds real point i ``counts[b, i]`` times and the fake set as it is. Each copy
    is a point of its resample, weighted by its multiplicity in the means and counts of
    :func:`prdc`, and its radius is its k-th nearest neighbour *among the other points'
    copies*: a copy of itself is not a neighbour. Counted as the reference would count the
    resampled array, a point drawn twice would have its twin at distance 0 as a neighbour,
    shrinking the radii of the ~26% of points drawn more than once and biasing precision,
    density and coverage downward in every resample. With ``counts`` all ones the values are
    :func:`prdc`'s exactly.

    Calibration, the bootstrap standard error over the actual spread across 40 independent
    Gaussian test sets (whose own s.d. is uncertain by ~11%): precision 0.8–1.0, recall
    0.9–1.0, density 1.0–1.35, coverage 1.1–1.6 (N = 500, d = 16, k = 5 and N = 1,000,
    d = 64, k = 3). Keeping the set's own radii instead would understate coverage's (0.6–0.8)
    and density's (0.6) spread; a k-NN radius is not a smooth statistic, and the resampled one
    errs on the safe side.

    Cost: one pass over the real × real distances (the nearest k + 40 neighbours of each point
    are kept), one over the fake × fake ones (the fake radii), one over real × fake, whose
    blocks are reduced to the pairs that lie inside a real ball in some resample before the B
    resamples are counted on them. At N = M = 1,000 and B = 30 that is a fraction of a second;
    memory stays linear in N + M beyond one block, as :func:`prdc`'s.

    Args:
        real, fake: features ``[N, d]`` and ``[M, d]``, as for :func:`prdc`.
        k: the neighbour whose distance is a point's radius.
        counts: multiplicities ``[B, N]`` of the real rows, each row summing to N
            (:func:`~latentbench.metrics.frechet.bootstrap_counts`).
        chunk_size: rows per distance block; ``None``: as :func:`prdc`.

    Returns:
        ``{"precision", "recall", "density", "coverage"}`` → float64 ``[B]``.

    Raises:
        ValueError: as :func:`prdc`; ``counts`` not ``[B, N]`` of non-negative integers.
    """
    x, y, k = _checked_sets(real, fake, k)
    counts = torch.as_tensor(np.asarray(counts), dtype=torch.int64, device=x.device)
    if counts.ndim != 2 or counts.shape[1] != len(x) or bool((counts < 0).any()):
        raise ValueError(f"counts must be [B, {len(x)}] non-negative integers, got shape "
                         f"{tuple(counts.shape)}")
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    n, m, rounds = len(x), len(y), len(counts)

    kept = min(n - 1, k + BOOTSTRAP_NEIGHBOUR_MARGIN)
    distances, indices = _neighbour_lists(x, kept, chunk_size or _default_chunk(n))
    radii = _bootstrap_radii(distances, indices, counts, k)  # [B, N]
    widest = radii.amax(0)
    fake_radii = _kth_neighbour_sq(y, k, chunk_size or _default_chunk(m))

    x_mean, y_mean = x.mean(0), y.mean(0)
    spreads = [s for s in (_spread(x), _spread(y)) if s > 0.0]
    centre = _shift(0.5 * (x_mean + y_mean), min(spreads, default=0.0))
    x, y = x - centre, y - centre
    x_norms, y_norms = (x * x).sum(1), (y * y).sum(1)

    in_balls = torch.zeros(rounds, m, dtype=torch.int64, device=x.device)  # density, precision
    covered = torch.zeros(rounds, n, dtype=torch.int64, device=x.device)  # coverage
    near_fake = torch.zeros(n, dtype=torch.bool, device=x.device)  # recall (fake radii fixed)
    chunk = chunk_size or _default_chunk(m)
    buffer = _block_buffer(chunk, m, x)
    pairs_at_once = max(1, _BOOTSTRAP_ENTRIES // rounds)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = _squared_distances(x[start:stop], x_norms[start:stop], y, y_norms, buffer)
        near_fake[start:stop] = (block < fake_radii.unsqueeze(0)).any(1)
        rows, cols = torch.nonzero(block < widest[start:stop].unsqueeze(1), as_tuple=True)
        gaps = block[rows, cols]
        rows += start
        for first in range(0, len(rows), pairs_at_once):
            i, j = rows[first:first + pairs_at_once], cols[first:first + pairs_at_once]
            inside = gaps[first:first + pairs_at_once] < radii[:, i]  # [B, pairs]
            in_balls.index_add_(1, j, counts[:, i] * inside)
            covered.index_add_(1, i, inside.long())

    weights = counts.double()
    return {
        "precision": (in_balls > 0).double().mean(1).cpu().numpy(),
        "recall": (weights @ near_fake.double() / n).cpu().numpy(),
        "density": (in_balls.sum(1).double() / (k * m)).cpu().numpy(),
        "coverage": ((weights * (covered > 0)).sum(1) / n).cpu().numpy(),
    }


def coverage_bootstrap(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int,
                       counts: np.ndarray | torch.Tensor, *,
                       chunk_size: int | None = None) -> np.ndarray:
    """The coverage of :func:`prdc` over bootstrap resamples of the **fake** set, the real set
    fixed: resample b holds fake point j ``counts[b, j]`` times, and a real point is covered
    when a drawn fake point lies inside its ball. Coverage reads no fake radius, so copies need
    no care here. float64 ``[B]``; with ``counts`` all ones, :func:`prdc`'s coverage."""
    x, y, k = _checked_sets(real, fake, k, fake_radii=False)
    counts = torch.as_tensor(np.asarray(counts), dtype=torch.int64, device=x.device)
    if counts.ndim != 2 or counts.shape[1] != len(y) or bool((counts < 0).any()):
        raise ValueError(f"counts must be [B, {len(y)}] non-negative integers, got shape "
                         f"{tuple(counts.shape)}")
    n, m = len(x), len(y)
    chunk = chunk_size or _default_chunk(max(n, m))
    radii = _kth_neighbour_sq(x, k, chunk)
    spreads = [s for s in (_spread(x), _spread(y)) if s > 0.0]
    centre = _shift(0.5 * (x.mean(0) + y.mean(0)), min(spreads, default=0.0))
    x, y = x - centre, y - centre
    x_norms, y_norms = (x * x).sum(1), (y * y).sum(1)
    covered = torch.zeros(len(counts), n, dtype=torch.int64, device=x.device)
    buffer = _block_buffer(chunk, m, x)
    pairs_at_once = max(1, _BOOTSTRAP_ENTRIES // len(counts))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = _squared_distances(x[start:stop], x_norms[start:stop], y, y_norms, buffer)
        rows, cols = torch.nonzero(block < radii[start:stop].unsqueeze(1), as_tuple=True)
        rows += start
        for first in range(0, len(rows), pairs_at_once):
            i, j = rows[first:first + pairs_at_once], cols[first:first + pairs_at_once]
            covered.index_add_(1, i, counts[:, j])
    return (covered > 0).double().mean(1).cpu().numpy()
