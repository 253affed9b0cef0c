"""The IWAE bound against a linear-Gaussian model whose log p(x) and true posterior are known in
closed form, and on a small trained VAE: L_1 is the ELBO in expectation and L_k rises with k."""

import itertools
import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from latentbench.metrics import METRICS, EvalContext
from latentbench.metrics.context import EvalSettings
from latentbench.metrics.iwae import iwae_bound
from latentbench.models import ModelSpec, build_model
from latentbench.models.protocol import LatentModel, Posterior

# x = W z + b + σ ε, z ~ N(0, I₂), x ∈ R⁴ (as 1 × 2 × 2 images). W's columns are orthogonal, so
# the true posterior, N(Σ Wᵀ(x − b)/σ², Σ) with Σ = (I + WᵀW/σ²)⁻¹, is diagonal and an encoder
# of the protocol's form can output it exactly.
WEIGHT = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
BIAS = torch.tensor([0.5, -0.3, 0.2, 0.1], dtype=torch.float64)
SIGMA = 0.5


class LinearGaussian(LatentModel):
    """The linear-Gaussian model in float64, with the exact posterior moved by ``shift`` and its
    variance multiplied by ``widen`` (1 and 0: the exact one)."""

    capabilities = frozenset({"encode", "variational", "sample"})
    latent_dim = 2

    def __init__(self, shift=0.0, widen=1.0):
        super().__init__()
        self.weight = nn.Parameter(WEIGHT.clone())
        self.shift, self.widen = shift, widen

    def true_posterior(self, x):
        variance = 1.0 / (1.0 + self.weight.square().sum(0) / SIGMA**2)
        mean = variance * ((x.flatten(1) - BIAS) @ self.weight) / SIGMA**2
        return mean, variance.expand_as(mean)

    def encode(self, x):
        mean, variance = self.true_posterior(x)
        return Posterior(mean=mean + self.shift, logvar=torch.log(variance * self.widen))

    def decode(self, z):
        return (z @ self.weight.T + BIAS).view(-1, 1, 2, 2)

    def reconstruction_nll(self, logits, x):
        # The decoder's output is the Gaussian mean itself here, not logits of pixel means.
        squared = (x - logits).square().flatten(1).sum(1)
        return squared / (2 * SIGMA**2) + 2 * math.log(2 * math.pi * SIGMA**2)

    def loss(self, x):
        raise NotImplementedError


def linear_gaussian_data(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(count, 2, generator=generator, dtype=torch.float64)
    noise = SIGMA * torch.randn(count, 4, generator=generator, dtype=torch.float64)
    x = z @ WEIGHT.T + BIAS + noise
    log_px = MultivariateNormal(BIAS, WEIGHT @ WEIGHT.T + SIGMA**2 * torch.eye(4)).log_prob(x)
    return x.view(count, 1, 2, 2), log_px


@torch.no_grad()
def test_with_the_true_posterior_every_weight_is_p_x():
    x, log_px = linear_gaussian_data(50)
    for k in (1, 7):
        bound = iwae_bound(LinearGaussian(), x, k, torch.Generator().manual_seed(k))
        assert torch.allclose(bound, log_px, rtol=1e-12, atol=1e-10)


@torch.no_grad()
def test_with_a_wrong_posterior_l1_falls_short_by_the_kl_and_l_k_closes_the_gap():
    model = LinearGaussian(shift=0.4, widen=2.0)
    x, log_px = linear_gaussian_data(400)
    mean, variance = model.true_posterior(x)
    q = model.encode(x)
    # E L_1 = log p(x) − KL(q(z|x) ‖ p(z|x)).
    kl = kl_divergence(Normal(q.mean, q.logvar.mul(0.5).exp()),
                       Normal(mean, variance.sqrt())).sum(1)
    generator = torch.Generator().manual_seed(0)
    gaps = {k: log_px - iwae_bound(model, x, k, generator, decode_batch=997)
            for k in (1, 10, 100, 1000)}
    # 25 draws of L_1 per image: the KL is then checked to ~1% of its 2.4 nats.
    one_draw = torch.stack([iwae_bound(model, x, 1, generator) for _ in range(25)])
    difference = log_px - one_draw.mean(0) - kl
    assert abs(difference.mean()) < 4 * difference.std() / math.sqrt(len(x))
    means = [float(gaps[k].mean()) for k in (1, 10, 100, 1000)]
    assert means == sorted(means, reverse=True)  # the gap shrinks with k ...
    assert 0 < means[-1] < 0.01 < means[0]  # ... towards 0 from above, log p(x) bounding it
    assert float(kl.mean()) > 0.3


@pytest.fixture(scope="module")
def trained_vae():
    """A VAE trained briefly on 8 × 8 images of one lit row and one lit column (64 patterns),
    with 1,000 held-out images. Its decoder unpools without switches: max-unpooling switches
    carry the image past the latent code, which then collapses."""
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", decoder="unpool-nearest", latent_dim=3, width=4,
                                  hidden=32), (1, 8, 8))
    images = lines_crossing(1600)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(400):
        batch = images[(step * 64) % 512:(step * 64) % 512 + 64]
        optimizer.zero_grad()
        model.loss(batch).loss.backward()
        optimizer.step()
    return model.eval(), images[600:]


