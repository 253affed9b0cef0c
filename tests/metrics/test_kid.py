"""KID against torchmetrics (its per-subset ``poly_mmd`` on our subsets, and its
``KernelInceptionDistance`` class on whole sets), closed forms on tiny sets, and properties."""

import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd

from latentbench.metrics.kid import (
    default_subset_size,
    kid,
    kid_std_error,
    polynomial_mmd2,
    subset_indices,
)


def features(rng, n, d, shift=0.0):
    """Correlated, skewed, non-negative features, like a network's ReLU activations."""
    mixing = rng.standard_normal((d, d)) / np.sqrt(d)
    return np.maximum(rng.standard_normal((n, d)) @ mixing + shift, 0.0)


@pytest.mark.parametrize(("degree", "gamma", "coef"), [(3, None, 1.0), (2, 0.05, 0.5)])
def test_each_subset_agrees_with_torchmetrics_poly_mmd(degree, gamma, coef):
    rng = np.random.default_rng(0)
    real, fake = features(rng, 600, 32), features(rng, 500, 32, shift=0.2)
    subsets, size = 8, 150
    ours = kid(real, fake, subsets=subsets, subset_size=size, degree=degree, gamma=gamma,
               coef=coef, seed=3)
    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
    theirs = []
    for i_real, i_fake in subset_indices(len(real), len(fake), subsets, size, seed=3):
        x, y = real_t[torch.from_numpy(i_real)], fake_t[torch.from_numpy(i_fake)]
        reference = poly_mmd(x, y, degree, gamma, coef).item()
        assert polynomial_mmd2(x, y, degree=degree, gamma=gamma, coef=coef) == pytest.approx(
            reference, rel=1e-10, abs=1e-12)
        theirs.append(reference)
    # torchmetrics reports the std with normaliser S (``unbiased=False``), as we do.
    assert ours[0] == pytest.approx(np.mean(theirs), rel=1e-10)
    assert ours[1] == pytest.approx(np.std(theirs), rel=1e-8)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_whole_sets_agree_with_the_torchmetrics_class():
    """With subset_size = N = M every subset is every sample (in some order), so torchmetrics'
    own random permutations and ours give the same, deterministic, value."""
    rng = np.random.default_rng(1)
    real, fake = features(rng, 120, 16), features(rng, 120, 16, shift=0.3)
    metric = KernelInceptionDistance(feature=nn.Identity(), subsets=3, subset_size=120)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    mean, std = metric.compute()
    with pytest.warns(UserWarning, match="reaches the smaller set"):
        ours = kid(real, fake, subsets=3, subset_size=120)
    assert ours[0] == pytest.approx(mean.item(), rel=1e-10)
    assert ours[1] == pytest.approx(0.0, abs=1e-12) and std.item() == pytest.approx(0, abs=1e-9)


def test_closed_form_with_a_linear_kernel():
    """degree 1, γ = 1, c = 1 on 1-D points: the constants cancel and
    MMD² = Σ_{i≠j} x_i x_j / (m(m−1)) + Σ_{i≠j} y_i y_j / (n(n−1)) − 2 Σx Σy / (mn)
    = 0 + 2·2·3/2 − 2·1·5/4 = 3.5 for x = (0, 1), y = (2, 3)."""
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])
    mean, std = kid(x, y, subsets=5, degree=1, gamma=1.0, coef=1.0)
    assert mean == pytest.approx(3.5, rel=1e-15) and std == 0.0


def test_closed_form_with_the_default_cubic_kernel_can_be_negative():
    """d = 2, so k(a, b) = (aᵀb/2 + 1)³. x = (e₁, e₂), y = (1 1, 0 0):
    k(e₁, e₂) = 1 and k(y₁, y₂) = 1, so both within-set terms are 2/2 = 1; the cross pairs have
    aᵀb ∈ {1, 0, 1, 0}, so Σ k = 2·1.5³ + 2 = 8.75 and the cross term is −2·8.75/4.
    MMD² = 1 + 1 − 4.375 = −2.375: the unbiased estimate is negative."""
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [0.0, 0.0]])
    assert kid(x, y)[0] == pytest.approx(-2.375, rel=1e-15)


