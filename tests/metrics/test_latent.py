"""Latent coverage metrics against their definitions and oracles: encoders whose codes are known
exactly (Gaussian codes, dead units, a collapsed posterior), closed-form information and KL of a
Gaussian model, the IMQ MMD and the holes of hand-built point sets."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from latentbench.metrics import METRICS, EvalContext, latent
from latentbench.metrics.latent import imq_mmd2, latent_holes, mutual_information
from latentbench.models import ModelSpec, build_model
from latentbench.models.protocol import LatentModel, Posterior

SIDE = 8  # the test pass's SSIM window needs images of at least 6 × 6


class CodedImages(LatentModel):
    """Reads its codes off the images: the first ``d`` pixels hold Φ(c) (Φ the normal CDF), and
    the posterior mean is ``scale · c`` — exactly Gaussian codes, per unit scaled (0: a dead
    unit). With ``logvar`` the posterior is N(mean, e^logvar), else the code is deterministic.
    The decoder is a constant: the latent metrics never look at it."""

    def __init__(self, scale, logvar=None):
        super().__init__()
        self.scale = torch.as_tensor(scale, dtype=torch.float32)
        self.latent_dim = len(self.scale)
        self.logvar = logvar
        self.capabilities = frozenset({"encode", "sample"} if logvar is None
                                      else {"encode", "variational", "sample"})
        self.anchor = nn.Parameter(torch.zeros(()))

    def encode(self, x):
        mean = torch.special.ndtri(x.flatten(1)[:, :self.latent_dim]) * self.scale
        logvar = None if self.logvar is None else torch.full_like(mean, self.logvar)
        return Posterior(mean=mean, logvar=logvar)

    def decode(self, z):
        return torch.zeros(len(z), 1, SIDE, SIDE)

    def loss(self, x):
        raise NotImplementedError

    def reconstruction_nll(self, logits, x):
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def coded_images(count, dim, seed=1):
    """Images whose first ``dim`` pixels are Φ(c), c ~ N(0, I). The default seed differs from the
    evaluation's (0), whose first draws are the prior samples: the codes must not be them."""
    codes = torch.randn(count, dim, generator=torch.Generator().manual_seed(seed))
    images = torch.full((count, SIDE * SIDE), 0.5)
    images[:, :dim] = torch.special.ndtr(codes)
    return images.view(count, 1, SIDE, SIDE)


def scores(model, images, names, seed=0):
    ctx = EvalContext(model, images, images, batch_size=256, seed=seed)
    return {name: METRICS.get(name).compute(ctx) for name in names}


def test_active_units_count_the_units_whose_mean_varies():
    # Variances of the means: 1, 1, 0.25 (active); 0 and 0.0025 (dead and nearly so).
    result = scores(CodedImages([1.0, 1.0, 0.5, 0.0, 0.05]), coded_images(2000, 5),
                    ["active_units"])["active_units"]
    assert result.value == 3
    assert result.details["variances"] == pytest.approx([1, 1, 0.25, 0, 0.0025], rel=0.1,
                                                        abs=1e-12)
    assert result.details["threshold"] == 0.01


def test_codes_distributed_as_the_prior_cover_it_without_holes():
    images = coded_images(1000, 2)
    result = scores(CodedImages([1.0, 1.0]), images,
                    ["prior_coverage", "prior_holes", "prior_mmd"])
    # Equal distributions: about 1 − 2^-k (0.97) of either set has the other in its k-NN ball;
    # the unbiased MMD² is 0 up to its noise (s.d. ≈ 0.005 at 1,000 points).
    assert result["prior_coverage"].value > 0.9
    assert result["prior_holes"].value < 0.1
    assert abs(result["prior_mmd"].value) < 0.01
    # The same codes shifted off the prior by one standard deviation.
    images_shifted = images.clone()
    images_shifted.view(1000, -1)[:, :2] = torch.special.ndtr(
        torch.special.ndtri(images.view(1000, -1)[:, :2]) + 1.0)
    shifted = scores(CodedImages([1.0, 1.0]), images_shifted,
                     ["prior_coverage", "prior_holes", "prior_mmd"])
    assert shifted["prior_mmd"].value > 20 * abs(result["prior_mmd"].value)
    assert shifted["prior_mmd"].value > 0.1
    assert shifted["prior_holes"].value > 0.2
    assert shifted["prior_coverage"].value < 0.8


class ScaledPrior(CodedImages):
    """Codes and the distribution the model samples them from, both scaled by ``factor``: an AE
    whose code space has a scale of its own, sampling from a Gaussian fitted to it."""

    def __init__(self, factor, codes_scaled=True):
        super().__init__([factor if codes_scaled else 1.0] * 2)
        self.factor = factor

    def sample_latent(self, n, generator=None):
        return self.factor * super().sample_latent(n, generator)


