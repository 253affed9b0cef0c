"""Gaussian total correlation: 0 for independent codes up to the estimator's bias, the closed
form KL(N(0, Σ) ‖ N(0, diag Σ)) on codes whose sample covariance is exactly Σ, and the singular
cases."""

import math

import numpy as np
import pytest

from latentbench.metrics.total_correlation import gaussian_total_correlation


def with_covariance(rng, n, covariance):
    """n points whose sample covariance (normaliser n − 1) is exactly ``covariance``: white
    noise whitened to the identity, then coloured by a Cholesky factor."""
    x = rng.standard_normal((n, len(covariance)))
    x -= x.mean(0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T
    return x @ np.linalg.cholesky(covariance).T


def kl_to_product_of_marginals(covariance):
    """KL(N(0, Σ) ‖ N(0, D)), D = diag Σ, by the textbook formula with an inverse and two
    determinants: ½ (tr(D⁻¹Σ) − d + log det D − log det Σ)."""
    diagonal = np.diag(np.diag(covariance))
    return 0.5 * (np.trace(np.linalg.inv(diagonal) @ covariance) - len(covariance)
                  + math.log(np.linalg.det(diagonal) / np.linalg.det(covariance)))


def test_independent_gaussian_codes_are_zero_up_to_the_bias():
    """The sample TC of d independent codes is ≈ Σ_pairs r²/2: mean d(d − 1)/(4N) = 0.00025,
    standard deviation ≈ √(d(d − 1)/2)/(√2 N) = 0.00011 at d = 5, N = 20,000; the bound is the
    mean plus 15 standard deviations."""
    rng = np.random.default_rng(0)
    result = gaussian_total_correlation(rng.standard_normal((20_000, 5)) * [1, 2, 3, 0.1, 9])
    assert 0.0 <= result.score < 0.002
    assert result.n_samples == 20_000 and result.covariance.shape == (5, 5)


@pytest.mark.parametrize("covariance", [
    np.array([[1.0, 0.9], [0.9, 1.0]]),  # disentanglement_lib's test case
    np.array([[4.0, -1.0, 0.5], [-1.0, 1.0, 0.2], [0.5, 0.2, 0.25]]),
])
def test_a_known_correlated_gaussian_gives_the_closed_form(covariance):
    rng = np.random.default_rng(1)
    score = gaussian_total_correlation(with_covariance(rng, 500, covariance)).score
    assert score == pytest.approx(kl_to_product_of_marginals(covariance), rel=1e-9)


def test_two_codes_with_correlation_rho():
    rho = 0.6
    codes = with_covariance(np.random.default_rng(2), 50, np.array([[1.0, rho], [rho, 1.0]]))
    assert gaussian_total_correlation(codes).score == pytest.approx(-0.5 * math.log(1 - rho**2),
                                                                    rel=1e-9)


def test_the_scale_of_a_code_does_not_matter():
    rng = np.random.default_rng(3)
    codes = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 3))
    reference = gaussian_total_correlation(codes).score
    assert gaussian_total_correlation(codes * [1e-6, 1.0, 1e6]).score == pytest.approx(
        reference, rel=1e-8)


def test_a_duplicated_code_or_too_few_points_is_infinite():
    rng = np.random.default_rng(4)
    codes = rng.standard_normal((100, 3))
    assert gaussian_total_correlation(np.c_[codes, codes[:, 1]]).score == math.inf
    assert gaussian_total_correlation(np.c_[codes, codes[:, 0] - 2 * codes[:, 2]]).score == \
        math.inf
    assert gaussian_total_correlation(codes[:3]).score == math.inf  # N ≤ d: rank N − 1


def test_a_constant_code_is_refused():
    codes = np.c_[np.random.default_rng(5).standard_normal((10, 2)), np.ones(10)]
    with pytest.raises(ValueError, match="codes column 2 is constant"):
        gaussian_total_correlation(codes)


def test_one_code_has_no_total_correlation():
    assert gaussian_total_correlation(np.arange(5.0)[:, None]).score == 0.0


@pytest.mark.parametrize(("codes", "match"), [
    (np.zeros(4), "codes must be a 2-D"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "codes has NaN or infinite"),
    (np.zeros((1, 3)), "codes needs at least 2 points"),
])
def test_bad_inputs_name_the_argument(codes, match):
    with pytest.raises(ValueError, match=match):
        gaussian_total_correlation(codes)