def test_unequal_set_sizes_use_the_general_formula():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((11, 3))
    kxx, kyy, kxy = ((a @ b.T / 3 + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    expected = ((kxx.sum() - np.trace(kxx)) / 42 + (kyy.sum() - np.trace(kyy)) / 110
                - 2 * kxy.mean())
    got = polynomial_mmd2(torch.from_numpy(x), torch.from_numpy(y))
    assert got == pytest.approx(expected, rel=1e-12)


def test_two_samples_of_one_distribution_score_near_zero():
    """Unbiased: the mean over subsets is within a few standard errors of 0, either sign."""
    rng = np.random.default_rng(3)
    mixing = rng.standard_normal((16, 16)) / 4  # one distribution: the same mixing for both
    real = np.maximum(rng.standard_normal((2000, 16)) @ mixing, 0)
    fake = np.maximum(rng.standard_normal((2000, 16)) @ mixing, 0)
    shifted = kid(real, fake + 0.3, subsets=20, subset_size=500)[0]
    mean, std = kid(real, fake, subsets=20, subset_size=500)
    # Within 5.1 standard errors (2 comparisons at family error 1e-6: 5.03) — the standard error
    # of KID over new sets, not std/√subsets: the subsets' spread leaves out the sets' own
    # variation (over 40 other pairs of sets the mean was 1.6 of those off, at most 3.8).
    assert abs(mean) < 5.1 * kid_std_error(std, 500, 2000, 2000, 20)
    assert abs(mean) < 0.01 * shifted


def test_grows_with_a_mean_shift():
    rng = np.random.default_rng(4)
    real, fake = rng.standard_normal((800, 8)), rng.standard_normal((800, 8))
    scores = [kid(real, fake + s, subsets=10, subset_size=300)[0] for s in (0.0, 0.25, 0.5, 1.0)]
    assert np.all(np.diff(scores) > 0)
    assert scores[-1] > 0.1


def test_subsets_are_seeded_distinct_rows_and_clipped():
    draws = subset_indices(50, 30, 4, 20, seed=7)
    assert len(draws) == 4
    for i_real, i_fake in draws:
        assert len(set(i_real)) == 20 and len(set(i_fake)) == 20
        assert i_real.max() < 50 and i_fake.max() < 30
    again = subset_indices(50, 30, 4, 20, seed=7)
    assert all(np.array_equal(a, b) for pair, other in zip(draws, again, strict=True)
               for a, b in zip(pair, other, strict=True))
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((40, 4)), rng.standard_normal((25, 4))
    with pytest.warns(UserWarning, match=r"subset size 1000 reaches the smaller set \(25"):
        clipped = kid(x, y, subset_size=1000, seed=1)
    with pytest.warns(UserWarning, match="use at most 12"):
        assert clipped == kid(x, y, subset_size=25, seed=1)
    # By default a subset is half the smaller set (12 of 25), so subsets differ: a spread.
    assert kid(x, y, seed=1) == kid(x, y, subset_size=12, seed=1)
    assert kid(x, y, seed=1)[1] > 0
    assert kid(x, y, seed=1) == kid(x, y, seed=1)
    assert kid(x, y, seed=1) != kid(x, y, seed=2)


def test_accepts_tensors_and_rejects_bad_input():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((30, 5))
    from_tensors = kid(torch.from_numpy(x).float(), torch.from_numpy(y), subsets=3)
    assert from_tensors == pytest.approx(kid(x.astype(np.float32), y, subsets=3), rel=1e-12)
    with pytest.raises(ValueError, match="2-D"):
        kid(x[0], y)
    with pytest.raises(ValueError, match="feature dimension"):
        kid(x, y[:, :4])
    with pytest.raises(ValueError, match="at least 2"):
        kid(x, y[:1])
    with pytest.raises(ValueError, match="NaN"):
        kid(x, np.where(np.arange(5) == 2, np.nan, y))
    with pytest.raises(ValueError, match="NaN or infinite"):
        kid(np.where(np.arange(5) == 0, np.inf, x), y)
    for bad in ({"subsets": 0}, {"subset_size": 1}, {"degree": 0}, {"gamma": 0.0},
                {"coef": -1.0}, {"subsets": 2.5}):
        with pytest.raises(ValueError):
            kid(x, y, **bad)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_give_the_cpu_numbers():
    rng = np.random.default_rng(7)
    real, fake = features(rng, 400, 32), features(rng, 300, 32, shift=0.1)
    on_gpu = kid(torch.from_numpy(real).cuda(), torch.from_numpy(fake).cuda(), subsets=5,
                 subset_size=200)
    assert on_gpu == pytest.approx(kid(real, fake, subsets=5, subset_size=200), rel=1e-9)


def test_default_subset_is_at_most_half_the_smaller_set():
    assert default_subset_size(5000, 4000) == 1000
    assert default_subset_size(1000, 1000) == 500
    assert default_subset_size(300, 41) == 20
    assert default_subset_size(3, 3) == 2


def test_standard_error_scales_the_subset_spread_to_the_whole_sets():
    # Half of equal sets: the spread itself (and the Monte Carlo term of 100 subsets).
    assert kid_std_error(1.0, 500, 1000, 1000, 100) == pytest.approx((1 + 0.01) ** 0.5)
    # 1,000 of 10,000: (2/10⁴) / (2/10³ − 2/10⁴) = 1/9, plus 1/100.
    assert kid_std_error(1.0, 1000, 10_000, 10_000, 100) == pytest.approx((1 / 9 + 0.01) ** 0.5)
    assert kid_std_error(0.0, 200, 200, 200, 10) is None  # every subset is every point


def test_standard_error_matches_the_spread_over_independent_sets():
    """Away from 0 (a shifted set), the standard error of the mean over subsets is the spread of
    KID over new real and fake sets: measured 0.93–1.02 of it (40 repetitions); 15 here. From
    15 repetitions (14 degrees of freedom) a true ratio of 1.02 (0.93) stays below 4.0 (above
    0.45) but with probability 5e-7 each."""
    rng = np.random.default_rng(8)
    mixing = rng.standard_normal((16, 16)) / 4
    values, errors = [], []
    for seed in range(15):
        real = np.maximum(rng.standard_normal((300, 16)) @ mixing, 0)
        fake = np.maximum(rng.standard_normal((300, 16)) @ mixing, 0) + 0.15
        mean, std = kid(real, fake, subsets=30, seed=seed)
        values.append(mean)
        errors.append(kid_std_error(std, default_subset_size(300, 300), 300, 300, 30))
    assert 0.45 < np.mean(errors) / np.std(values, ddof=1) < 4.0
