"""Property tests of the priors p(z) (``latentbench.models.priors``): densities, draws, KL terms.

Statistical bounds. A Monte-Carlo quantity is compared with its expectation within z standard
errors estimated from the same draws. Hypothesis draws the same examples on every run
(``derandomize``) and every noise source has a fixed seed, so a test that passes once passes
always; z is still sized so that *any* set of draws would pass but with probability ~1e-7 over
the m comparisons a test makes: z = 6 gives a two-sided normal tail of 2e-9 per comparison, so
m ≤ 120 comparisons fail together with probability < 3e-7 (the per-draw terms are χ²-like and
their std is estimated, which fattens the tail a little; 6 rather than Φ⁻¹(1 − 1e-7/(2m)) ≈ 5.9
covers that). A wrong sign, scale or log K misses by far more than 6 s.e.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from latentbench.models import InputError, ModelSpec, build_model, kl_normal, reparameterize
from latentbench.models.priors import (
    PRIORS,
    FlowPrior,
    MixturePrior,
    Prior,
    PriorSetting,
    StandardNormal,
    VampPrior,
    build_prior,
)

IMAGE_SHAPE = (1, 28, 28)
Z = 6.0  # standard errors of every Monte-Carlo bound (see the module docstring)
DRAWS = 20_000  # prior draws of the moment tests


# ----------------------------------------------------------------------------- helpers


def standard_normal_log_density(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last axis, by torch.distributions."""
    return Normal(torch.zeros_like(z), torch.ones_like(z)).log_prob(z).sum(-1)


def mog(means, logvars, logits) -> MixturePrior:
    """A float64 ``mog`` prior with the given parameters (K = len(logits))."""
    means = torch.as_tensor(means, dtype=torch.float64)
    prior = build_prior("mog", len(means), PriorSetting(means.shape[1])).double()
    with torch.no_grad():
        prior.means.copy_(means)
        prior.logvars.copy_(torch.as_tensor(logvars, dtype=torch.float64))
        prior.logits.copy_(torch.as_tensor(logits, dtype=torch.float64))
    return prior


def origin_mog(d: int) -> MixturePrior:
    """One component, mean 0 and log-variance 0: N(0, I) written as a mixture."""
    return mog(torch.zeros(1, d), torch.zeros(1, d), torch.zeros(1))


def identity_flow(d: int) -> FlowPrior:
    """A ``flow`` as built (zero last layers: every coupling is the identity), in float64."""
    torch.manual_seed(0)
    return build_prior("flow", None, PriorSetting(d)).double()


def random_flow(d: int, seed: int = 0, scale: float = 0.2) -> FlowPrior:
    """A float64 ``flow`` whose zero-initialised last layers are replaced by N(0, scale²)
    weights: a clearly non-Gaussian density (log |det| ranging over ~±1 nats in 2-d) whose
    mass stays well inside [-10, 10]² for seed 0."""
    torch.manual_seed(seed)
    flow = build_prior("flow", None, PriorSetting(d)).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for coupling in flow.couplings:
            for parameter in coupling.net[-1].parameters():
                parameter.copy_(scale * torch.randn(parameter.shape, generator=generator))
    return flow


def tiny_vae(prior: str | None, latent_dim: int = 4, components: int | None = None):
    torch.manual_seed(0)
    return build_model(ModelSpec(name="vae", prior=prior, prior_components=components,
                                 latent_dim=latent_dim, width=8, hidden=16), IMAGE_SHAPE)


def spread_vamp(latent_dim: int = 3, components: int = 4, seed: int = 0):
    """A tiny VAE with a ``vamp`` prior whose components are far apart: pseudo-inputs uniform
    in [-0.5, 1.5] (so the [0, 1] clipping bites) and the encoder's last layer ×20 (at
    initialisation its posteriors hardly depend on the input)."""
    model = tiny_vae("vamp", latent_dim, components)
    generator = torch.Generator().manual_seed(seed)
    last = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        pseudo = model.prior.pseudo_inputs
        pseudo.copy_(2.0 * torch.rand(pseudo.shape, generator=generator) - 0.5)
        last.weight.mul_(20.0)
    return model


