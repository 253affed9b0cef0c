"""The IWAE bound against a linear-Gaussian model whose log p(x), true posterior and weight
variance are known in closed form, and on a small trained VAE: L_1 is the ELBO in expectation,
L_k rises with k, the fast implementation gives the values of the one it replaced on the same
draws, and the Monte-Carlo standard error matches a known answer and the spread over seeds.

Statistical bounds are 5 standard errors of the compared quantity with fixed seeds: at most a
dozen such comparisons in this file, so a Bonferroni 5σ bound (two-sided p ≈ 6e-7 each) cannot
fail by chance."""

import itertools
import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from latentbench.benchmarks.config import EvalSpec, RunConfig, parse_section
from latentbench.metrics import METRICS, EvalContext
from latentbench.metrics.context import EvalSettings
from latentbench.metrics.iwae import (
    DRAW_BATCH,
    decode_rows_for_memory,
    default_decode_batch,
    iwae_bound,
    iwae_estimate,
)
from latentbench.models import ModelSpec, build_model
from latentbench.models.protocol import LatentModel, Posterior
from latentbench.models.registry import InputError

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
    with pytest.raises(ValueError, match="decode_batch: must be a positive integer"):
        iwae_bound(LinearGaussian(), x, 3, decode_batch=0)
    ae = build_model(ModelSpec(name="ae", latent_dim=2, width=4, hidden=16), (1, 8, 8))
    with pytest.raises(ValueError, match="deterministic encoder"):
        iwae_bound(ae, torch.rand(2, 1, 8, 8), 3)


def weight_relative_variance(model, x):
    """Var(w)/E[w]² of the importance weights of the linear-Gaussian model, exactly.

    w = p(x) p(z|x)/q(z|x), so E w = p(x) and E w²/p(x)² = ∫ p(z|x)²/q(z|x) dz, a Gaussian
    integral per (diagonal) dimension: with p(z|x) = N(m, s²) and q = N(μ, v) the integrand is
    √(2πv)/(2πs²) exp(−a z² + b z + c), a = 1/s² − 1/(2v) (> 0: q is wide enough), whose
    integral is √(π/a) exp(b²/4a + c)."""
    m, s2 = model.true_posterior(x)
    q = model.encode(x)
    mu, v = q.mean, q.logvar.exp()
    a = 1 / s2 - 1 / (2 * v)
    b, c = 2 * m / s2 - mu / v, -m.square() / s2 + mu.square() / (2 * v)
    log_integral = (0.5 * torch.log(2 * math.pi * v) - torch.log(2 * math.pi * s2)
                    + 0.5 * torch.log(math.pi / a) + b.square() / (4 * a) + c)
    return torch.expm1(log_integral.sum(1)).detach()


@torch.no_grad()
def test_the_delta_method_variance_has_its_known_value():
    # Var log p̂ ≈ Var(w)/(k E[w]²), known exactly here (ρ = 4.3 for every image). At k = 1,000
    # the ratio estimator's own bias is ~0.1 %; per image its spread is ~7 % (measured), so the
    # mean over 200 images is checked to 5 standard errors, ~2.4 %.
    model = LinearGaussian(shift=0.4, widen=2.0)
    x, _ = linear_gaussian_data(200)
    k = 1000
    estimate = iwae_estimate(model, x, k, torch.Generator().manual_seed(0))
    ratio = estimate.mc_variance / (weight_relative_variance(model, x) / k)
    assert abs(float(ratio.mean()) - 1) < 5 * float(ratio.std()) / math.sqrt(len(x))
    assert float(ratio.std()) < 0.2  # each image's estimate is good to ~7 % on its own


@torch.no_grad()
def test_the_delta_method_variance_matches_the_spread_over_seeds():
    # 100 independent estimates of 200 images at k = 100: each image's variance over the seeds
    # against its mean delta-method variance. The per-image ratio spreads by √(2/99) ≈ 14 %
    # (measured 14.5 %), so the mean over images has a standard error of ~1 %; on top, the delta
    # method is first order and understates Var log p̂ by O(ρ/k) (measured 3.7 %, ρ/k = 4.3 %).
    model = LinearGaussian(shift=0.4, widen=2.0)
    x, _ = linear_gaussian_data(200)
    k, generator = 100, torch.Generator().manual_seed(1)
    estimates = [iwae_estimate(model, x, k, generator, decode_batch=DRAW_BATCH)
                 for _ in range(100)]
    spread = torch.stack([e.bound for e in estimates]).var(0)
    delta = torch.stack([e.mc_variance for e in estimates]).mean(0)
    ratio = spread / delta
    first_order = float(weight_relative_variance(model, x).mean()) / k
    tolerance = 5 * float(ratio.std()) / math.sqrt(len(x)) + first_order
    assert abs(float(ratio.mean()) - 1) < tolerance
    assert tolerance < 0.12  # still tells a variance off by an eighth