def test_the_prior_is_the_models_sampling_distribution_at_any_scale():
    images, names = coded_images(500, 2), ["prior_coverage", "prior_holes", "prior_mmd"]
    unit, scaled = scores(ScaledPrior(1.0), images, names), scores(ScaledPrior(10.0), images, names)
    for name in names:  # equal up to the float32 rounding of the scaled codes
        assert scaled[name].value == pytest.approx(unit[name].value, rel=1e-6)
    assert scaled["prior_mmd"].details["prior_variance"] == pytest.approx(100, rel=0.1)
    # Against a prior ten times wider, the codes cover a sliver of it.
    mismatched = scores(ScaledPrior(10.0, codes_scaled=False), images, names)
    assert mismatched["prior_holes"].value > 0.8
    assert mismatched["prior_mmd"].value > 10 * abs(unit["prior_mmd"].value)


def test_a_collapsed_posterior_carries_nothing_and_covers_nothing():
    # Every posterior is the prior itself: q(z|x) = N(0, I) for all x.
    names = ["active_units", "mutual_info", "agg_posterior_kl", "prior_coverage"]
    result = scores(CodedImages([0.0, 0.0, 0.0], logvar=0.0), coded_images(300, 3), names)
    assert result["active_units"].value == 0
    assert result["mutual_info"].value == pytest.approx(0.0, abs=1e-9)
    assert result["agg_posterior_kl"].value == pytest.approx(0.0, abs=1e-9)
    assert result["agg_posterior_kl"].details["kl_per_dim"] == [0.0, 0.0, 0.0]
    assert result["prior_coverage"].value == 0.0  # every ball has radius 0


def test_gaussian_encoder_information_and_aggregate_kl_in_closed_form():
    # μ ~ N(0, a²) over images and q(z|x) = N(μ, s²) per unit: q(z) = N(0, a² + s²), so
    # I = ½ log(1 + a²/s²), the rate is ½(a² + s² − 1 − log s²) and KL(q(z) ‖ p) their difference
    # ½(a² + s² − 1 − log(a² + s²)). With a² = s² = 1: 0.347, 0.5 and 0.153 nats per unit.
    dim, count = 2, 3000
    model = CodedImages([1.0] * dim, logvar=0.0)
    result = scores(model, coded_images(count, dim), ["mutual_info", "agg_posterior_kl"])
    assert result["mutual_info"].value == pytest.approx(dim * 0.5 * math.log(2), abs=0.05)
    assert result["mutual_info"].details["log_n_bound"] == pytest.approx(math.log(count))
    kl = result["agg_posterior_kl"]
    assert kl.value == pytest.approx(dim * 0.5 * (1 - math.log(2)), abs=0.06)
    assert kl.details["kl_per_dim"] == pytest.approx([0.5] * dim, abs=0.05)
    # The surgery adds up: rate = I + KL(q(z) ‖ p), with the rate the sum of its dimensions (the
    # test pass's rate is summed in float32).
    assert kl.details["rate"] == pytest.approx(sum(kl.details["kl_per_dim"]), rel=1e-6)
    assert kl.details["mutual_info"] == result["mutual_info"].value
    assert kl.value == pytest.approx(kl.details["rate"] - kl.details["mutual_info"], rel=1e-12)


def test_sharp_well_separated_posteriors_reach_the_log_n_bound():
    generator = torch.Generator().manual_seed(0)
    mean = 100.0 * torch.randn(500, 4, generator=generator, dtype=torch.float64)
    logvar = torch.full_like(mean, -10.0)
    assert mutual_information(mean, logvar, generator=generator) == pytest.approx(
        math.log(500), abs=1e-9)


posteriors = st.integers(2, 30).flatmap(lambda n: st.integers(1, 4).flatmap(lambda d: st.tuples(
    arrays(np.float64, (n, d), elements=st.floats(-5, 5)),
    arrays(np.float64, (n, d), elements=st.floats(-8, 3)))))


@settings(max_examples=60, deadline=None)
@given(posteriors, st.integers(0, 2**31 - 1))
def test_mutual_information_never_exceeds_log_n(posterior, seed):
    mean, logvar = (torch.from_numpy(a) for a in posterior)
    value = mutual_information(mean, logvar, generator=torch.Generator().manual_seed(seed))
    assert value <= math.log(len(mean)) + 1e-12


