"""Memorisation: does the model reproduce its training set rather than the distribution?

- ``generalization_gap``: test minus train reconstruction MSE. With β too low a VAE "memorizes
  the training data (like a standard AE)": it reconstructs what it saw better than what it did
  not.
- ``data_copying[extractor]``: the C_T statistic of Meehan, Chaudhuri & Dasgupta (AISTATS 2020,
  "A Non-Parametric Test to Detect Data-Copying in Generative Models"). Generated samples that
  lie closer to their nearest training point than held-out test points do are copies; the
  comparison runs per cell of a k-means partition, so that copying in one region is not hidden
  by underfitting in another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from latentbench.metrics.context import EvalContext
from latentbench.metrics.feature_input import feature_matrix
from latentbench.metrics.registry import Score, register_metric
from latentbench.models.registry import check_int

#: Test points per k-means cell on average: Meehan et al. use 5 cells for 1,000 test points
#: (moons) and 50 for 10,000 (MNIST).
TEST_POINTS_PER_CELL = 200
#: A cell enters C_T only with more than this many generated samples (Meehan et al.'s τ = 20/m).
MIN_GENERATED_PER_CELL = 20


@torch.no_grad()
def _squared_errors(ctx: EvalContext, images: Tensor) -> Tensor:
    """Σ_pixels (x − x̂)² per image, x̂ decoded from the posterior mean: the test pass's
    ``squared_error``, for any image set. float64 ``[N]`` on the CPU."""
    errors = []
    for x in ctx.batches(images):
        posterior = ctx.model.encode(x)
        x_hat = torch.sigmoid(ctx.model.decode_posterior(posterior.mean, posterior))
        errors.append((x - x_hat).square().flatten(1).sum(1).double().cpu())
    return torch.cat(errors)


@register_metric("generalization_gap", target=0.0, family="reconstruction", needs={"encode"},
                 unit="per pixel")
def generalization_gap(ctx: EvalContext) -> Score:
    """Test minus train reconstruction MSE per pixel (posterior means); ≈ 0 without memorising.

    The test side is ``recon_mse``'s own pass. The train side is a random subset of the train
    split as large as the test split (all of it if smaller), drawn with the evaluation's seed:
    both means then average as many images, and the cost is one more test-sized pass rather
    than a pass over a train split that can be six times larger (MNIST). Large positive values
    mean the model reconstructs what it trained on better than new images; ideal 0, ranked by
    the distance to it. Standard error: of a difference of two independent means,
    √(var_test/n_test + var_train/n_train) of the per-image MSEs. Details: ``test_mse``,
    ``train_mse``, ``train_images``.
    """
    tp = ctx.test_pass
    count = min(len(ctx.train_images), len(tp.squared_error))
    subset = torch.randperm(len(ctx.train_images), generator=ctx.generator())[:count]
    train = _squared_errors(ctx, ctx.train_images[subset]) / tp.pixels
    test = tp.squared_error / tp.pixels
    standard_error = math.sqrt(float(test.var()) / len(test) + float(train.var()) / len(train))
    test_mse, train_mse = float(test.mean()), float(train.mean())
    return Score(test_mse - train_mse, samples=len(test), std_error=standard_error,
                 details={"test_mse": test_mse, "train_mse": train_mse, "train_images": count,
                          "std_error_method": "analytic: sqrt(var_test/n_test + "
                                              "var_train/n_train) of the per-image MSEs"})


@dataclass(frozen=True)
class DataCopyingTest:
    """The outcome of :func:`data_copying_test`.

    Attributes:
        c_t: the C_T statistic: ≪ 0 copying, ≈ 0 like held-out data, ≫ 0 underfitting.
        cell_z: Z_U of each cell, ``None`` where the cell is left out.
        cell_weights: P_n(π), the share of test points in each cell.
        cells_used: cells with test and training points and more than the minimum of generated
            samples.
        median_distance_ratio: median distance from generated samples to their nearest training
            point over that of test points, over the whole training set: the cruder view
            (< 1 copying, > 1 farther from the training data than new data is).
        null_std_error: the standard error of C_T under the null, √(Σ P_n(π)²) / Σ P_n(π) over
            the cells used: each Z_U is ≈ N(0, 1) there and the cells are disjoint.
    """

    c_t: float
    cell_z: list[float | None]
    cell_weights: list[float]
    cells_used: int
    median_distance_ratio: float
    null_std_error: float = math.nan


def _mann_whitney_z(generated: np.ndarray, test: np.ndarray) -> float:
    """Z-scored Mann–Whitney U of the generated against the test distances, as Meehan et al.
    score it: U counts the pairs where a generated sample is the farther one, standardised with
    its null mean mn/2 and variance mn(m + n + 1)/12 (no tie correction) and a continuity
    correction of 1/2 toward the 'less' alternative."""
    from scipy.stats import mannwhitneyu

    m, n = len(generated), len(test)
    # The statistic alone is used; the asymptotic method skips the exact null distribution.
    u = mannwhitneyu(generated, test, alternative="less", method="asymptotic").statistic
    return float((u - m * n / 2 + 0.5) / math.sqrt(m * n * (m + n + 1) / 12))


def _nearest_distances(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(queries)[0][:, 0]


def data_copying_test(train: np.ndarray | Tensor, test: np.ndarray | Tensor,
                      generated: np.ndarray | Tensor, n_cells: int | None = None, seed: int = 0,
                      min_generated: int = MIN_GENERATED_PER_CELL) -> DataCopyingTest:
    r"""The data-copying test of Meehan, Chaudhuri & Dasgupta (2020), with its C_T statistic.

    Partition the space into cells π by k-means on the training points T. In each cell, with
    :math:`L(x)` the distance from x to its nearest training point of that cell, compare the
    m generated distances :math:`L(Q_m(\pi))` with the n test distances :math:`L(P_n(\pi))` by
    the Mann–Whitney U statistic (the number of pairs in which the generated point is the
    farther), Z-scored under the null of equal distributions:

    .. math::
        Z_U(\pi) = \frac{U - mn/2 + 1/2}{\sqrt{mn(m + n + 1)/12}}, \qquad
        C_T = \frac{\sum_{\pi \in \Pi_\tau} P_n(\pi)\, Z_U(\pi)}
                   {\sum_{\pi \in \Pi_\tau} P_n(\pi)}

    where :math:`P_n(\pi)` is the share of test points in π and :math:`\Pi_\tau` the cells with
    more than ``min_generated`` generated samples (the paper's τ = 20/m). Under the null each
    :math:`Z_U` is ≈ N(0, 1), so |C_T| ≲ 2 for a model that generalises; C_T ≪ 0 means the
    samples sit closer to the training set than new data does (copying), C_T ≫ 0 farther
    (underfitting). These are the facts of the authors' ``data_copying_tests.py``: training
    nearest neighbours within the cell, U of the generated sample against the test sample,
    their Z-score and continuity correction.

    The inputs are the same space the test should be run in (for images, features of a
    network, as the paper embeds MNIST with an autoencoder). Each cell needs test points; the
    test is meaningful when they are many (the default gives 200 on average).

    Args:
        train: training points T ``[l, d]``.
        test: held-out points P_n ``[n, d]``, independent of the model.
        generated: model samples Q_m ``[m, d]``.
        n_cells: number of k-means cells; ``None``: one per 200 test points (at least 1), the
            ratio of the paper's experiments (5 cells for 1,000 test points, 50 for 10,000).
        seed: seeds k-means (one k-means++ initialisation: any fixed partition gives a valid
            test, so the restarts that would polish it are not worth their cost).
        min_generated: a cell enters C_T only with more generated samples than this.

    Returns:
        C_T with the per-cell scores and the median-distance ratio (:class:`DataCopyingTest`).

    Raises:
        ValueError: inputs not 2-D, non-finite or differing in d; fewer than 2 points in a
            set; ``n_cells`` not in [1, l]; no cell with test and training points and more than
            ``min_generated`` generated samples.
    """
    # scikit-learn and scipy.stats are imported where used: together they take ~1 s to import,
    # which every CLI call would otherwise pay.
    from sklearn.cluster import KMeans

    t = feature_matrix("train", train, torch.device("cpu"), min_rows=2).numpy()
    p = feature_matrix("test", test, torch.device("cpu"), min_rows=2).numpy()
    q = feature_matrix("generated", generated, torch.device("cpu"), min_rows=2).numpy()
    if not t.shape[1] == p.shape[1] == q.shape[1]:
        raise ValueError(f"train, test and generated differ in dimension: {t.shape[1]}, "
                         f"{p.shape[1]}, {q.shape[1]}")
    n_cells = max(1, len(p) // TEST_POINTS_PER_CELL) if n_cells is None else n_cells
    # At most one cell per training point.
    n_cells = check_int(n_cells, "n_cells", minimum=1, maximum=len(t))
    kmeans = KMeans(n_clusters=n_cells, n_init=1, random_state=seed).fit(t)
    t_cells, p_cells, q_cells = kmeans.labels_, kmeans.predict(p), kmeans.predict(q)

    cell_z = np.full(n_cells, np.nan)
    weights = np.bincount(p_cells, minlength=n_cells) / len(p)
    for cell in range(n_cells):
        t_in, p_in, q_in = t[t_cells == cell], p[p_cells == cell], q[q_cells == cell]
        if len(t_in) and len(p_in) and len(q_in) > min_generated:
            cell_z[cell] = _mann_whitney_z(_nearest_distances(t_in, q_in),
                                           _nearest_distances(t_in, p_in))
    used = ~np.isnan(cell_z)
    if not used.any():
        raise ValueError(f"no cell holds test points and more than {min_generated} generated "
                         f"samples; use fewer cells or more samples")
    c_t = float((weights[used] * cell_z[used]).sum() / weights[used].sum())
    null_std_error = float(np.sqrt((weights[used] ** 2).sum()) / weights[used].sum())
    ratio = np.median(_nearest_distances(t, q)) / np.median(_nearest_distances(t, p))
    return DataCopyingTest(c_t=c_t, cell_z=[None if np.isnan(z) else float(z) for z in cell_z],
                           cell_weights=weights.tolist(), cells_used=int(used.sum()),
                           median_distance_ratio=float(ratio), null_std_error=null_std_error)


def data_copying_ct(train: np.ndarray | Tensor, test: np.ndarray | Tensor,
                    generated: np.ndarray | Tensor, n_cells: int | None = None,
                    seed: int = 0) -> float:
    """The C_T statistic of :func:`data_copying_test` alone (≪ 0 copying, ≫ 0 underfitting)."""
    return data_copying_test(train, test, generated, n_cells, seed).c_t


@register_metric("data_copying", target=0.0, family="samples", needs={"sample"},
                 unit="z-score", feature_space=True)
def data_copying(ctx: EvalContext, extractor: str) -> Score:
    """Data copying C_T (Meehan et al. 2020): ≪ 0 samples copy training data, ≫ 0 underfit.

    Ideal 0, ranked by the distance to it. Samples' and test features' distances to the
    nearest training feature, compared by Mann–Whitney U in k-means cells of the training
    features. Standard error: analytic, under the null — C_T is a weighted mean of the cells'
    Z-scores, each ≈ N(0, 1) for a model that neither copies nor underfits and independent
    across disjoint cells, so SE = √(Σ w²) / Σ w with w the cells' test shares (1/√cells for
    equal cells). Away from the null a Z-score's spread differs from 1, but there C_T is many
    standard errors from 0. Details: ``cells``, ``cells_used``, per-cell ``cell_z`` and
    ``cell_weights``, the ``median_distance_ratio`` (generated→train over test→train), and the
    set sizes. See :func:`data_copying_test`.
    """
    train, test, samples = (ctx.feature_set(extractor, which).features
                            for which in ("train", "test", "samples"))
    result = data_copying_test(train, test, samples, seed=ctx.seed)
    return Score(result.c_t, samples=len(samples), std_error=result.null_std_error,
                 details={"std_error_method": "analytic under the null: sqrt(sum of squared "
                                              "cell weights) / sum of cell weights",
                          "cells": len(result.cell_z), "cells_used": result.cells_used,
                          "cell_z": result.cell_z, "cell_weights": result.cell_weights,
                          "median_distance_ratio": result.median_distance_ratio,
                          "test_samples": len(test), "train_samples": len(train)})
