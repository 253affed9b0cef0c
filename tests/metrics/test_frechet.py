"""The Fréchet distance against references: torchmetrics' computation, scipy's sqrtm (the
pytorch-fid route), closed forms, and properties."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchmetrics.image.fid import _compute_fid

from latentbench.metrics import frechet_distance
from latentbench.metrics.frechet import bootstrap_counts, frechet_bootstrap


def gaussian_stats(rng, n, d, shift=0.0, scale=1.0):
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * scale + shift
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False))


def sqrtm_reference(mu1, s1, mu2, s2):
    """The pytorch-fid formula: scipy.linalg.sqrtm of the non-symmetric product."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("d", [2, 16, 64])
def test_agrees_with_torchmetrics_and_sqrtm(d):
    rng = np.random.default_rng(d)
    mu1, s1 = gaussian_stats(rng, 500, d)
    mu2, s2 = gaussian_stats(rng, 400, d, shift=0.3, scale=1.2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    theirs = _compute_fid(*(torch.from_numpy(a) for a in (mu1, s1, mu2, s2))).item()
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert ours == pytest.approx(sqrtm_reference(mu1, s1, mu2, s2), rel=1e-9)


def test_closed_form_for_commuting_covariances():
    """Diagonal Σ: d² = ‖Δμ‖² + Σ_i (√a_i − √b_i)²."""
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_identical_statistics_give_zero():
    rng = np.random.default_rng(0)
    mu, sigma = gaussian_stats(rng, 300, 32)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_fewer_samples_than_dimensions_uses_an_exact_route():
    """Singular covariances (N < d): the nuclear-norm identity is the reference,
    tr(Σ₁Σ₂)^{1/2} = ‖X_c Y_cᵀ‖_* / √((N−1)(M−1))."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((20, 50)), rng.standard_normal((30, 50)) + 0.1
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    xc, yc = x - x.mean(0), y - y.mean(0)
    cross = np.linalg.norm(xc @ yc.T, ord="nuc") / np.sqrt(19 * 29)
    diff = x.mean(0) - y.mean(0)
    expected = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * cross
    assert frechet_distance(x.mean(0), s1, y.mean(0), s2) == pytest.approx(expected, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(2, 40), st.integers(0, 2**32 - 1))
def test_real_non_negative_and_symmetric(d, n, seed):
    rng = np.random.default_rng(seed)
    mu1, s1 = gaussian_stats(rng, n, d)
    mu2, s2 = gaussian_stats(rng, n, d, shift=rng.normal())
    forward, backward = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert forward >= 0.0 and np.isfinite(forward)
    assert forward == pytest.approx(backward, rel=1e-8, abs=1e-8)


def test_accepts_tensors_and_rejects_bad_input():
    mu, sigma = torch.zeros(3), torch.eye(3)
    assert frechet_distance(mu, sigma, mu + 1, sigma) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="one d"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="not symmetric"):
        frechet_distance(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full(2, np.nan), np.eye(2), np.zeros(2), np.eye(2))


@pytest.mark.parametrize(("n", "d"), [(200, 12), (30, 50)])  # the d×d route, then the Gram one
def test_bootstrap_equals_the_distance_of_each_resample(n, d):
    rng = np.random.default_rng(n)
    real = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / 3 + 5.0
    fake = rng.standard_normal((n + 7, d)) + 5.2
    mu2, sigma2 = fake.mean(0), np.cov(fake, rowvar=False)
    counts = bootstrap_counts(n, 4, seed=1)
    got = frechet_bootstrap(real, mu2, sigma2, counts)
    for b in range(4):
        resample = np.repeat(real, counts[b], axis=0)
        expected = frechet_distance(resample.mean(0), np.cov(resample, rowvar=False), mu2, sigma2)
        assert got[b] == pytest.approx(expected, rel=1e-9)
    identity = frechet_bootstrap(real, mu2, sigma2, np.ones((1, n)))
    assert identity[0] == pytest.approx(
        frechet_distance(real.mean(0), np.cov(real, rowvar=False), mu2, sigma2), rel=1e-9)
    with pytest.raises(ValueError, match="counts must be"):
        frechet_bootstrap(real, mu2, sigma2, counts[:, :-1])