@torch.no_grad()
def test_with_the_true_posterior_the_mc_variance_is_zero():
    x, _ = linear_gaussian_data(20)
    estimate = iwae_estimate(LinearGaussian(), x, 9, torch.Generator().manual_seed(0))
    assert estimate.k == 9 and torch.all(estimate.mc_variance.abs() < 1e-12)
    single = iwae_estimate(LinearGaussian(), x, 1, torch.Generator().manual_seed(0))
    assert torch.isnan(single.mc_variance).all()


def record_draws(monkeypatch):
    """The shapes of every ``torch.randn`` call from now on, in order."""
    shapes, randn = [], torch.randn

    def recording(*size, **kwargs):
        shapes.append(tuple(size))
        return randn(*size, **kwargs)

    monkeypatch.setattr(torch, "randn", recording)
    return shapes


@pytest.mark.parametrize("decode_batch", [None, 7, 100, 250, 997, 5000])
@torch.no_grad()
def test_the_values_are_the_reference_implementations_on_the_same_draws(
        trained_vae, decode_batch, monkeypatch, reference_iwae_bound):
    # Odd batch sizes: decoder calls that split one copy of the batch, join several and cross
    # the generator calls' boundaries. unpool-max: the switches must follow their images.
    model, images = trained_vae
    switching = build_model(ModelSpec(name="vae", decoder="unpool-max", latent_dim=3, width=4,
                                      hidden=32), (1, 8, 8)).eval()
    for net, x in ((model, images[:250]), (switching, lines_crossing(120))):
        shapes = record_draws(monkeypatch)
        reference_generator = torch.Generator().manual_seed(3)
        reference = reference_iwae_bound(net, x, 37, reference_generator)
        reference_shapes, shapes[:] = list(shapes), []
        generator = torch.Generator().manual_seed(3)
        estimate = iwae_estimate(net, x, 37, generator, decode_batch=decode_batch)
        assert shapes == reference_shapes  # the same generator calls, in the same order
        assert torch.equal(generator.get_state(), reference_generator.get_state())
        assert torch.allclose(estimate.bound, reference, rtol=1e-6, atol=0)
        monkeypatch.undo()


def test_the_default_decoder_batch_and_draws():
    assert DRAW_BATCH == 4096  # the draws of every published result; never change it
    cpu = torch.device("cpu")
    assert default_decode_batch(cpu, 28 * 28) == 256  # the quick suite's images
    assert default_decode_batch(cpu, 8 * 8) == 3136  # small images: per-call overhead counts
    assert default_decode_batch(cpu, 4) == DRAW_BATCH and default_decode_batch(cpu, 10**7) == 1
    assert default_decode_batch(torch.device("cuda"), 784) is None  # sized to its memory
    # CUDA: a power of two within [DRAW_BATCH, maximum] taking at most the fraction.
    assert decode_rows_for_memory(8e9, 2e5, fraction=0.25) == 8192
    assert decode_rows_for_memory(1e6, 2e5) == DRAW_BATCH  # never below today's batch
    assert decode_rows_for_memory(1e15, 1.0, maximum=1 << 17) == 1 << 17
    assert decode_rows_for_memory(1e9, 0.0, maximum=1 << 12) == 1 << 12


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@torch.no_grad()
def test_on_cuda_the_batch_sized_to_memory_gives_the_cpu_values(trained_vae,
                                                                reference_iwae_bound):
    model, images = trained_vae
    cpu = reference_iwae_bound(model, images, 50, torch.Generator().manual_seed(0))
    on_gpu = iwae_estimate(model.to("cuda"), images.to("cuda"), 50,
                           torch.Generator().manual_seed(0))
    model.to("cpu")
    assert torch.allclose(on_gpu.bound, cpu, rtol=1e-5, atol=0)


