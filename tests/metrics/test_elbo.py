"""Rate, distortion and −ELBO: references from torch.distributions, and who gets them."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from latentbench.metrics import METRICS, EvalContext
from latentbench.models import ModelSpec, build_model, kl_normal


@pytest.fixture(scope="module")
def vae_and_images():
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", latent_dim=3, width=4, hidden=16), (1, 8, 8)).eval()
    images = torch.rand(400, 1, 8, 8, generator=torch.Generator().manual_seed(1)).round()
    return model, images


def compute(model, images, name, seed=0):
    return METRICS.get(name).compute(EvalContext(model, images, images, 128, seed)).value


def test_rate_is_the_mean_kl_of_the_posteriors(vae_and_images):
    model, images = vae_and_images
    with torch.no_grad():
        post = model.encode(images)
    reference = kl_divergence(Normal(post.mean.double(), post.logvar.double().mul(0.5).exp()),
                              Normal(0.0, 1.0)).sum(1).mean()
    assert compute(model, images, "rate") == pytest.approx(reference.item(), rel=1e-5)


def test_distortion_is_an_unbiased_estimate_of_the_expected_nll(vae_and_images):
    model, images = vae_and_images
    torch.manual_seed(2)  # q.sample draws from the global RNG: fixed, whatever ran before
    with torch.no_grad():
        post = model.encode(images)
        q = Normal(post.mean, post.logvar.mul(0.5).exp())
        draws = torch.stack([-Bernoulli(logits=model.decode(q.sample())).log_prob(images)
                             .flatten(1).sum(1) for _ in range(64)])
    expected = draws.mean().item()
    # Our estimate uses one z per image: its s.e. over 400 images bounds the difference (the
    # reference's own, over 64 × 400 draws, is 1/8 of it). One comparison at family error 1e-6:
    # z = Φ⁻¹(1 − 5e-7) = 4.9, so 5.
    standard_error = draws[0].std().item() / 400**0.5
    assert abs(compute(model, images, "distortion") - expected) < 5 * standard_error


def test_neg_elbo_is_distortion_plus_rate_and_reproducible(vae_and_images):
    model, images = vae_and_images
    d, r = compute(model, images, "distortion"), compute(model, images, "rate")
    assert compute(model, images, "neg_elbo") == pytest.approx(d + r, rel=1e-12)
    assert compute(model, images, "distortion") == d  # seeded: the same number twice


def test_rate_and_elbo_are_absent_for_a_deterministic_encoder():
    for name in ("rate", "neg_elbo"):
        assert not METRICS.get(name).applies_to({"encode", "sample"})
    assert METRICS.get("distortion").applies_to({"encode"})


def test_each_carries_its_per_image_standard_error_likelihood_and_binarisation(vae_and_images):
    model, images = vae_and_images
    ctx = EvalContext(model, images, images, 128, 0)
    tp = ctx.test_pass
    per_image = {"rate": tp.rate, "distortion": tp.distortion,
                 "neg_elbo": tp.distortion + tp.rate}
    # A context that does not say how the data were binarised gives "unknown".
    told = getattr(ctx, "binarize", None) or "unknown"
    for name, values in per_image.items():
        score = METRICS.get(name).compute(ctx)
        assert score.std_error == pytest.approx(float(values.std()) / len(values)**0.5,
                                                rel=1e-12)
        assert score.samples == 400
        # The KL to N(0, I) is exact: only the rate and the -ELBO say how it was computed.
        kl = {} if name == "distortion" else {"kl": "closed form"}
        assert score.details == {"std_error_method": "per-image std / sqrt(n)",
                                 "likelihood": "bernoulli", "binarize": told,
                                 "grey_pixels": 0.0, "proper_density": True, **kl}
    # Where the evaluation context says how the data were binarised, the score records it.
    ctx.binarize = "static"
    assert METRICS.get("neg_elbo").compute(ctx).details["binarize"] == "static"


def test_likelihood_metrics_say_whether_the_likelihood_is_a_density_on_the_data():
    torch.manual_seed(0)
    grey = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    for likelihood, proper in (("bernoulli", False), ("continuous-bernoulli", True),
                               ("gaussian", True)):
        model = build_model(ModelSpec(name="vae", latent_dim=3, width=4, hidden=16,
                                      likelihood=likelihood), (1, 8, 8)).eval()
        details = METRICS.get("distortion").compute(EvalContext(model, grey, grey, 32)).details
        assert details["likelihood"] == likelihood and details["proper_density"] is proper
        assert details["grey_pixels"] == 1.0


def test_the_bounds_are_registered_as_bounds_and_the_rate_is_not():
    for name in ("distortion", "neg_elbo"):
        assert METRICS.get(name).bound and METRICS.get(name).family == "likelihood"
    assert not METRICS.get("rate").bound and METRICS.get("rate").family == "likelihood"


def _with_prior(prior: str, **fields) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelSpec(name="vae", latent_dim=3, width=4, hidden=16, prior=prior,
                                 **fields), (1, 8, 8)).eval()


def test_rate_to_a_learned_prior_is_its_monte_carlo_kl_with_the_draws_stated():
    """The rate of a VAE with a mixture prior is E_x KL(q(z|x) ‖ p(z)) to that mixture: the
    mean of the 100-draw estimates lies within 6 of its own Monte-Carlo standard errors of a
    10,000-draw reference, and the details say how it was computed."""
    model = _with_prior("mog", prior_components=3)
    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)).round()
    ctx = EvalContext(model, images, images, 64, 0)
    score = METRICS.get("rate").compute(ctx)
    with torch.no_grad():
        post = model.encode(images)
        reference, variance = model.prior.kl_estimate(post.mean, post.logvar, 10_000,
                                                      torch.Generator().manual_seed(7))
    details = score.details
    assert details["kl"].startswith("Monte Carlo, 100 draws") and details["kl_samples"] == 100
    error = math.hypot(details["mc_std_error"], float(variance.sum().sqrt()) / len(variance))
    assert abs(score.value - float(reference.mean())) < 6 * error
    # Not the KL to N(0, I): the mixture's components sit elsewhere.
    assert abs(score.value - float(kl_normal(post.mean, post.logvar).mean())) > 20 * error
    assert METRICS.get("neg_elbo").compute(ctx).value == pytest.approx(
        float((ctx.test_pass.distortion + ctx.test_pass.rate).mean()), rel=1e-12)