def images(n: int = 6, seed: int = 0) -> Tensor:
    return torch.rand(n, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(seed))


def mixture_moments(weights: Tensor, means: Tensor, variances: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and covariance of Σ_k w_k N(m_k, diag v_k): Σ w m and Σ w (diag v + m mᵀ) − μμᵀ."""
    mean = (weights[:, None] * means).sum(0)
    second = (weights[:, None, None] * (torch.diag_embed(variances)
                                        + means[:, :, None] * means[:, None, :])).sum(0)
    return mean, second - mean[:, None] * mean[None, :]


def assert_moments(draws: Tensor, mean: Tensor, cov: Tensor) -> None:
    """Sample mean and covariance within Z standard errors estimated from the draws: the mean's
    s.e. is std/√n; a covariance entry is the mean of the centred products, its s.e. their
    std/√n (the centring at the sample mean changes it by O(1/n))."""
    draws, mean, cov = draws.double(), mean.double(), cov.double()
    n = len(draws)
    mean_error = (draws.mean(0) - mean).abs()
    assert (mean_error <= Z * draws.std(0) / math.sqrt(n)).all(), (draws.mean(0), mean)
    centred = draws - draws.mean(0)
    products = centred[:, :, None] * centred[:, None, :]  # [n, d, d]
    cov_error = (products.mean(0) - cov).abs()
    assert (cov_error <= Z * products.std(0) / math.sqrt(n) + 1e-12).all(), (
        products.mean(0), cov)


def vamp_components(model) -> tuple[Tensor, Tensor]:
    """The encoder's own posterior means and log-variances at the [0, 1]-clipped
    pseudo-inputs (``clamp``, not the prior's ``hardtanh``)."""
    posterior = model.encode(model.prior.pseudo_inputs.clamp(0.0, 1.0))
    return posterior.mean.flatten(1), posterior.logvar.flatten(1)


@st.composite
def posteriors(draw, min_dims: int = 1, max_dims: int = 4, max_images: int = 3):
    """Diagonal-Gaussian posteriors ``[N, d]`` in float64, mean in [-3, 3], log-variance in
    [-4, 2] (bounded, so the one-sample KL terms have modest variance)."""
    n = draw(st.integers(1, max_images))
    d = draw(st.integers(min_dims, max_dims))
    mean = draw(st.lists(st.floats(-3.0, 3.0), min_size=n * d, max_size=n * d))
    logvar = draw(st.lists(st.floats(-4.0, 2.0), min_size=n * d, max_size=n * d))
    shape = (n, d)
    return (torch.tensor(mean, dtype=torch.float64).reshape(shape),
            torch.tensor(logvar, dtype=torch.float64).reshape(shape))


seeds = st.integers(0, 2**31 - 1)

# ------------------------------------------------- 1, 2: N(0, I) written as a mog or a flow

STANDARD_NORMAL_EQUIVALENTS = {
    "normal": lambda d: StandardNormal(PriorSetting(d)),
    "mog K=1 at origin": origin_mog,
    "identity flow": identity_flow,
}


@pytest.mark.parametrize("make", STANDARD_NORMAL_EQUIVALENTS.values(),
                         ids=STANDARD_NORMAL_EQUIVALENTS.keys())
@pytest.mark.parametrize("d", [2, 5])
def test_standard_normal_equivalents_have_its_log_density(make, d):
    """``normal``, a one-component ``mog`` at (0, I) and a ``flow`` as built are all N(0, I):
    their log_prob is torch's standard normal log density, to float64 rounding (1e-12)."""
    z = 3.0 * torch.randn(4, 7, d, generator=torch.Generator().manual_seed(d),
                          dtype=torch.float64)
    log_p = make(d).log_prob(z)
    assert log_p.shape == (4, 7)
    torch.testing.assert_close(log_p, standard_normal_log_density(z), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [origin_mog, identity_flow], ids=["mog K=1", "identity flow"])
@settings(derandomize=True, deadline=None, max_examples=20)
@given(pair=posteriors(min_dims=2), seed=seeds)
def test_monte_carlo_kl_of_standard_normal_equivalents_is_the_closed_form(make, pair, seed):
    """``kl_estimate`` of a prior equal to N(0, I) estimates ``kl_normal``: within Z of its own
    returned s.e. (√variance). m = 20 examples × ≤ 3 posteriors = 60 comparisons per prior.
    (1e-9 absolute: at μ = 0, ℓ = 0 the terms are 0 up to rounding, and so is the s.e.)"""
    mean, logvar = pair
    prior = make(mean.shape[1])
    kl, variance = prior.kl_estimate(mean, logvar, 2000, torch.Generator().manual_seed(seed))
    assert kl.dtype == variance.dtype == torch.float64 and kl.shape == variance.shape == (
        len(mean),)
    assert ((kl - kl_normal(mean, logvar)).abs() <= Z * variance.sqrt() + 1e-9).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normal_kl_estimate_is_its_closed_form(dtype):
    """``normal`` has an exact KL: ``kl_estimate`` gives ``kl_normal`` (in the inputs' dtype),
    variance None, whatever the sample count."""
    mean = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=dtype)
    logvar = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=dtype)
    kl, variance = StandardNormal(PriorSetting(4)).kl_estimate(mean, logvar, 7)
    assert variance is None and kl.dtype == dtype
    torch.testing.assert_close(kl, kl_normal(mean, logvar))


