"""DCI: disentanglement_lib's oracle tests (importance matrices with known scores, and
representations), a loop implementation of the formulas of Eastwood & Williams, the LightGBM
importances against scikit-learn's GradientBoostingClassifier (the reference), and the input
checks."""

import math

import numpy as np
import pytest
import torch

from latentbench.metrics.dci import (
    completeness_per_factor,
    completeness_score,
    dci,
    disentanglement_per_code,
    disentanglement_score,
)

SIZES = (3, 4, 5)


def uniform_draw(rng, sizes, n):
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def standardised(factors):
    return (factors - factors.mean(0)) / factors.std(0)


# The formulas, as loops --------------------------------------------------------------------------

def loop_entropy(p, base):
    total = sum(p)
    return -sum(q / total * math.log(q / total, base) for q in p if q > 0)


def loop_dci(r):
    """D and C from the definitions, with disentanglement_lib's 1e-11 and weights."""
    d, k = len(r), len(r[0])
    total = sum(sum(row) for row in r)
    code_weights = [sum(row) / total for row in r] if total > 0 else [1 / d] * d
    factor_weights = ([sum(r[i][j] for i in range(d)) / total for j in range(k)] if total > 0
                      else [1 / k] * k)
    per_code = [1 - loop_entropy([r[i][j] + 1e-11 for j in range(k)], k) for i in range(d)]
    per_factor = [1 - loop_entropy([r[i][j] + 1e-11 for i in range(d)], d) for j in range(k)]
    return (sum(w * s for w, s in zip(code_weights, per_code, strict=True)),
            sum(w * s for w, s in zip(factor_weights, per_factor, strict=True)))


@pytest.mark.parametrize("seed", range(5))
def test_scores_agree_with_loops_on_random_importances(seed):
    rng = np.random.default_rng(seed)
    r = rng.random((6, 4)) ** 4  # skewed, some near 0
    r[rng.integers(0, 6)] = 0.0  # an unused code
    expected = loop_dci(r.tolist())
    assert disentanglement_score(r) == pytest.approx(expected[0], rel=1e-10, abs=1e-12)
    assert completeness_score(r) == pytest.approx(expected[1], rel=1e-10, abs=1e-12)


# disentanglement_lib's matrix oracles (dci_test.py) ------------------------------------------

DIAGONAL = np.diag(5.0 * np.ones(5))


@pytest.mark.parametrize(("matrix", "disentanglement", "completeness"), [
    (DIAGONAL, 1.0, 1.0),
    (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0),  # an empty code
    (np.zeros((10, 10)), 0.0, 0.0),
    (np.vstack([DIAGONAL, DIAGONAL]), 1.0, 1 - math.log(2) / math.log(10)),  # redundant codes
    (DIAGONAL[:2], 1.0, 1.0),  # missed factors
    (np.hstack([DIAGONAL, DIAGONAL]), 1 - math.log(2) / math.log(10), 1.0),  # 1 code, 2 factors
])
def test_matrix_oracles_of_disentanglement_lib(matrix, disentanglement, completeness):
    assert disentanglement_score(matrix) == pytest.approx(disentanglement, abs=1e-7)
    assert completeness_score(matrix) == pytest.approx(completeness, abs=1e-7)
    assert disentanglement_per_code(matrix).shape == (len(matrix),)
    assert completeness_per_factor(matrix).shape == (matrix.shape[1],)


# Representations ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def oracle(factor_oracle):
    return factor_oracle(SIZES)


@pytest.fixture(scope="module")
def scores(oracle):
    return {name: dci(oracle[name], oracle["factors"])
            for name in ("truth", "rotation", "noise", "duplicate")}


def test_ground_truth_is_disentangled_complete_and_informative(scores):
    truth = scores["truth"]
    assert truth.disentanglement > 0.95 and truth.completeness > 0.95
    assert truth.informativeness == 1.0 and truth.train_accuracy == 1.0
    assert truth.n_train == 600 and truth.n_test == 300 and truth.method == "gbt"
    np.testing.assert_allclose(truth.importance.sum(0), 1.0)


def test_a_rotation_scores_lower(scores):
    assert scores["rotation"].disentanglement < scores["truth"].disentanglement - 0.4
    assert scores["rotation"].completeness < scores["truth"].completeness - 0.4


def test_noise_scores_zero_and_chance_accuracy(scores):
    """Chance accuracy is mean(1/n_k) = 0.26 for sizes 3, 4, 5; each accuracy on 300 test
    points has a standard deviation below 0.03, their mean below 0.017: 0.1 is 6 of those."""
    noise = scores["noise"]
    assert noise.disentanglement < 0.1 and noise.completeness < 0.1
    assert abs(noise.informativeness - np.mean([1 / s for s in SIZES])) < 0.1


def test_a_duplicated_factor_keeps_informativeness_and_disentanglement(scores):
    """Each code still serves one factor and the factor is as predictable as before. LightGBM
    breaks the tie between two identical codes towards the first, so factor 0's importance is
    not split and completeness stays (see the next test for the reference)."""
    duplicate, truth = scores["duplicate"], scores["truth"]
    assert duplicate.informativeness == truth.informativeness
    assert duplicate.disentanglement > 0.95
    assert duplicate.importance[3, 0] == 0.0


