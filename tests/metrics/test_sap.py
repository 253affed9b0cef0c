"""SAP: the continuous score against a loop implementation of Kumar et al.'s squared
correlation, the discrete score's entries against LinearSVCs fitted here, the oracles of
disentanglement_lib's tests, and the input checks."""

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from latentbench.metrics.sap import sap

SIZES = (2, 3, 4)


def uniform_draw(rng, sizes, n):
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def loop_sap_continuous(codes, factors):
    """Mean over factors of the gap between the two largest cov(z_i, v_j)² / (var z_i var v_j),
    each from sums (normaliser n − 1)."""
    n, d, k = len(codes), codes.shape[1], factors.shape[1]

    def cov(a, b):
        ma, mb = sum(a) / n, sum(b) / n
        return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / (n - 1)

    gaps = []
    for j in range(k):
        v = list(factors[:, j].astype(float))
        scores = []
        for i in range(d):
            z = list(codes[:, i])
            scores.append(cov(z, v) ** 2 / (cov(z, z) * cov(v, v)) if cov(z, z) > 1e-12 else 0)
        scores.sort(reverse=True)
        gaps.append(scores[0] - scores[1])
    return sum(gaps) / k


@pytest.fixture(scope="module")
def oracle(factor_oracle):
    return factor_oracle(SIZES)


@pytest.mark.parametrize("seed", [0, 1])
def test_continuous_score_agrees_with_loops_on_random_discrete_data(seed):
    rng = np.random.default_rng(seed)
    factors = uniform_draw(rng, (3, 5), 120)
    codes = np.c_[factors[:, 0] + rng.integers(0, 3, 120), rng.integers(0, 4, 120),
                  factors[:, 1] * 2 - factors[:, 0], np.full(120, 2.0)].astype(float)
    result = sap(codes, factors, continuous=True)
    assert result.score == pytest.approx(loop_sap_continuous(codes, factors), rel=1e-10)
    assert (result.n_train, result.n_test) == (120, 0)
    assert (result.score_matrix[3] == 0).all()  # a constant code predicts nothing


def test_discrete_entries_are_linear_svcs_on_one_code(oracle):
    codes, factors = oracle["rotation"], oracle["factors"]
    result = sap(codes[:600], factors[:600], codes[600:], factors[600:])
    for i, j in [(0, 0), (1, 2), (2, 1)]:
        model = LinearSVC(C=0.01, class_weight="balanced", dual=False)
        model.fit(codes[:600, i:i + 1], factors[:600, j])
        accuracy = np.mean(model.predict(codes[600:, i:i + 1]) == factors[600:, j])
        assert result.score_matrix[i, j] == pytest.approx(accuracy, abs=1e-12)
    ordered = np.sort(result.score_matrix, axis=0)
    np.testing.assert_allclose(result.per_factor, ordered[-1] - ordered[-2])


def test_ground_truth_continuous_is_one_and_discrete_is_its_ceiling(oracle):
    """Continuous: the factor itself has R² = 1 and every other code ≈ 0. Discrete: a linear
    one-vs-rest classifier on one code separates two values, not all of 3 or 4, so the factor
    itself as its code is the best code and the score is the ceiling of that classifier."""
    factors = oracle["factors"]
    continuous = sap(oracle["truth"], factors, continuous=True)
    assert continuous.score > 0.99
    discrete = sap(oracle["truth"], factors)
    assert (discrete.score_matrix.argmax(axis=0) == [0, 1, 2]).all()
    assert discrete.per_factor[0] > 0.45  # binary: accuracy 1 against chance 1/2
    assert discrete.score > sap(oracle["rotation"], factors).score


def test_binary_ground_truth_scores_one_less_chance():
    """Every factor binary: its own code classifies perfectly, another code is at chance 1/2
    (± 0.1: 6 standard deviations of an accuracy on 300 test points is 0.17 in a gap)."""
    rng = np.random.default_rng(2)
    factors = uniform_draw(rng, (2, 2, 2), 900)
    result = sap(factors.astype(float), factors)
    np.testing.assert_allclose(np.diag(result.score_matrix), 1.0)
    assert result.score == pytest.approx(0.5, abs=0.1)


def test_rotation_noise_and_duplicate(oracle):
    factors = oracle["factors"]
    for continuous in (False, True):
        truth = sap(oracle["truth"], factors, continuous=continuous).score
        assert sap(oracle["rotation"], factors, continuous=continuous).score < truth - 0.1
        # Noise: every code is at chance for every factor; only sampling differs between them.
        assert sap(oracle["noise"], factors, continuous=continuous).score < 0.05
        duplicate = sap(oracle["duplicate"], factors, continuous=continuous)
        assert duplicate.per_factor[0] == 0.0  # two identical best codes: no gap


def test_the_split_is_seeded(oracle):
    codes, factors = oracle["rotation"], oracle["factors"]
    first, again = sap(codes, factors, seed=1), sap(codes, factors, seed=1)
    np.testing.assert_array_equal(first.score_matrix, again.score_matrix)
    assert (first.n_train, first.n_test) == (600, 300)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"test_factors": np.zeros((3, 3), int)}, "test_codes and test_factors must be given"),
    ({"test_codes": np.zeros((3, 3)), "test_factors": np.zeros((3, 3))},
     "test_factors must hold integer"),
    ({"test_codes": np.zeros((3, 3)), "test_factors": np.zeros((3, 3), int),
      "continuous": True, "seed": 0}, None),
])
def test_test_set_arguments(oracle, kwargs, match):
    if match is None:
        assert sap(oracle["truth"], oracle["factors"], **kwargs).n_test == 0
        return
    with pytest.raises(ValueError, match=match):
        sap(oracle["truth"], oracle["factors"], **kwargs)


def test_too_few_codes_or_a_constant_factor():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="at least 2 codes"):
        sap(rng.standard_normal((30, 1)), uniform_draw(rng, (3,), 30))
    with pytest.raises(ValueError, match="column 0 takes one value"):
        sap(rng.standard_normal((30, 2)), np.zeros((30, 1), int), continuous=True)
