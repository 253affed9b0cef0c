"""Pixel likelihoods: the continuous Bernoulli is a proper, stable density on [0, 1]; every
likelihood states where it is one."""

import math

import mpmath
import numpy as np
import pytest
import torch

from latentbench.models import LIKELIHOODS, ModelSpec, ModuleVAE, build_model
from latentbench.models.likelihoods import continuous_bernoulli_log_norm

EDGES = (1e-6, 0.5, 0.5 - 1e-7, 0.5 + 1e-7, 1 - 1e-6)


def cb_nll(lam, x, dtype=torch.float64):
    """−log p(x | λ) of single pixels, through the registered likelihood (one pixel per image)."""
    likelihood = LIKELIHOODS.get("continuous-bernoulli")(ModelSpec())
    lam = torch.as_tensor(lam, dtype=torch.float64)
    logits = torch.logit(lam).to(dtype).reshape(-1, 1, 1, 1)
    x = torch.as_tensor(x, dtype=dtype).reshape(-1, 1, 1, 1)
    return likelihood(logits.expand_as(x) if len(logits) == 1 else logits, x)


def mp_log_density(lam, x):
    """log p(x | λ) of the continuous Bernoulli at 50 digits (λ as given, a float)."""
    with mpmath.workdps(50):
        lam, x = mpmath.mpf(lam), mpmath.mpf(x)
        c = 2 if lam == 0.5 else 2 * mpmath.atanh(1 - 2 * lam) / (1 - 2 * lam)
        return float(x * mpmath.log(lam) + (1 - x) * mpmath.log(1 - lam) + mpmath.log(c))


@pytest.mark.parametrize("lam", [1e-6, 1e-3, 0.1, 0.3, 0.5 - 1e-7, 0.5, 0.5 + 1e-7, 0.8, 0.99,
                                 1 - 1e-6])
def test_the_density_integrates_to_one(lam):
    # p(x) = C λ^x (1 − λ)^(1−x) is an exponential in x: 64-point Gauss–Legendre is exact to
    # rounding on [0, 1].
    nodes, weights = np.polynomial.legendre.leggauss(64)
    x = (nodes + 1) / 2
    density = torch.exp(-cb_nll(torch.full((64,), lam), torch.from_numpy(x))).numpy()
    assert float(np.sum(weights / 2 * density)) == pytest.approx(1.0, abs=1e-6)


def test_matches_the_float64_formula_and_a_50_digit_reference():
    lams = np.array([1e-4, 0.01, 0.2, 0.4, 0.49, 0.51, 0.6, 0.9, 0.999])
    xs = np.linspace(0, 1, 11)
    lam, x = (a.ravel() for a in np.meshgrid(lams, xs))
    # The paper's formula in λ, away from ½ where it is 0/0.
    log_c = np.log(2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam))
    reference = x * np.log(lam) + (1 - x) * np.log1p(-lam) + log_c
    got = -cb_nll(lam, x).numpy()
    np.testing.assert_allclose(got, reference, rtol=1e-10, atol=1e-12)
    for lam_i, x_i, got_i in zip(lam[::7], x[::7], got[::7], strict=True):
        assert got_i == pytest.approx(mp_log_density(lam_i, x_i), rel=1e-12, abs=1e-13)


@pytest.mark.parametrize("lam", EDGES)
def test_finite_and_accurate_at_the_ends_and_at_one_half(lam):
    x = torch.tensor([0.0, 0.3, 1.0])
    lam64 = torch.full((3,), lam, dtype=torch.float64)
    exact = [mp_log_density(float(lam64[0]), float(xi)) for xi in x.double()]
    np.testing.assert_allclose(-cb_nll(lam64, x.double()).numpy(), exact, rtol=1e-12, atol=1e-12)
    # In float32 from float32 logits: finite, and as accurate as the logits are.
    got32 = -cb_nll(lam64, x, dtype=torch.float32)
    assert torch.isfinite(got32).all()
    np.testing.assert_allclose(got32.double().numpy(), exact, rtol=1e-5, atol=1e-5)
    logits = torch.logit(lam64.float()).requires_grad_()
    continuous_bernoulli_log_norm(logits).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_the_log_normaliser_is_smooth_across_the_series_threshold():
    logits = torch.linspace(-0.2, 0.2, 4001, dtype=torch.float64)
    exact = [float(mpmath.log(2) if v == 0 else mpmath.log(mpmath.mpf(v) / mpmath.tanh(
        mpmath.mpf(v) / 2))) for v in logits.tolist()]
    np.testing.assert_allclose(continuous_bernoulli_log_norm(logits).numpy(), exact, rtol=1e-14,
                               atol=1e-14)
    assert continuous_bernoulli_log_norm(torch.tensor([0.0])).item() == pytest.approx(math.log(2))
    big = continuous_bernoulli_log_norm(torch.tensor([-1e4, 1e4, -80.0]))
    assert torch.isfinite(big).all()


def test_every_likelihood_states_its_support():
    supports = {name: LIKELIHOODS.get(name).support for name in LIKELIHOODS}
    assert supports == {"bernoulli": "binary", "gaussian": "real", "gaussian-learned": "real",
                        "continuous-bernoulli": "unit-interval"}


def test_models_train_with_it_and_name_their_likelihood():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 8, 8)
    model = build_model(ModelSpec(likelihood="continuous-bernoulli", latent_dim=2, width=4,
                                  hidden=8), (1, 8, 8))
    terms = model.loss(x)
    terms.loss.backward()
    assert torch.isfinite(terms.loss) and model.pixel_likelihood == "continuous-bernoulli"
    plug_in = ModuleVAE(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4)),
                        torch.nn.Sequential(torch.nn.Linear(2, 64),
                                            torch.nn.Unflatten(1, (1, 8, 8))),
                        latent_dim=2, likelihood="continuous-bernoulli")
    assert plug_in.pixel_likelihood == "continuous-bernoulli"
    assert torch.isfinite(plug_in.loss(x).loss)
    assert build_model(ModelSpec(name="ae", latent_dim=2, width=4, hidden=8),
                       (1, 8, 8)).pixel_likelihood == "bernoulli"
