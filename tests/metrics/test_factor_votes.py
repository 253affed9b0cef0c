"""FactorVAE and β-VAE scores: the pool draws (batches share the fixed factor, are uniform within
it and free of repeats), loop implementations of both votes on the same draws, the oracles, and
the input checks."""

import math

import numpy as np
import pytest
from scipy.linalg import hadamard
from scipy.stats import chi2
from sklearn.linear_model import LogisticRegression

from latentbench.metrics.factor_votes import (
    PRUNE_STD,
    _subsets,
    betavae_score,
    factorvae_score,
    fixed_factor_batches,
    fixed_factor_pairs,
)

SIZES = (4, 4, 4, 4)


def uniform_draw(rng, sizes, n):
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


@pytest.fixture(scope="module")
def oracle():
    """The rotation is the one that mixes all factors equally: the standardised factors times
    the 4 × 4 Hadamard matrix / 2, every loading ±1/2. Both scores are blind to a rotation that
    leaves each factor one code it loads on most — fixing the factor still shrinks that code's
    variance most, and |Δz| still differs by factor — so a random rotation scores anywhere
    from chance to 1 (0.60–1.0 for FactorVAE over five random 4 × 4 rotations here); the equal
    mixing is the one with a known answer, chance."""
    rng = np.random.default_rng(0)
    factors = uniform_draw(rng, SIZES, 2000)
    truth = factors.astype(float)
    return {"factors": factors, "truth": truth,
            "rotation": (truth - truth.mean(0)) / truth.std(0) @ hadamard(4) / 2,
            "noise": rng.standard_normal((2000, 4)),
            "duplicate": np.concatenate([truth, truth[:, :1]], axis=1)}


SMALL = {"batch_size": 16, "n_train": 800, "n_eval": 500}


# The draws ---------------------------------------------------------------------------------------

def test_batches_share_the_fixed_factor_and_repeat_no_point(oracle):
    factors = oracle["factors"]
    factor, rows = fixed_factor_batches(factors, 400, 20, np.random.default_rng(1))
    assert rows.shape == (400, 20) and factor.shape == (400,)
    for k, batch in zip(factor, rows, strict=True):
        assert len(set(batch.tolist())) == 20
        assert (factors[batch, k] == factors[batch[0], k]).all()
    assert set(np.unique(factor).tolist()) == {0, 1, 2, 3}


def test_pairs_share_the_fixed_factor_and_are_distinct(oracle):
    factors = oracle["factors"]
    factor, first, second = fixed_factor_pairs(factors, 300, 10, np.random.default_rng(2))
    assert first.shape == second.shape == (300, 10)
    assert (first != second).all()
    assert (factors[first, factor[:, None]] == factors[second, factor[:, None]]).all()


def test_floyd_subsets_are_uniform():
    """All C(5, 2) = 10 subsets of 2 of 5 positions, 20,000 draws: a chi-square test of
    uniformity at p = 1e-6 (one comparison, a fixed seed)."""
    chosen = _subsets(np.full(20_000, 5), 2, np.random.default_rng(3))
    assert (chosen[:, 0] != chosen[:, 1]).all() and chosen.min() == 0 and chosen.max() == 4
    codes = np.sort(chosen, axis=1) @ [5, 1]
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 10
    statistic = ((counts - 2000) ** 2 / 2000).sum()
    assert statistic < chi2.ppf(1 - 1e-6, 9)


def test_every_point_of_a_group_is_drawn_equally_often():
    """A pool of 30 points, factor 0 with 3 values of 10 points: over 3,000 batches of 4 each
    point of a group appears as often as the others (chi-square per factor value, 3 tests at
    p = 1e-6 each)."""
    factors = np.c_[np.repeat(np.arange(3), 10), np.tile([0, 1], 15)]
    factor, rows = fixed_factor_batches(factors, 3000, 4, np.random.default_rng(4))
    rows = rows[factor == 0]
    for value in range(3):
        counts = np.bincount(rows[factors[rows[:, 0], 0] == value].ravel(), minlength=30)
        counts = counts[value * 10:(value + 1) * 10]
        expected = counts.sum() / 10
        assert ((counts - expected) ** 2 / expected).sum() < chi2.ppf(1 - 1e-6, 9)


# The votes, as loops on the same draws -----------------------------------------------------------

def loop_factorvae(codes, factors, batch_size, n_train, n_eval, seed):
    """Kim & Mnih's score from the paper's steps, on the batches the module draws."""
    n, d = codes.shape
    k = factors.shape[1]
    mean = [sum(codes[:, j]) / n for j in range(d)]
    variance = [sum((c - mean[j]) ** 2 for c in codes[:, j]) / (n - 1) for j in range(d)]
    active = [j for j in range(d) if math.sqrt(variance[j]) >= PRUNE_STD]
    rng = np.random.default_rng(seed)
    draws = [fixed_factor_batches(factors, n_train, batch_size, rng),
             fixed_factor_batches(factors, n_eval, batch_size, rng)]
    votes = []
    for factor, rows in draws:
        counts = [[0] * d for _ in range(k)]
        for fixed, batch in zip(factor, rows, strict=True):
            ratios = []
            for j in active:
                values = [codes[r, j] for r in batch]
                m = sum(values) / len(values)
                ratios.append(sum((v - m) ** 2 for v in values) / (len(values) - 1)
                              / variance[j])
            counts[fixed][active[ratios.index(min(ratios))]] += 1
        votes.append(counts)
    classifier = [max(range(k), key=lambda f, j=j: (votes[0][f][j], -f)) for j in range(d)]
    accuracy = [sum(v[classifier[j]][j] for j in range(d)) / sum(map(sum, v)) for v in votes]
    return votes, accuracy