def test_the_reference_splits_a_duplicated_code(scores):
    """scikit-learn shuffles the codes at each split, so two identical codes share a factor's
    importance about evenly and its completeness falls towards 1 − log 2 / log d
    (disentanglement_lib's test_duplicated_latent_space, to ± 0.1 as there)."""
    rng = np.random.default_rng(4)
    factors = uniform_draw(rng, (2, 3), 300)
    codes = np.c_[factors, factors[:, 0]].astype(float)
    result = dci(codes, factors, importance="gbt-sklearn")
    assert result.per_factor_completeness[0] == pytest.approx(1 - math.log(2) / math.log(3),
                                                              abs=0.1)
    assert result.informativeness == 1.0


def test_scores_are_the_formulas_of_the_importance_matrix(scores):
    for result in scores.values():
        expected = loop_dci(result.importance.tolist())
        assert result.disentanglement == pytest.approx(expected[0], rel=1e-10, abs=1e-12)
        assert result.completeness == pytest.approx(expected[1], rel=1e-10, abs=1e-12)
        assert result.informativeness == pytest.approx(result.test_accuracies.mean())


@pytest.mark.parametrize("kind", ["noisy", "mixed"])
def test_lightgbm_agrees_with_scikit_learn_gradient_boosting(kind):
    """Measured on 24 data sets of this form (3 kinds × 8 seeds, 600 training points): the
    largest differences were 0.043 in an importance entry, 0.032 in D, 0.029 in C and 0.026 in
    informativeness (8 of 300 test points). The bounds are those plus about a half, for library
    versions; LightGBM's own second-order gain as importance had D and C up to 0.115 below the
    reference on the noisy kind."""
    rng = np.random.default_rng(7)
    factors = uniform_draw(rng, (2, 3, 4), 900)
    codes = standardised(factors)
    if kind == "mixed":
        codes = codes @ np.linalg.qr(rng.standard_normal((3, 3)))[0]
    codes = np.c_[codes + 0.5 * rng.standard_normal(codes.shape),
                  rng.standard_normal((900, 2))]
    ours, reference = dci(codes, factors), dci(codes, factors, importance="gbt-sklearn")
    assert np.abs(ours.importance - reference.importance).max() < 0.065
    assert ours.disentanglement == pytest.approx(reference.disentanglement, abs=0.05)
    assert ours.completeness == pytest.approx(reference.completeness, abs=0.05)
    assert ours.informativeness == pytest.approx(reference.informativeness, abs=0.04)


def test_lasso_importances():
    """At a few thousand points (see LASSO_ALPHA) noise codes stay out of the L1 model."""
    rng = np.random.default_rng(5)
    factors = uniform_draw(rng, SIZES, 6000)
    truth = dci(factors.astype(float), factors, importance="lasso")
    noise = dci(rng.standard_normal((6000, 3)), factors, importance="lasso")
    assert truth.disentanglement > 0.95 and truth.completeness > 0.95
    assert truth.informativeness > 0.5  # a linear probe of one-hot values: not all separable
    np.testing.assert_allclose(truth.importance.sum(0), 1.0)
    assert noise.disentanglement < 0.05 and noise.method == "lasso"


def test_the_split_is_seeded_and_a_test_set_is_used_as_given(oracle):
    codes, factors = oracle["rotation"], oracle["factors"]
    first, again = dci(codes, factors, seed=3), dci(codes, factors, seed=3)
    np.testing.assert_array_equal(first.importance, again.importance)
    given = dci(codes[:500], factors[:500], codes[500:], factors[500:])
    assert (given.n_train, given.n_test) == (500, 400)


def test_the_number_of_threads_does_not_change_the_result(oracle, monkeypatch):
    codes, factors = oracle["rotation"], oracle["factors"]
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    one = dci(codes, factors)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    three = dci(codes, factors)
    np.testing.assert_array_equal(one.importance, three.importance)
    np.testing.assert_array_equal(one.test_accuracies, three.test_accuracies)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"importance": "forest"}, "importance must be one of gbt, gbt-sklearn, lasso"),
    ({"test_codes": np.zeros((3, 3))}, "test_codes and test_factors must be given together"),
    ({"test_codes": np.zeros((3, 2)), "test_factors": np.zeros((3, 3), int)},
     "test_codes has 2 codes"),
    ({"test_codes": np.zeros((3, 3)), "test_factors": np.zeros((3, 2), int)},
     "test_factors has 2 factors"),
])
def test_bad_arguments_name_themselves(oracle, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dci(oracle["truth"], oracle["factors"], **kwargs)


def test_too_few_codes_factors_or_values():
    rng = np.random.default_rng(0)
    factors = uniform_draw(rng, (3, 3), 30)
    with pytest.raises(ValueError, match="at least 2 codes"):
        dci(rng.standard_normal((30, 1)), factors)
    with pytest.raises(ValueError, match="at least 2 factors"):
        dci(rng.standard_normal((30, 2)), factors[:, :1])
    with pytest.raises(ValueError, match=r"factors \(training points\) column 1 takes one value"):
        dci(rng.standard_normal((30, 2)), np.c_[factors[:, 0], np.zeros(30, int)])
