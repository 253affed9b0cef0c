"""Information between a representation and ground-truth factors: the histogram discretisation,
the mutual-information matrix and the factor entropies of disentanglement_lib (Locatello et al.
2019, ``evaluation/metrics/utils.py``), and the two scores built on them: MIG (Chen et al. 2018)
and modularity (Ridgeway & Mozer 2018).

Every disentanglement metric takes the same two arrays, checked here once for all of them
(:func:`check_codes`, :func:`check_factors`, :func:`train_test_points`):

- ``codes``: float ``[N, d]``, the representation of N points (a VAE's posterior means);
- ``factors``: int ``[N, K]``, the points' ground-truth factors as *grid indices* ≥ 0 (dSprites:
  shape 0..2, scale 0..5, orientation 0..39, x 0..31, y 0..31).

Information is in nats throughout; MIG and modularity are ratios, so the base cancels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentbench.models.registry import check_int

#: Bins per code of the discretisation: disentanglement_lib's ``discretizer.num_bins`` in every
#: metric config of Locatello et al.'s study.
DEFAULT_BINS = 20


def check_codes(codes: object, name: str = "codes", *, min_rows: int = 2) -> np.ndarray:
    """``codes`` as a float64 ``[N, d]`` array, checked.

    Raises:
        ValueError: not 2-D, no column, fewer than ``min_rows`` rows, or NaN or infinite
            entries; the message names the argument.
    """
    array = np.asarray(codes)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [N, d] array, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.shape[1] < 1:
        raise ValueError(f"{name} needs at least one code (column), got shape {array.shape}")
    if len(array) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} points (rows), got {len(array)}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has NaN or infinite entries")
    return array


def check_factors(factors: object, n: int, name: str = "factors") -> np.ndarray:
    """``factors`` as an int64 ``[n, K]`` array of grid indices ≥ 0, checked.

    Only integer dtypes pass: a float array of factor *values* (dSprites' scale 0.5..1) is the
    wrong input, and rounding it silently would merge values.

    Raises:
        ValueError: not 2-D, no column, not ``n`` rows, not integers, or a negative entry.
    """
    array = np.asarray(factors)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [N, K] array of grid indices, got shape "
                         f"{array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer grid indices, got dtype {array.dtype}")
    if array.shape[1] < 1:
        raise ValueError(f"{name} needs at least one factor (column), got shape {array.shape}")
    if len(array) != n:
        raise ValueError(f"{name} has {len(array)} rows but the codes have {n}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} must be grid indices >= 0, got {array.min()}")
    return array.astype(np.int64, copy=False)


def check_varying(factors: np.ndarray, name: str = "factors") -> None:
    """Refuse a factor that takes one value only: nothing about it can be predicted, its
    entropy is 0 (MIG divides by it) and it has one class (the classifiers need two).

    Raises:
        ValueError: naming the first such column.
    """
    for k in range(factors.shape[1]):
        if (factors[:, k] == factors[0, k]).all():
            raise ValueError(f"{name} column {k} takes one value ({factors[0, k]}) on all "
                             f"{len(factors)} points: leave it out")


def train_test_points(codes: object, factors: object, test_codes: object | None,
                      test_factors: object | None, seed: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The checked training and test sets of the scores that train classifiers (DCI, SAP).

    Given a test set, ``(codes, factors)`` train and ``(test_codes, test_factors)`` test. Without
    one, the given points are split: a permutation from ``numpy.random.default_rng(seed)``, its
    first ``⌊2N/3⌋`` points train and the rest test (disentanglement_lib draws 10,000 training
    and 5,000 test points: the split of a pool of 15,000).

    Raises:
        ValueError: a test set given by half, inputs that fail :func:`check_codes` or
            :func:`check_factors`, a test set with another d or K, or fewer than 3 points to
            split.
    """
    if (test_codes is None) != (test_factors is None):
        raise ValueError("test_codes and test_factors must be given together or not at all")
    x = check_codes(codes)
    y = check_factors(factors, len(x))
    if test_codes is None:
        if len(x) < 3:
            raise ValueError(f"codes needs at least 3 points to split into training and test "
                             f"points, got {len(x)}")
        order = np.random.default_rng(seed).permutation(len(x))
        train, test = order[:2 * len(x) // 3], order[2 * len(x) // 3:]
        return x[train], y[train], x[test], y[test]
    x_test = check_codes(test_codes, "test_codes", min_rows=1)
    y_test = check_factors(test_factors, len(x_test), "test_factors")
    if x_test.shape[1] != x.shape[1]:
        raise ValueError(f"test_codes has {x_test.shape[1]} codes but codes has {x.shape[1]}")
    if y_test.shape[1] != y.shape[1]:
        raise ValueError(f"test_factors has {y_test.shape[1]} factors but factors has "
                         f"{y.shape[1]}")
    return x, y, x_test, y_test


def _frozen(array: np.ndarray) -> np.ndarray:
    """``array`` made read-only, so that a frozen result cannot be changed through it."""
    array.flags.writeable = False
    return array


def discretize(codes: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Each code cut into ``bins`` equal-width bins between its minimum and maximum:
    disentanglement_lib's ``_histogram_discretize``.

    Column j gets the edges of ``np.histogram(codes[:, j], bins)`` without the last, and
    ``np.digitize`` against them: bin indices 1..bins, the maximum falling into the last bin. A
    constant code lands in one bin (np.histogram widens its range to value ± 0.5).

    Args:
        codes: float ``[N, d]``.
        bins: bins per code, ≥ 1.

    Returns:
        int64 ``[N, d]`` bin indices in 1..bins.

    Raises:
        ValueError: ``codes`` that fail :func:`check_codes`; ``bins`` below 1.
    """
    x = check_codes(codes, min_rows=1)
    bins = check_int(bins, "bins", minimum=1)
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):  # d columns, each one vectorised pass
        edges = np.histogram_bin_edges(x[:, j], bins)
        out[:, j] = np.digitize(x[:, j], edges[:-1])
    return out


def _mi_matrix(binned: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """I(binned code j; factor k) in nats, ``[d, K]``."""
    # scikit-learn is imported where it is used, as elsewhere in metrics/: importing it costs
    # ~1.3 s, which every `import latentbench.metrics` would otherwise pay.
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(factors[:, k], binned[:, j])
                      for k in range(factors.shape[1])] for j in range(binned.shape[1])])


def mutual_information_matrix(codes: np.ndarray, factors: np.ndarray,
                              bins: int = DEFAULT_BINS) -> np.ndarray:
    r"""Plug-in mutual information between each discretised code and each factor, in nats:

    .. math::
        m_{jk} = \sum_{b, v} \hat p(b, v) \log \frac{\hat p(b, v)}{\hat p(b)\, \hat p(v)}

    with :math:`\hat p` the empirical frequencies of code j's bin b (:func:`discretize`) and
    factor k's value v: sklearn's ``mutual_info_score``, as disentanglement_lib's
    ``discrete_mutual_info``. The estimate is biased upwards, by about
    (bins − 1)(values − 1) / (2N) nats for an independent pair.

    Args:
        codes: float ``[N, d]``.
        factors: int ``[N, K]`` grid indices ≥ 0.
        bins: bins per code, ≥ 1.

    Returns:
        float64 ``[d, K]``, entries ≥ 0.

    Raises:
        ValueError: inputs that fail :func:`check_codes` or :func:`check_factors`; ``bins``
            below 1.
    """
    x = check_codes(codes, min_rows=1)
    y = check_factors(factors, len(x))
    return _mi_matrix(discretize(x, bins), y)


def factor_entropies(factors: np.ndarray) -> np.ndarray:
    r"""Empirical entropy of each factor, in nats: :math:`H(v_k) = -\sum_v \hat p(v) \log \hat
    p(v)`, which is disentanglement_lib's ``discrete_entropy`` (``mutual_info_score(y, y)``).

    Args:
        factors: int ``[N, K]`` grid indices ≥ 0.

    Returns:
        float64 ``[K]``, entries ≥ 0 (0 for a factor with one value).

    Raises:
        ValueError: ``factors`` that are not 2-D non-negative integers.
    """
    y = check_factors(factors, len(np.asarray(factors)))
    out = np.empty(y.shape[1])
    for k in range(y.shape[1]):
        p = np.unique(y[:, k], return_counts=True)[1] / len(y)
        out[k] = max(0.0, float(-(p * np.log(p)).sum()))  # not -0.0 for one value
    return out


@dataclass(frozen=True)
class MIGResult:
    """The mutual information gap and what it is made of.

    Attributes:
        score: MIG, the mean of ``per_factor``; in [0, 1], higher is more disentangled.
        per_factor: float64 ``[K]``, each factor's gap over its entropy.
        mi_matrix: float64 ``[d, K]``, I(code; factor) in nats (:func:`mutual_information_matrix`).
        entropies: float64 ``[K]``, H(factor) in nats.
        n_samples: the points N it was computed on.
        bins: bins per code.
    """

    score: float
    per_factor: np.ndarray
    mi_matrix: np.ndarray
    entropies: np.ndarray
    n_samples: int
    bins: int


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = DEFAULT_BINS) -> MIGResult:
    r"""Mutual information gap (Chen et al. 2018, "Isolating Sources of Disentanglement in
    VAEs"), as disentanglement_lib's ``mig.compute_mig`` defines it:

    .. math::
        \mathrm{MIG} = \frac1K \sum_{k=1}^K \frac{m_{(1)k} - m_{(2)k}}{H(v_k)}

    with :math:`m_{(1)k} \ge m_{(2)k}` the two largest of the column :math:`m_{\cdot k}` of
    :func:`mutual_information_matrix` (codes discretised into ``bins`` bins) and
    :math:`H(v_k)` the factor's empirical entropy (:func:`factor_entropies`). Chen et al.
    compute I(z_j; v_k) from the encoder's distribution; disentanglement_lib's discretised mean
    codes are what Locatello et al. (2019) report, and what this is.

    A code equal to a factor with at most ``bins + 1`` values (spacing 1 > bin width) puts each
    value into its own bin, and the gap reaches 1 minus the estimator's bias; a factor with more
    values is merged into fewer bins, so its gap stays below 1 even for the factor itself: 0.85
    for 32 values into 20 bins, 0.81 for 40. Two codes that carry the same factor give that
    factor a gap of 0.

    Args:
        codes: float ``[N, d]``, d ≥ 2 (the gap needs a second code).
        factors: int ``[N, K]`` grid indices ≥ 0; every factor takes two values or more.
        bins: bins per code, ≥ 1; disentanglement_lib uses 20.

    Returns:
        :class:`MIGResult`.

    Raises:
        ValueError: inputs that fail :func:`check_codes` or :func:`check_factors`, fewer than 2
            codes, a factor with one value (entropy 0), ``bins`` below 1.
    """
    x = check_codes(codes)
    y = check_factors(factors, len(x))
    if x.shape[1] < 2:
        raise ValueError(f"codes needs at least 2 codes for a gap between the best two, got "
                         f"{x.shape[1]}")
    check_varying(y)
    bins = check_int(bins, "bins", minimum=1)
    mi = _mi_matrix(discretize(x, bins), y)
    entropies = factor_entropies(y)
    top = np.sort(mi, axis=0)[::-1]
    per_factor = (top[0] - top[1]) / entropies
    return MIGResult(float(per_factor.mean()), _frozen(per_factor), _frozen(mi),
                     _frozen(entropies), len(x), bins)


def modularity_per_code(mi_matrix: np.ndarray) -> np.ndarray:
    r"""Each code's modularity :math:`1 - \delta_j` from a mutual-information matrix ``[d, K]``
    (K ≥ 2, entries ≥ 0), 0 for a code whose row is all 0: disentanglement_lib's
    ``modularity`` before its mean (:func:`modularity` documents δ)."""
    squared = np.asarray(mi_matrix, dtype=np.float64) ** 2
    best = squared.max(axis=1)
    informed = best > 0.0
    per_code = np.zeros(len(squared))
    per_code[informed] = 1.0 - ((squared.sum(axis=1) - best)[informed]
                                / (best[informed] * (squared.shape[1] - 1)))
    return per_code


@dataclass(frozen=True)
class ModularityResult:
    """Modularity and what it is made of.

    Attributes:
        score: modularity, the mean of ``per_code``; at most 1, higher is more modular.
        per_code: float64 ``[d]``, each code's modularity (0 for a code with no information).
        mi_matrix: float64 ``[d, K]``, I(code; factor) in nats.
        n_samples: the points N it was computed on.
        bins: bins per code.
    """

    score: float
    per_code: np.ndarray
    mi_matrix: np.ndarray
    n_samples: int
    bins: int


def modularity(codes: np.ndarray, factors: np.ndarray,
               bins: int = DEFAULT_BINS) -> ModularityResult:
    r"""Modularity (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings With the
    F-Statistic Loss"), as disentanglement_lib's ``modularity_explicitness.modularity``:

    .. math::
        \delta_j = \frac{\sum_{k \ne k^*} m_{jk}^2}{m_{jk^*}^2 \,(K - 1)}, \qquad
        \mathrm{modularity} = \frac1d \sum_{j=1}^d (1 - \delta_j)

    with :math:`m` the :func:`mutual_information_matrix` (``bins`` bins per code) and
    :math:`k^* = \arg\max_k m_{jk}` the factor code j knows most about. A code whose information
    is all about one factor scores 1, one that knows equally much about every factor 0; a code
    with no information at all (:math:`m_{jk^*} = 0`) scores 0 and still counts in the mean.
    Unlike MIG, duplicating a factor into two codes keeps modularity at 1.

    Args:
        codes: float ``[N, d]``.
        factors: int ``[N, K]`` grid indices ≥ 0, K ≥ 2.
        bins: bins per code, ≥ 1; disentanglement_lib uses 20.

    Returns:
        :class:`ModularityResult`.

    Raises:
        ValueError: inputs that fail :func:`check_codes` or :func:`check_factors`, fewer than 2
            factors (K − 1 = 0 in the denominator), ``bins`` below 1.
    """
    x = check_codes(codes)
    y = check_factors(factors, len(x))
    if y.shape[1] < 2:
        raise ValueError(f"factors needs at least 2 factors for modularity, got {y.shape[1]}")
    bins = check_int(bins, "bins", minimum=1)
    mi = _mi_matrix(discretize(x, bins), y)
    per_code = modularity_per_code(mi)
    return ModularityResult(float(per_code.mean()), _frozen(per_code), _frozen(mi), len(x), bins)
