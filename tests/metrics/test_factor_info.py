"""MIG, modularity and their parts against loop implementations written here from the papers,
closed forms on full factor grids (where every pair of factors is exactly independent in the
sample), disentanglement_lib's oracle tests, and the input checks."""

import itertools
import math

import numpy as np
import pytest

from latentbench.metrics.factor_info import (
    discretize,
    factor_entropies,
    mig,
    modularity,
    modularity_per_code,
    mutual_information_matrix,
)

DSPRITES = (3, 6, 40, 32, 32)


def full_grid(sizes):
    """Every combination of the factor values once: int64 [∏ sizes, K]."""
    return np.array(list(itertools.product(*(range(s) for s in sizes))), dtype=np.int64)


def uniform_draw(rng, sizes, n):
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def rotated(factors, rng):
    """The standardised factors times a random orthogonal matrix: every code mixes them all."""
    q, _ = np.linalg.qr(rng.standard_normal((factors.shape[1],) * 2))
    return (factors - factors.mean(0)) / factors.std(0) @ q


# Independent implementations, from the definitions -----------------------------------------------

def loop_bins(column, bins):
    """Equal-width bins between min and max, numbered 1..bins, the maximum in the last."""
    low, high = min(column), max(column)
    if low == high:
        return [1] * len(column)
    width = (high - low) / bins
    return [min(int((v - low) / width), bins - 1) + 1 for v in column]


def loop_mi(a, b):
    """Plug-in mutual information of two label sequences, in nats."""
    n = len(a)
    joint, pa, pb = {}, {}, {}
    for u, v in zip(a, b, strict=True):
        joint[u, v] = joint.get((u, v), 0) + 1
        pa[u] = pa.get(u, 0) + 1
        pb[v] = pb.get(v, 0) + 1
    return sum(c / n * math.log(c * n / (pa[u] * pb[v])) for (u, v), c in joint.items())


def loop_entropy(a):
    n = len(a)
    return -sum(c / n * math.log(c / n) for c in (list(a).count(v) for v in set(a)))


def loop_mig(codes, factors, bins):
    d, k = codes.shape[1], factors.shape[1]
    binned = [loop_bins(list(codes[:, j]), bins) for j in range(d)]
    gaps = []
    for f in range(k):
        column = list(factors[:, f])
        mis = sorted((loop_mi(binned[j], column) for j in range(d)), reverse=True)
        gaps.append((mis[0] - mis[1]) / loop_entropy(column))
    return sum(gaps) / k


def loop_modularity(mi):
    scores = []
    for row in mi:
        best = max(row)
        if best == 0:
            scores.append(0.0)
            continue
        # Σ over the factors other than the best one: all of them, less the best
        others = sum(m * m for m in row) - best * best
        scores.append(1 - others / (best * best * (len(row) - 1)))
    return sum(scores) / len(scores)


# Agreement with the loops ------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_discretize_is_the_equal_width_histogram(seed):
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((300, 3)) * [1.0, 10.0, 0.01]
    binned = discretize(codes, bins=7)
    for j in range(3):
        assert binned[:, j].tolist() == loop_bins(list(codes[:, j]), 7)
    assert binned.min() == 1 and binned.max() == 7