# ------------------------------------------------------------------ 2: a flow with weights


def test_flow_couplings_invert_and_their_log_det_is_the_jacobians():
    """Each coupling of a random-weight flow (d = 5, odd: unequal halves) is inverted by its
    ``inverse``, and its log |det| is that of the autograd Jacobian (float64, 1e-10)."""
    flow = random_flow(5)
    z = 2.0 * torch.randn(8, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for coupling in flow.couplings:
        u, log_det = coupling(z)
        assert not torch.allclose(u, z)  # the weights are not the identity
        torch.testing.assert_close(coupling.inverse(u), z, rtol=1e-10, atol=1e-10)
        for point, step in zip(z, log_det, strict=True):
            jacobian = torch.autograd.functional.jacobian(lambda v, c=coupling: c(v)[0], point)
            torch.testing.assert_close(step, torch.linalg.slogdet(jacobian).logabsdet,
                                       rtol=1e-10, atol=1e-10)
        z = u


def test_flow_log_prob_of_its_samples_is_the_change_of_variables():
    """``sample`` pushes ε ~ N(0, I) through f⁻¹; then log p(z) = log N(ε) − log |det ∂f⁻¹/∂ε|,
    the Jacobian by autograd of the draws as a function of the noise (the same seed gives the
    same ε as ``torch.randn``). Ties ``sample`` and ``log_prob`` to one density (1e-10)."""
    flow = random_flow(5)
    z = flow.sample(16, torch.Generator().manual_seed(2))
    eps = torch.randn(16, 5, generator=torch.Generator().manual_seed(2)).double()

    def draws_of(noise: Tensor) -> Tensor:
        for coupling in reversed(flow.couplings):
            noise = coupling.inverse(noise)
        return noise

    torch.testing.assert_close(z, draws_of(eps))
    log_det = torch.stack([
        torch.linalg.slogdet(torch.autograd.functional.jacobian(draws_of, e)).logabsdet
        for e in eps])
    expected = standard_normal_log_density(eps) - log_det
    torch.testing.assert_close(flow.log_prob(z), expected, rtol=1e-10, atol=1e-10)


def test_flow_density_integrates_to_one_and_its_samples_have_its_moments():
    """A random-weight flow in 2-d: exp(log_prob) on a 201² midpoint grid over [-10, 10]²
    integrates to 1 within 1e-3 (grid and tail error ~1e-5 here; a sign error in the log-det
    gives ~10 %), and 20,000 draws have the grid's mean and covariance within Z s.e.
    (5 comparisons)."""
    flow = random_flow(2)
    half, points = 10.0, 201
    step = 2 * half / points
    axis = -half + step * (torch.arange(points, dtype=torch.float64) + 0.5)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        mass = flow.log_prob(grid).exp() * step**2
    assert mass.sum().item() == pytest.approx(1.0, abs=1e-3)
    mean = (mass[:, None] * grid).sum(0)
    cov = (mass[:, None, None] * grid[:, :, None] * grid[:, None, :]).sum(0) - mean.outer(mean)
    assert (cov.diag() - 1.0).abs().max() > 0.2  # not N(0, I): the test can tell them apart
    assert_moments(flow.sample(DRAWS, torch.Generator().manual_seed(3)), mean, cov)


# --------------------------------------------------------------------------------- 3: vamp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vamp_log_prob_is_the_mean_of_the_encoder_posteriors(seed):
    """log p(z) = log (1/K) Σ_k N(z; μ(u_k), diag σ²(u_k)), the encoder's posteriors at the
    [0, 1]-clipped pseudo-inputs, by torch.distributions (float32, to 1e-5)."""
    model = spread_vamp(latent_dim=3, components=5, seed=seed)
    z = 1.5 * torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        means, logvars = vamp_components(model)
        components = Independent(Normal(means, torch.exp(0.5 * logvars)), 1)
        expected = torch.logsumexp(components.log_prob(z[..., None, :]), -1) - math.log(5)
        unclipped = model.encode(model.prior.pseudo_inputs).mean
        log_p = model.prior.log_prob(z)
    assert (unclipped - means).abs().max() > 0.1  # the clipping matters to the encoder
    assert (means - means.mean(0)).abs().max() > 0.1  # distinct components
    torch.testing.assert_close(log_p, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------ 4: MC KL against a Gaussian prior


def gaussian_kl(mean: Tensor, logvar: Tensor, m: Tensor, s: Tensor) -> Tensor:
    """KL(N(μ, e^ℓ) ‖ N(m, e^s)) = ½ Σ (s − ℓ + (e^ℓ + (μ − m)²) e^{−s} − 1)."""
    return 0.5 * (s - logvar + (logvar.exp() + (mean - m).square()) * (-s).exp() - 1).sum(-1)


def kl_term_variance(mean: Tensor, logvar: Tensor, m: Tensor, s: Tensor) -> Tensor:
    """Variance of one term log q(z) − log p(z), z = μ + σε: per dimension a ε² + b ε + c with
    a = ½(σ² e^{−s} − 1), b = σ (μ − m) e^{−s}, so Var = Σ (2a² + b²)."""
    sigma = torch.exp(0.5 * logvar)
    a = 0.5 * (sigma.square() * (-s).exp() - 1)
    b = sigma * (mean - m) * (-s).exp()
    return (2 * a.square() + b.square()).sum(-1)


@settings(derandomize=True, deadline=None, max_examples=20)
@given(pair=posteriors(max_images=1, max_dims=3), prior=st.data(), seed=seeds)
def test_monte_carlo_kl_converges_to_the_closed_form_for_a_gaussian_prior(pair, prior, seed):
    """One-component ``mog`` at (m, e^s): ``kl_estimate`` matches the closed-form Gaussian KL
    within Z returned s.e. at S = 4000 and 16000 (40 comparisons), and its variance is the
    estimator's, Var(term)/S: within a factor 2 of the analytic one at each S, so the ratio
    of the two is 4 (1/√S error), checked within [2, 8]. Factor 2 is ≥ 8 s.e. of a sample
    variance (relative s.e. √((κ − 1)/S) ≤ √(14/4000) = 0.06, κ ≤ 15 for these χ²-like
    terms)."""
    mean, logvar = pair
    d = mean.shape[1]
    m = torch.tensor(prior.draw(st.lists(st.floats(-3.0, 3.0), min_size=d, max_size=d)),
                     dtype=torch.float64)
    s = torch.tensor(prior.draw(st.lists(st.floats(-2.0, 2.0), min_size=d, max_size=d)),
                     dtype=torch.float64)
    gaussian = mog(m[None], s[None], torch.zeros(1))
    exact = gaussian_kl(mean, logvar, m, s)
    term_variance = kl_term_variance(mean, logvar, m, s)
    variances = {}
    for offset, samples in enumerate((4000, 16_000)):
        generator = torch.Generator().manual_seed(seed + offset)
        kl, variance = gaussian.kl_estimate(mean, logvar, samples, generator)
        assert ((kl - exact).abs() <= Z * variance.sqrt() + 1e-9).all()
        if term_variance.item() > 1e-6:  # else the prior is the posterior: terms ≈ 0
            assert 0.5 <= (samples * variance / term_variance).item() <= 2.0
        variances[samples] = variance
    if term_variance.item() > 1e-6:
        assert 2.0 <= (variances[4000] / variances[16_000]).item() <= 8.0


# ------------------------------------------------------------------ 5: moments of the draws

MOG_MEANS = [[2.0, 2.0, 0.0], [-2.0, -1.0, 1.0], [0.0, 3.0, -2.0]]
MOG_LOGVARS = [[0.0, -1.0, 0.5], [-0.5, 0.0, 0.0], [1.0, -2.0, -1.0]]
MOG_LOGITS = [0.0, 1.0, -1.0]  # weights 0.24, 0.67, 0.09


def normal_case():
    return StandardNormal(PriorSetting(3)), torch.zeros(3), torch.eye(3)


def mog_case():
    prior = mog(MOG_MEANS, MOG_LOGVARS, MOG_LOGITS)
    weights = torch.softmax(torch.tensor(MOG_LOGITS, dtype=torch.float64), 0)
    means = torch.tensor(MOG_MEANS, dtype=torch.float64)
    return prior, *mixture_moments(weights, means, torch.tensor(MOG_LOGVARS).double().exp())


def vamp_case():
    model = spread_vamp(latent_dim=3, components=4)
    with torch.no_grad():
        means, logvars = vamp_components(model)
    return model.prior, *mixture_moments(torch.full((4,), 0.25), means, logvars.exp())


def flow_case():
    return identity_flow(3), torch.zeros(3), torch.eye(3)


MOMENT_CASES = {"normal": normal_case, "mog": mog_case, "vamp": vamp_case, "flow": flow_case}


@pytest.mark.parametrize("case", MOMENT_CASES.values(), ids=MOMENT_CASES.keys())
def test_prior_draws_have_the_prior_moments(case):
    """20,000 draws have the prior's mean and full covariance (for a mixture Σ w (diag σ² +
    μμᵀ) − mean meanᵀ; off-diagonal entries catch a component drawn per coordinate) within
    Z s.e.: 3 means + 6 covariances per prior, 36 comparisons over the four."""
    prior, mean, cov = case()
    draws = prior.sample(DRAWS, torch.Generator().manual_seed(5))
    assert draws.shape == (DRAWS, 3)
    assert_moments(draws, mean, cov)


# ------------------------------------------- 6: seeds, backwards compatibility, errors, grads

SAMPLERS = {
    "normal": lambda: StandardNormal(PriorSetting(4)),
    "mog": lambda: tiny_vae("mog", components=3).prior,
    "vamp": lambda: tiny_vae("vamp", components=3).prior,
    "flow": lambda: random_flow(4),
}


@pytest.mark.parametrize("make", SAMPLERS.values(), ids=SAMPLERS.keys())
def test_seeded_draws_repeat_exactly(make):
    """``sample`` is a function of the generator's seed: the same seed gives identical draws,
    another seed different ones."""
    prior = make()
    first = prior.sample(50, torch.Generator().manual_seed(11))
    assert torch.equal(first, prior.sample(50, torch.Generator().manual_seed(11)))
    assert not torch.equal(first, prior.sample(50, torch.Generator().manual_seed(12)))


def test_normal_draws_are_the_draws_of_models_before_priors():
    """Backwards compatibility: ``normal`` draws exactly ``torch.randn(n, d, generator=g)``,
    as a VAE's ``sample_latent`` did before priors existed."""
    prior = StandardNormal(PriorSetting(6))
    expected = torch.randn(9, 6, generator=torch.Generator().manual_seed(4))
    assert torch.equal(prior.sample(9, torch.Generator().manual_seed(4)), expected)
    assert torch.equal(tiny_vae(None, latent_dim=6).sample_latent(
        9, torch.Generator().manual_seed(4)), expected)


@pytest.mark.parametrize("name", ["normal", "flow"])
def test_components_are_refused_for_priors_without_them(name):
    """``model.prior_components`` for a prior without components is an error naming the
    field, never silently ignored."""
    with pytest.raises(InputError, match="model.prior_components"):
        build_prior(name, 3, PriorSetting(4))
    with pytest.raises(InputError, match="model.prior_components"):
        tiny_vae(name, components=3)


def test_unknown_prior_is_refused_with_the_choices():
    """An unknown ``model.prior`` raises InputError listing every registered prior."""
    with pytest.raises(InputError, match="model.prior") as error:
        build_prior("gaussian", None, PriorSetting(4))
    for name in ("normal", "mog", "vamp", "flow"):
        assert name in str(error.value)
    assert set(PRIORS) >= {"normal", "mog", "vamp", "flow"}


def test_flow_needs_two_latent_dimensions():
    """A coupling splits the coordinates in two halves: ``flow`` with d = 1 is an InputError."""
    with pytest.raises(InputError, match="latent_dim"):
        build_prior("flow", None, PriorSetting(1))


@pytest.mark.parametrize("name", ["mog", "vamp", "flow"])
def test_every_prior_parameter_gets_a_gradient_from_the_vae_loss(name):
    """The prior trains with the model: ``model.loss(x).loss.backward()`` gives every prior
    parameter a finite, non-zero gradient. A new flow's couplings are the identity (zero last
    layers), so only the last layers get a gradient at first; with them non-zero, all do."""
    model = tiny_vae(name)
    if isinstance(model.prior, FlowPrior):
        model.loss(images()).loss.backward()
        for coupling in model.prior.couplings:
            assert coupling.net[-1].weight.grad.abs().sum() > 0
        model.zero_grad()
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for coupling in model.prior.couplings:
                for parameter in coupling.net[-1].parameters():
                    parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    model.loss(images()).loss.backward()
    named = dict(model.prior.named_parameters())
    assert named
    for label, parameter in named.items():
        assert parameter.grad is not None, label
        assert torch.isfinite(parameter.grad).all(), label
        assert parameter.grad.abs().sum() > 0, label


# ---------------------------------------------------------------------- 7: loss convention


def test_vae_loss_kl_is_the_batch_mean_of_the_one_sample_estimate():
    """With a ``mog`` prior the loss's ``kl`` is mean over the batch of log q(z|x) − log p(z)
    summed over latents, at the z the loss draws (same global seed), computed here with
    torch.distributions (float32, 1e-5)."""
    model = tiny_vae("mog", components=3)
    prior = model.prior
    generator = torch.Generator().manual_seed(8)
    with torch.no_grad():
        prior.means.copy_(torch.randn(prior.means.shape, generator=generator))
        prior.logvars.copy_(0.5 * torch.randn(prior.logvars.shape, generator=generator))
        prior.logits.copy_(torch.tensor([0.5, -1.0, 1.0]))
    x = images()
    torch.manual_seed(123)
    kl = model.loss(x).parts["kl"]
    torch.manual_seed(123)
    with torch.no_grad():
        posterior = model.encode(x)
        z = reparameterize(posterior.mean, posterior.logvar)
        q = Independent(Normal(posterior.mean, torch.exp(0.5 * posterior.logvar)), 1)
        p = MixtureSameFamily(Categorical(logits=prior.logits),
                              Independent(Normal(prior.means, torch.exp(0.5 * prior.logvars)), 1))
        expected = (q.log_prob(z) - p.log_prob(z)).mean()
        assert (expected - kl_normal(posterior.mean, posterior.logvar).mean()).abs() > 0.1
        torch.testing.assert_close(prior.kl(posterior.mean, posterior.logvar, z).mean(),
                                   expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(kl.detach(), expected, rtol=1e-5, atol=1e-5)


def test_prior_classes_are_the_registered_ones():
    """The registry maps each name to its class, and every class is a :class:`Prior`."""
    expected = {"normal": StandardNormal, "mog": MixturePrior, "vamp": VampPrior,
                "flow": FlowPrior}
    for name, cls in expected.items():
        assert PRIORS.get(name) is cls and issubclass(cls, Prior)


PLUGIN_PRIOR = '''
import torch
from latentbench.models import Prior


class Laplace(Prior):
    """A factorised standard Laplace prior: log p(z) = sum_d (-|z_d| - log 2)."""

    def __init__(self, setting):
        super().__init__()
        self.latent_dim = setting.latent_dim

    def describe(self):
        return "laplace"

    def log_prob(self, z):
        return (-z.abs() - torch.log(torch.tensor(2.0))).sum(-1)

    def sample(self, n, generator=None):
        u = torch.rand(n, self.latent_dim, generator=generator) - 0.5
        return -torch.sign(u) * torch.log1p(-2 * u.abs())
'''


def test_a_plugin_prior_trains_and_is_scored_through_the_same_protocol(tmp_path, monkeypatch):
    """``model.prior = "module:Class"`` builds a user's Prior: its log-density is the loss's
    KL term, the rate is its Monte-Carlo KL, and the scores record it by its own
    description."""
    from latentbench.benchmarks.config import EvalSpec
    from latentbench.benchmarks.evaluate import evaluate

    (tmp_path / "my_priors.py").write_text(PLUGIN_PRIOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", latent_dim=3, width=4, hidden=8,
                                  prior="my_priors:Laplace"), (1, 8, 8))
    assert model.prior.registry_name == "my_priors:Laplace"
    images = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    terms = model.loss(images)
    torch.manual_seed(1)
    with torch.no_grad():
        post = model.encode(images)
        z = reparameterize(post.mean, post.logvar)
        expected = (Normal(post.mean, (0.5 * post.logvar).exp()).log_prob(z).sum(-1)
                    - model.prior.log_prob(z)).mean()
    assert float(terms.parts["kl"].detach()) == pytest.approx(float(expected), rel=1e-5)
    result = evaluate(model.eval(), images, images, EvalSpec(metrics=("rate", "prior_holes")),
                      seed=0)
    assert result.details["rate"]["prior"] == "laplace"
    assert result.details["rate"]["kl_samples"] == 100
    assert result.values["rate"] != pytest.approx(float(kl_normal(post.mean, post.logvar).mean()),
                                                  rel=1e-3)
    with pytest.raises(InputError, match="model.prior_components: prior 'my_priors:Laplace'"):
        build_model(ModelSpec(name="vae", prior="my_priors:Laplace", prior_components=2),
                    (1, 8, 8))