def lines_crossing(count):
    rows, cols = torch.randint(8, (2, count), generator=torch.Generator().manual_seed(1))
    images = torch.zeros(count, 1, 8, 8)
    images[torch.arange(count), 0, rows, :] = 1.0
    images[torch.arange(count), 0, :, cols] = 1.0
    return images


@torch.no_grad()
def test_l1_is_the_elbo_in_expectation(trained_vae):
    # Untrained too, and with max-unpooling, whose switches must follow the importance samples.
    switching = build_model(ModelSpec(name="vae", decoder="unpool-max", latent_dim=3, width=4,
                                      hidden=32), (1, 8, 8)).eval()
    for model, images in (trained_vae, (switching, lines_crossing(300))):
        ctx = EvalContext(model, images, images, batch_size=64, seed=0)
        neg_elbo = ctx.test_pass.distortion + ctx.test_pass.rate
        # Paired per image, the difference is noise of the two estimates only.
        difference = -iwae_bound(model, images, 1, torch.Generator().manual_seed(5)) - neg_elbo
        assert abs(difference.mean()) < 4 * difference.std() / math.sqrt(len(images))
        assert METRICS.get("neg_elbo").compute(ctx).value == pytest.approx(float(neg_elbo.mean()))


@torch.no_grad()
def test_the_bound_rises_with_k(trained_vae):
    model, images = trained_vae
    generator = torch.Generator().manual_seed(0)
    bounds = [iwae_bound(model, images, k, generator) for k in (1, 10, 100)]
    for lower, higher in itertools.pairwise(bounds):
        # Paired per image: each step gains more than 3 standard errors of its noise (measured:
        # 15 and 9).
        gain = higher - lower
        assert gain.mean() > 3 * gain.std() / math.sqrt(len(images))


@torch.no_grad()
def test_the_metric_is_minus_the_mean_bound_reproducibly(trained_vae):
    model, images = trained_vae

    def score(k):
        ctx = EvalContext(model, images, images, batch_size=32, settings=EvalSettings(iwae_k=k))
        return METRICS.get("iwae_nll").compute(ctx)

    values = {k: score(k) for k in (1, 100)}
    assert values[1].value > values[100].value
    assert values[100].details["k"] == 100 and values[100].samples == len(images)
    # The standard error is that of the per-image bounds the metric averages.
    generator = torch.Generator().manual_seed(0)  # the context's, drawn batch after batch
    per_image = -torch.cat([iwae_bound(model, x, 100, generator) for x in images.split(32)])
    assert values[100].std_error == pytest.approx(float(per_image.std()) / len(images)**0.5,
                                                  rel=1e-12)
    assert values[100].value == pytest.approx(float(per_image.mean()), rel=1e-12)
    assert values[100].details["std_error_method"] == "per-image std / sqrt(n)"
    assert values[100].details["likelihood"] == "bernoulli"
    assert METRICS.get("iwae_nll").bound and METRICS.get("iwae_nll").family == "likelihood"
    assert score(100).value == values[100].value
    assert not METRICS.get("iwae_nll").applies_to({"encode", "sample"})


def test_bad_arguments_are_rejected():
    x, _ = linear_gaussian_data(3)
    with pytest.raises(ValueError, match="k: must be a positive integer"):
        iwae_bound(LinearGaussian(), x, 0)
    ae = build_model(ModelSpec(name="ae", latent_dim=2, width=4, hidden=16), (1, 8, 8))
    with pytest.raises(ValueError, match="deterministic encoder"):
        iwae_bound(ae, torch.rand(2, 1, 8, 8), 3)