def test_factorvae_agrees_with_loops_on_random_discrete_data():
    rng = np.random.default_rng(5)
    factors = uniform_draw(rng, (3, 4), 300)
    codes = np.c_[factors[:, 0] + rng.integers(0, 2, 300), rng.integers(0, 5, 300),
                  factors[:, 1] * 0.5 + rng.integers(0, 3, 300), np.full(300, 1.0)]
    result = factorvae_score(codes, factors, batch_size=8, n_train=150, n_eval=100, seed=6)
    votes, accuracy = loop_factorvae(codes, factors, 8, 150, 100, seed=6)
    np.testing.assert_array_equal(result.train_votes, votes[0])
    np.testing.assert_array_equal(result.eval_votes, votes[1])
    assert result.train_accuracy == pytest.approx(accuracy[0], rel=1e-12)
    assert result.score == pytest.approx(accuracy[1], rel=1e-12)
    assert result.active.tolist() == [True, True, True, False] and result.n_active == 3


def test_betavae_agrees_with_loops_on_random_discrete_data():
    rng = np.random.default_rng(7)
    factors = uniform_draw(rng, (3, 4), 300)
    codes = np.c_[factors[:, 0] + rng.integers(0, 2, 300), rng.integers(0, 5, 300),
                  factors[:, 1] - factors[:, 0]].astype(float)
    result = betavae_score(codes, factors, batch_size=8, n_train=200, n_eval=100, seed=8)
    draw = np.random.default_rng(8)
    features = []
    for n_votes in (200, 100):
        factor, first, second = fixed_factor_pairs(factors, n_votes, 8, draw)
        rows = [[sum(abs(codes[a, j] - codes[b, j]) for a, b in zip(f, s, strict=True)) / 8
                 for j in range(3)] for f, s in zip(first, second, strict=True)]
        features.append((np.array(rows), factor))
    model = LogisticRegression(random_state=8, max_iter=1000).fit(*features[0])
    assert result.score == pytest.approx(model.score(*features[1]), abs=1e-12)
    assert result.train_accuracy == pytest.approx(model.score(*features[0]), abs=1e-12)


# Oracles -----------------------------------------------------------------------------------------

def test_factorvae_oracles(oracle):
    """Noise and the equal rotation: a vote's code does not depend on its factor, so each eval
    vote is right with probability 1/K = 0.25; the standard deviation on 500 votes is 0.019,
    the bound 0.1 (5 of them)."""
    factors = oracle["factors"]
    truth = factorvae_score(oracle["truth"], factors, **SMALL)
    assert truth.score == 1.0 and truth.train_accuracy == 1.0
    assert truth.classifier.tolist() == [0, 1, 2, 3]
    assert abs(factorvae_score(oracle["rotation"], factors, **SMALL).score - 0.25) < 0.1
    noise = factorvae_score(oracle["noise"], factors, **SMALL)
    assert abs(noise.score - 0.25) < 0.1
    # The two copies tie in every batch that fixes factor 0, and the tie goes to the first.
    assert factorvae_score(oracle["duplicate"], factors, **SMALL).score == 1.0


def test_factorvae_without_an_active_code_is_zero(oracle):
    codes = np.c_[np.zeros(2000), 0.01 * oracle["noise"][:, :2]]  # std 0.01 < 0.05
    result = factorvae_score(codes, oracle["factors"], **SMALL)
    assert result.score == 0.0 and result.n_active == 0


def test_betavae_oracles(oracle):
    factors = oracle["factors"]
    assert betavae_score(oracle["truth"], factors, **SMALL).score == 1.0
    assert betavae_score(oracle["duplicate"], factors, **SMALL).score == 1.0
    assert abs(betavae_score(oracle["rotation"], factors, **SMALL).score - 0.25) < 0.1
    assert abs(betavae_score(oracle["noise"], factors, **SMALL).score - 0.25) < 0.1


# Input checks ------------------------------------------------------------------------------------

def test_a_value_with_too_few_points_for_a_batch_is_refused(oracle):
    factors = np.c_[oracle["factors"][:, :3], np.r_[np.zeros(1990, int), np.ones(10, int)]]
    with pytest.raises(ValueError, match="factors column 3 has 10 pool points with value 1, "
                                         "fewer than the 16"):
        factorvae_score(oracle["truth"], factors, **SMALL)
    factors[-1, 3] = 5
    with pytest.raises(ValueError, match="factors column 3 has 1 pool points with value 5"):
        betavae_score(oracle["truth"], factors, **SMALL)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"batch_size": 1}, "batch_size: must be an integer >= 2"),
    ({"n_train": 0}, "n_train: must be a positive integer"),
    ({"n_eval": 1.5}, "n_eval: must be a positive integer"),
])
def test_bad_counts_name_themselves(oracle, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factorvae_score(oracle["truth"], oracle["factors"], **kwargs)


def test_one_factor_is_refused(oracle):
    with pytest.raises(ValueError, match="at least 2 factors"):
        betavae_score(oracle["truth"], oracle["factors"][:, :1])


def test_betavae_needs_training_votes_of_two_factors(oracle):
    with pytest.raises(ValueError, match="n_train=1 votes all fix factor"):
        betavae_score(oracle["truth"], oracle["factors"], n_train=1)