def test_imq_mmd_of_a_hand_computed_pair():
    # x = {0, 1}, y = {0, 2} on a line, d = 1, C = 2s: within x one pair at distance² 1, within
    # y one at 4, across 0, 4, 1, 1. MMD² = Σ_s [k(1) + k(4) − ½(1 + k(4) + 2 k(1))]
    #       = Σ_s [½ k(4) − ½], k(r²) = C/(C + r²).
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.0], [2.0]])
    expected = sum(0.5 * (2 * s) / (2 * s + 4) - 0.5 for s in (0.1, 0.2, 0.5, 1, 2, 5, 10))
    assert imq_mmd2(x, y) == pytest.approx(expected, rel=1e-12)
    # One scale, σ²_p = 2: C = 2·1·2·1 = 4.
    assert imq_mmd2(x, y, prior_variance=2.0, scales=(1.0,)) == pytest.approx(
        0.5 * 4 / 8 - 0.5, rel=1e-12)


def test_imq_mmd_and_mutual_information_equal_their_definitions_whatever_the_blocks(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(37, 3, generator=generator, dtype=torch.float64)
    y = 1.5 * torch.randn(23, 3, generator=generator, dtype=torch.float64) + 0.5
    constants = [2 * 3 * s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10)]

    def k(a, b):
        return sum(c / (c + float((a - b).square().sum())) for c in constants)

    def within(points):
        n = len(points)
        return sum(k(points[i], points[j]) for i in range(n) for j in range(n) if i != j) / (
            n * (n - 1))

    cross = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    expected_mmd = within(x) + within(y) - 2 * cross

    mean = 2 * torch.randn(37, 3, generator=generator, dtype=torch.float64)
    logvar = torch.randn(37, 3, generator=generator, dtype=torch.float64)
    z = mean + logvar.mul(0.5).exp() * torch.randn(37, 3, generator=generator,
                                                   dtype=torch.float64)
    q = torch.distributions.Normal(mean.unsqueeze(0), logvar.mul(0.5).exp().unsqueeze(0))
    log_density = q.log_prob(z.unsqueeze(1)).sum(-1)  # [i, n]: log q(z_i | x_n)
    expected_mi = float((log_density.diagonal() - log_density.logsumexp(1)).mean()) + math.log(37)

    for block in (2**22, 50):  # one block, then blocks of a row or two
        monkeypatch.setattr(latent, "_BLOCK_ENTRIES", block)
        assert imq_mmd2(x, y) == pytest.approx(expected_mmd, rel=1e-10)
        assert imq_mmd2(y, x) == pytest.approx(expected_mmd, rel=1e-10)
        assert mutual_information(mean, logvar, z=z) == pytest.approx(expected_mi, rel=1e-10)


def test_holes_are_the_prior_points_whose_own_ball_holds_no_code():
    # Prior points: two clusters on a line; codes only near the first. With k = 2, the radius of
    # each prior point is its distance to its second neighbour (2 inside a cluster of spacing 1;
    # 1 for middle points); the codes at 0.5 … 4.5 fall in every first-cluster ball, none of
    # the second's: holes = 6/12.
    prior = torch.tensor([0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 105.0]).unsqueeze(1)
    codes = torch.tensor([0.5, 1.5, 2.5, 3.5, 4.5]).unsqueeze(1)
    assert latent_holes(codes, prior, k=2) == 0.5

    def holes_by_definition(encoded, prior, k):
        prior_gaps = torch.cdist(prior, prior)
        radius = prior_gaps.sort(dim=1).values[:, k]  # column 0 is the point itself
        return float((torch.cdist(prior, encoded) < radius[:, None]).any(1).logical_not()
                     .double().mean())

    generator = torch.Generator().manual_seed(3)
    prior = torch.randn(200, 2, generator=generator, dtype=torch.float64)
    codes = 0.5 * torch.randn(150, 2, generator=generator, dtype=torch.float64) + 0.7
    assert latent_holes(codes, prior, k=5) == holes_by_definition(codes, prior, 5)
    # Exactly on the radius counts as outside (strict <): a code at distance 2 from prior
    # point 0, whose radius is 2, leaves it a hole.
    line = torch.tensor([0.0, 1.0, 2.0, 3.0]).unsqueeze(1)
    assert latent_holes(torch.tensor([[-2.0], [-3.0], [-4.0]]), line, k=2) == 1.0


def test_latent_metrics_on_a_vae_are_reproducible_and_absent_where_undefined():
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", latent_dim=3, width=4, hidden=16),
                        (1, SIDE, SIDE)).eval()
    images = torch.rand(300, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(1)).round()
    names = ["active_units", "mutual_info", "agg_posterior_kl", "prior_mmd", "prior_coverage",
             "prior_holes"]
    first, second = scores(model, images, names), scores(model, images, names)
    assert {n: s.value for n, s in first.items()} == {n: s.value for n, s in second.items()}
    assert first["mutual_info"].value <= math.log(300)
    for name in ("mutual_info", "agg_posterior_kl"):
        assert not METRICS.get(name).applies_to({"encode", "sample"})  # no posterior: an AE
    for name in names:
        assert not METRICS.get(name).applies_to({"sample"})  # no encoder: a GAN