def test_a_constant_code_is_one_bin():
    assert (discretize(np.full((10, 1), 3.5)) == discretize(np.full((10, 1), 3.5))[0]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mi_entropies_mig_and_modularity_agree_with_loops_on_random_discrete_data(seed):
    rng = np.random.default_rng(seed)
    factors = uniform_draw(rng, (2, 3, 5), 200)
    # Discrete codes with dependence on the factors: some share values with them.
    codes = np.stack([factors[:, 0] * 2 + rng.integers(0, 2, 200),
                      rng.integers(0, 6, 200),
                      (factors[:, 2] + rng.integers(0, 3, 200)) % 5,
                      factors[:, 1] + factors[:, 2]], axis=1).astype(float)
    bins = 5
    mi = mutual_information_matrix(codes, factors, bins)
    binned = [loop_bins(list(codes[:, j]), bins) for j in range(4)]
    expected = [[loop_mi(binned[j], list(factors[:, k])) for k in range(3)] for j in range(4)]
    np.testing.assert_allclose(mi, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(factor_entropies(factors),
                               [loop_entropy(list(factors[:, k])) for k in range(3)], rtol=1e-12)
    assert mig(codes, factors, bins).score == pytest.approx(loop_mig(codes, factors, bins),
                                                            rel=1e-10)
    assert modularity(codes, factors, bins).score == pytest.approx(
        loop_modularity(expected), rel=1e-10)


# Closed forms on full grids ----------------------------------------------------------------------

def test_ground_truth_reaches_one_when_each_value_has_its_own_bin():
    """Sizes ≤ 21 put each value into its own of 20 bins, and on a full grid every other code is
    exactly independent of the factor: MIG and modularity are 1 to rounding."""
    factors = full_grid((2, 3, 4, 5, 7))
    result = mig(factors.astype(float), factors)
    assert result.score == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(result.mi_matrix, np.diag(result.entropies), atol=1e-12)
    assert modularity(factors.astype(float), factors).score == pytest.approx(1.0, abs=1e-12)


def test_ground_truth_of_40_and_32_values_merges_bins():
    """20 bins of width 39/20 hold 2 of 40 values each: H = log 20. 20 bins of width 31/20 hold
    2 values in 12 bins and 1 in 8: H = (24 log 16 + 8 log 32)/32 = 4.25 log 2 = 0.85 log 32."""
    factors = full_grid((6, 40, 32))
    result = mig(factors.astype(float), factors)
    np.testing.assert_allclose(result.per_factor,
                               [1.0, math.log(20) / math.log(40), 0.85], rtol=1e-12)


def test_ground_truth_of_dsprites_sizes_is_the_population_value_less_the_estimators_bias():
    """On a uniform draw of N = 10,000 dSprites factors the gap is the full-grid value
    (1 + 1 + log 20/log 40 + 0.85 + 0.85)/5 = 0.9024 less the upward bias of the largest other
    code's mutual information, ≈ (b − 1)(n − 1)/(2N) nats for b bins and n values (0.0063 in
    MIG); the sampling spread of the score at this N is ~0.001."""
    rng = np.random.default_rng(0)
    factors = uniform_draw(rng, DSPRITES, 10_000)
    population = (2 + math.log(20) / math.log(40) + 2 * 0.85) / 5
    bins = [min(n, 20) for n in DSPRITES]
    bias = np.mean([max((bins[j] - 1) * (n - 1) for j in range(5) if j != k)
                    / (2 * 10_000 * math.log(n)) for k, n in enumerate(DSPRITES)])
    score = mig(factors.astype(float), factors).score
    assert score == pytest.approx(population - bias, abs=0.003)
    assert 0.89 < score < population


# Oracles -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def oracle():
    """Ground-truth factors, a rotation of them, noise and a duplicated code on one draw."""
    rng = np.random.default_rng(1)
    factors = uniform_draw(rng, (4, 5, 6), 3000)
    truth = factors.astype(float)
    return {"factors": factors, "truth": truth, "rotation": rotated(truth, rng),
            "noise": rng.standard_normal((3000, 3)),
            "duplicate": np.concatenate([truth, truth[:, :1]], axis=1)}


def test_mig_oracles(oracle):
    factors = oracle["factors"]
    scores = {name: mig(oracle[name], factors) for name in ("truth", "rotation", "noise",
                                                            "duplicate")}
    assert scores["truth"].score > 0.99
    assert scores["rotation"].score < 0.5  # 0.32 for this rotation: it keeps some alignment
    # Noise: only the estimator's bias, (19)(n − 1)/(2N) nats at most, differs between codes.
    assert scores["noise"].score < 0.01
    # The duplicated factor's two codes tie exactly: its gap is 0, the others keep theirs.
    assert scores["duplicate"].per_factor[0] == 0.0
    np.testing.assert_allclose(scores["duplicate"].per_factor[1:],
                               scores["truth"].per_factor[1:], rtol=1e-12)


def test_modularity_oracles(oracle):
    factors = oracle["factors"]
    assert modularity(oracle["truth"], factors).score > 0.99
    assert modularity(oracle["duplicate"], factors).score > 0.99  # a copy is still modular
    assert modularity(oracle["rotation"], factors).score < modularity(oracle["truth"],
                                                                      factors).score - 0.2


def test_modularity_of_codes_that_shuffle_the_factors_per_point_is_low():
    """disentanglement_lib's bad representation: each point's code is a random permutation of
    its factors, so every code knows a little about every factor."""
    rng = np.random.default_rng(2)
    factors = uniform_draw(rng, (10,) * 4, 20_000)
    codes = rng.permuted(factors.astype(float), axis=1)
    assert modularity(codes, factors).score < 0.2


@pytest.mark.parametrize(("matrix", "expected"), [
    (np.diag(5.0 * np.ones(5)), 1.0),
    (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 2 / 3),  # an empty code scores 0
    (np.zeros((10, 10)), 0.0),
    (np.vstack([np.diag(5.0 * np.ones(5))] * 2), 1.0),  # redundant codes
    (np.diag(5.0 * np.ones(5))[:2], 1.0),  # missed factors
    (np.hstack([np.diag(5.0 * np.ones(5))] * 2), 1 - 1 / 9),  # one code, two factors
])
def test_modularity_matrix_oracles_of_disentanglement_lib(matrix, expected):
    assert modularity_per_code(matrix).mean() == pytest.approx(expected, rel=1e-12)


# Input checks ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("codes", "factors", "match"), [
    (np.zeros(5), np.zeros((5, 1), int), "codes must be a 2-D"),
    (np.full((5, 2), np.nan), np.zeros((5, 1), int), "codes has NaN"),
    (np.zeros((5, 2)), np.zeros((4, 2), int), "factors has 4 rows"),
    (np.zeros((5, 2)), np.zeros((5, 2)), "factors must hold integer"),
    (np.zeros((5, 2)), -np.ones((5, 2), int), "factors must be grid indices >= 0"),
    (np.zeros((5, 2)), np.zeros((5,), int), "factors must be a 2-D"),
])
def test_bad_inputs_name_the_argument(codes, factors, match):
    with pytest.raises(ValueError, match=match):
        mig(codes, factors)


def test_mig_needs_two_codes_and_varying_factors():
    factors = np.array([[0, 1], [1, 1], [0, 1]])
    with pytest.raises(ValueError, match="at least 2 codes"):
        mig(np.zeros((3, 1)), factors)
    with pytest.raises(ValueError, match="factors column 1 takes one value"):
        mig(np.random.default_rng(0).standard_normal((3, 2)), factors)
    with pytest.raises(ValueError, match="bins"):
        mig(np.random.default_rng(0).standard_normal((3, 2)), factors[:, :1], bins=0)


def test_modularity_needs_two_factors():
    with pytest.raises(ValueError, match="at least 2 factors"):
        modularity(np.zeros((3, 2)), np.zeros((3, 1), int))


def test_results_are_read_only(oracle):
    result = mig(oracle["truth"], oracle["factors"])
    with pytest.raises(ValueError, match="read-only"):
        result.mi_matrix[0, 0] = 1.0
    assert result.n_samples == 3000 and result.bins == 20
