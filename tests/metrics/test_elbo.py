"""Rate, distortion and −ELBO: references from torch.distributions, and who gets them."""

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from latentbench.metrics import METRICS, EvalContext
from latentbench.models import ModelSpec, build_model


@pytest.fixture(scope="module")
def vae_and_images():
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", latent_dim=3, width=4, hidden=16), (1, 8, 8)).eval()
    images = torch.rand(400, 1, 8, 8, generator=torch.Generator().manual_seed(1)).round()
    return model, images


def compute(model, images, name, seed=0):
    return METRICS.get(name).compute(EvalContext(model, images, images, 128, seed))


def test_rate_is_the_mean_kl_of_the_posteriors(vae_and_images):
    model, images = vae_and_images
    with torch.no_grad():
        post = model.encode(images)
    reference = kl_divergence(Normal(post.mean.double(), post.logvar.double().mul(0.5).exp()),
                              Normal(0.0, 1.0)).sum(1).mean()
    assert compute(model, images, "rate") == pytest.approx(reference.item(), rel=1e-5)


def test_distortion_is_an_unbiased_estimate_of_the_expected_nll(vae_and_images):
    model, images = vae_and_images
    with torch.no_grad():
        post = model.encode(images)
        q = Normal(post.mean, post.logvar.mul(0.5).exp())
        draws = torch.stack([-Bernoulli(logits=model.decode(q.sample())).log_prob(images)
                             .flatten(1).sum(1) for _ in range(64)])
    expected = draws.mean().item()
    # Our estimate uses one z per image: its s.e. over 400 images bounds the difference.
    standard_error = draws[0].std().item() / 400**0.5
    assert abs(compute(model, images, "distortion") - expected) < 4 * standard_error


def test_neg_elbo_is_distortion_plus_rate_and_reproducible(vae_and_images):
    model, images = vae_and_images
    d, r = compute(model, images, "distortion"), compute(model, images, "rate")
    assert compute(model, images, "neg_elbo") == pytest.approx(d + r, rel=1e-12)
    assert compute(model, images, "distortion") == d  # seeded: the same number twice


def test_rate_and_elbo_are_absent_for_a_deterministic_encoder():
    for name in ("rate", "neg_elbo"):
        assert not METRICS.get(name).applies_to({"encode", "sample"})
    assert METRICS.get("distortion").applies_to({"encode"})