@torch.no_grad()
def test_images_and_k_are_honoured_and_both_errors_recorded(trained_vae):
    model, images = trained_vae
    settings = EvalSettings(iwae_k=7, iwae_images=90)
    ctx = EvalContext(model, images, images, batch_size=32, settings=settings)
    score = METRICS.get("iwae_nll").compute(ctx)
    generator = torch.Generator().manual_seed(0)  # the context's, drawn batch after batch
    parts = [iwae_estimate(model, x, 7, generator) for x in images[:90].split(32)]
    per_image = -torch.cat([p.bound for p in parts])
    variance = torch.cat([p.mc_variance for p in parts])
    assert score.samples == 90 and score.details["images"] == 90 and score.details["k"] == 7
    assert score.value == pytest.approx(float(per_image.mean()), rel=1e-12)
    assert score.std_error == pytest.approx(float(per_image.std()) / math.sqrt(90), rel=1e-12)
    assert score.details["mc_std_error"] == pytest.approx(
        math.sqrt(float(variance.sum())) / 90, rel=1e-12)
    # The sampling error is a small part of the test-set error, which includes it.
    assert 0 < score.details["mc_std_error"] < score.std_error
    assert score.details["mc_std_error_method"].startswith("delta method")
    one = METRICS.get("iwae_nll").compute(EvalContext(
        model, images, images, batch_size=32, settings=EvalSettings(iwae_k=1, iwae_images=5)))
    assert one.samples == 5 and one.details["mc_std_error"] is None


def test_more_images_than_the_test_set_uses_them_all_with_a_warning(trained_vae):
    model, images = trained_vae
    ctx = EvalContext(model, images[:40], images, batch_size=32,
                      settings=EvalSettings(iwae_k=2, iwae_images=41))
    with pytest.warns(UserWarning, match="eval.iwae_images = 41 exceeds the 40 test images"):
        score = METRICS.get("iwae_nll").compute(ctx)
    assert score.samples == 40


@pytest.mark.parametrize("field, value", [
    ("iwae_images", 0), ("iwae_images", -3), ("iwae_images", 2.5), ("iwae_images", True),
    ("iwae_images", "all"), ("iwae_k", 0), ("iwae_k", 1.5)])
def test_invalid_settings_name_their_field(field, value):
    with pytest.raises(InputError, match=f"eval.{field}: must be"):
        EvalSettings(**{field: value})


def test_iwae_images_comes_from_a_suite_and_keeps_old_run_ids():
    spec = parse_section(EvalSpec, {"iwae_images": 500, "iwae_k": 50}, "eval")
    assert (spec.iwae_images, spec.iwae_k) == (500, 50)
    with pytest.raises(InputError, match="eval.iwae_images"):
        parse_section(EvalSpec, {"iwae_images": "all"}, "eval")
    # Left at its default the new field is not hashed, so published runs keep their ids.
    assert RunConfig().run_id == RunConfig(eval=EvalSpec(iwae_images=None)).run_id
    assert RunConfig().run_id != RunConfig(eval=EvalSpec(iwae_images=500)).run_id
    assert EvalSettings().iwae_images is None and EvalSettings().iwae_k == 100


def test_the_bound_weighs_with_the_models_prior():
    """A one-component mixture at N(0, I) is the standard normal: the bound through the
    prior's log_prob equals the closed-form path's to float32 rounding (same draws), and
    moving the component away from the codes lowers it by more than its Monte-Carlo error."""
    images = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1)).round()
    spec = dict(name="vae", latent_dim=3, width=4, hidden=16)
    torch.manual_seed(0)
    normal = build_model(ModelSpec(**spec), (1, 8, 8)).eval()
    torch.manual_seed(0)
    mixture = build_model(ModelSpec(**spec, prior="mog", prior_components=1), (1, 8, 8)).eval()
    with torch.no_grad():
        mixture.prior.means.zero_()
    exact = iwae_estimate(normal, images, 64, torch.Generator().manual_seed(3))
    through_prior = iwae_estimate(mixture, images, 64, torch.Generator().manual_seed(3))
    assert torch.allclose(through_prior.bound, exact.bound, rtol=0, atol=1e-4)
    with torch.no_grad():
        mixture.prior.means.fill_(3.0)
    shifted = iwae_estimate(mixture, images, 64, torch.Generator().manual_seed(3))
    # Every code now sits ~3√3 from the prior's mean: log p(z) drops by ~13 nats per image.
    assert float((exact.bound - shifted.bound).mean()) > 5.0
    score = METRICS.get("iwae_nll").compute(EvalContext(mixture, images, images, 32, 0))
    assert score.value == pytest.approx(-float(shifted.bound.mean()), abs=1.0)
