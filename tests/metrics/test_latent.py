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


def kl_caveat(result):
    return result["agg_posterior_kl"].caveat


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


def test_a_collapsed_posterior_carries_nothing_though_its_draws_fill_the_prior():
    # Every posterior is the prior itself: q(z|x) = N(0, I) for all x.
    names = ["active_units", "mutual_info", "agg_posterior_kl", "prior_coverage"]
    result = scores(CodedImages([0.0, 0.0, 0.0], logvar=0.0), coded_images(300, 3), names)
    assert result["active_units"].value == 0
    assert result["mutual_info"].value == pytest.approx(0.0, abs=1e-9)
    assert result["agg_posterior_kl"].value == pytest.approx(0.0, abs=1e-9)
    assert result["agg_posterior_kl"].details["kl_per_dim"] == [0.0, 0.0, 0.0]
    # Coverage reads draws z ~ q(z|x), and here q(z) is the prior: covered (the decoded
    # samples say nothing of x, which the information above tells).
    assert result["prior_coverage"].value > 0.9
    # The means, all 0, would cover nothing: every ball has radius 0 (the old definition).
    assert latent.prdc(torch.zeros(300, 3), torch.randn(300, 3), 5)["coverage"] == 0.0


def test_gaussian_encoder_information_and_aggregate_kl_in_closed_form():
    # μ ~ N(0, a²) over images and q(z|x) = N(μ, s²) per unit: q(z) = N(0, a² + s²), so
    # I = ½ log(1 + a²/s²), the rate is ½(a² + s² − 1 − log s²) and KL(q(z) ‖ p) their difference
    # ½(a² + s² − 1 − log(a² + s²)). With a² = s² = 1: 0.347, 0.5 and 0.153 nats per unit.
    dim, count = 2, 3000
    model = CodedImages([1.0] * dim, logvar=0.0)
    result = scores(model, coded_images(count, dim), ["mutual_info", "agg_posterior_kl"])
    # Monte Carlo estimates: over 30 seeds of codes and evaluation they vary by σ ≈ 0.015 (MI),
    # 0.017 (KL) and ≲ 0.015 (each unit's KL); 0.09 is > 5.2σ, for the 4 comparisons at family
    # error 1e-6.
    assert result["mutual_info"].value == pytest.approx(dim * 0.5 * math.log(2), abs=0.09)
    assert result["mutual_info"].details["log_n"] == pytest.approx(math.log(count))
    assert not result["mutual_info"].details["at_log_n_bound"]
    assert result["mutual_info"].caveat is None and kl_caveat(result) is None
    kl = result["agg_posterior_kl"]
    assert not kl.details["upper_bound"]
    assert kl.value == pytest.approx(dim * 0.5 * (1 - math.log(2)), abs=0.09)
    assert kl.details["kl_per_dim"] == pytest.approx([0.5] * dim, abs=0.09)
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


LATENT_METRICS = ("active_units", "mutual_info", "agg_posterior_kl", "prior_mmd",
                  "prior_coverage", "prior_holes")


def test_latent_metrics_are_in_the_latent_family_with_their_directions():
    for name in LATENT_METRICS:
        metric = METRICS.get(name)
        assert metric.family == "latent" and metric.target is None
    assert METRICS.get("prior_coverage").higher_is_better
    assert METRICS.get("prior_holes").higher_is_better is False


def test_an_aggregate_posterior_equal_to_the_prior_covers_it_from_its_draws():
    """Fidelity, known truth: μ ~ N(0, 0.4 I) over images and q(z|x) = N(μ, 0.6 I), so
    q(z) = N(0, I) exactly, the prior. Its draws cover the prior (≈ 0.97, as two samples of one
    distribution do); its means, shrunk to N(0, 0.4 I), would cover ≈ 0.25 in 16 dimensions."""
    dim, count = 16, 1000
    model = CodedImages([math.sqrt(0.4)] * dim, logvar=math.log(0.6))
    ctx = EvalContext(model, coded_images(count, dim), coded_images(count, dim, seed=2),
                      batch_size=250)
    result = {name: METRICS.get(name).compute(ctx)
              for name in ("prior_coverage", "prior_holes", "prior_mmd")}
    assert result["prior_coverage"].value > 0.9
    assert result["prior_holes"].value < 0.1
    # 5 standard errors: one comparison at family error 1e-6 (4.9; measured 0.97).
    assert abs(result["prior_mmd"].value) < 5 * result["prior_mmd"].std_error
    for score in result.values():
        assert 0 < score.std_error < 0.05 and "bootstrap" in score.details["std_error_method"]
    # The old definition, on the means: far lower, so the test above can fail.
    means, prior = ctx.test_pass.latent_mean, latent.latent_draws(ctx)["prior"]
    assert latent.prdc(means, prior, 5)["coverage"] < 0.5
    assert result["prior_coverage"].value - latent.prdc(means, prior, 5)["coverage"] > 0.4


def test_information_at_the_log_n_ceiling_leaves_the_aggregate_kl_an_upper_bound():
    """Fidelity, known truth: μ ~ N(0, 0.95 I), σ² = 0.05, 16 latents, so q(z) = N(0, I) and
    KL(q(z) ‖ p(z)) = 0, while the information (the rate, ≈ 24 nats) is far above log N for
    1,000 points. The estimate saturates at log N, and rate − I comes out at ≈ 17 nats: it is
    flagged as an upper bound with a caveat, not reported as a clean 17."""
    dim, count = 16, 1000
    model = CodedImages([math.sqrt(0.95)] * dim, logvar=math.log(0.05))
    images = coded_images(count, dim)
    result = scores(model, images, ["mutual_info", "agg_posterior_kl"])
    info, kl = result["mutual_info"], result["agg_posterior_kl"]
    assert info.details["log_n"] == pytest.approx(math.log(count))
    assert math.log(count) - 0.05 < info.value <= math.log(count)
    assert info.details["at_log_n_bound"] and info.caveat and "ceiling" in info.caveat
    assert info.details["points"] == count and info.details["train_points"] == 0
    assert kl.details["upper_bound"] and kl.caveat and "upper bound" in kl.caveat
    assert kl.value > 10  # ≈ 24 − 6.9, against a true 0
    # E KL(q(z|x) ‖ p) = ½ Σ (E μ² + σ² − 1 − log σ²) = ½ · 16 · (−log 0.05) = 24 nats.
    assert kl.details["rate"] == pytest.approx(-dim * 0.5 * math.log(0.05), rel=0.05)


def test_information_uses_train_points_too_up_to_the_cap(monkeypatch):
    dim = 16
    model = CodedImages([math.sqrt(0.95)] * dim, logvar=math.log(0.05))
    test, train = coded_images(1000, dim), coded_images(4000, dim, seed=2)
    ctx = EvalContext(model, test, train, batch_size=500)
    info = METRICS.get("mutual_info").compute(ctx)
    assert info.details["points"] == 5000 and info.details["train_points"] == 4000
    # Saturated still, but at log 5,000 = 8.5 nats rather than log 1,000 = 6.9.
    assert info.value == pytest.approx(math.log(5000), abs=0.05)
    assert info.samples == 5000
    monkeypatch.setattr(latent, "MI_MAX_POINTS", 1500)
    capped = METRICS.get("mutual_info").compute(EvalContext(model, test, train, batch_size=500))
    assert capped.details["points"] == 1500 and capped.details["test_points"] == 1000


def test_information_with_train_points_agrees_with_the_closed_form():
    # The Gaussian encoder of the closed-form test, now over 1,000 test + 2,000 train points:
    # I = ½ log 2 per unit, KL(q(z) ‖ p) = ½(1 − log 2) per unit, and no ceiling in sight.
    dim = 2
    model = CodedImages([1.0] * dim, logvar=0.0)
    ctx = EvalContext(model, coded_images(1000, dim), coded_images(2000, dim, seed=2))
    info = METRICS.get("mutual_info").compute(ctx)
    kl = METRICS.get("agg_posterior_kl").compute(ctx)
    assert info.details["points"] == 3000 and not info.details["at_log_n_bound"]
    # 5.1 standard errors (2 comparisons at family error 1e-6: 5.03), plus 0.02 for the
    # estimators' bias at these N.
    assert info.value == pytest.approx(dim * 0.5 * math.log(2), abs=5.1 * info.std_error + 0.02)
    assert kl.caveat is None and not kl.details["upper_bound"]
    assert kl.value == pytest.approx(dim * 0.5 * (1 - math.log(2)),
                                     abs=5.1 * kl.std_error + 0.02)
    assert kl.details["rate"] == pytest.approx(sum(kl.details["kl_per_dim"]), rel=1e-12)
    assert 0 < info.std_error < 0.05 and 0 < kl.std_error < 0.05


def test_active_units_standard_error_is_zero_far_from_the_threshold_and_not_near_it():
    images = coded_images(1000, 3)
    clear = scores(CodedImages([1.0, 1.0, 0.0]), images, ["active_units"])["active_units"]
    assert clear.value == 2 and clear.std_error == 0.0
    # A unit whose variance sits at the threshold, 0.1² = 0.01: counted in some resamples.
    borderline = scores(CodedImages([1.0, 1.0, 0.1]), images,
                        ["active_units"])["active_units"]
    assert borderline.std_error > 0.1
    assert "bootstrap" in borderline.details["std_error_method"]


def test_mmd_bootstrap_equals_the_estimator_on_each_resample():
    """Each resample's value is the unbiased MMD² of the resampled codes, their own copies'
    pairs left out (a copy is not a second draw near it)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(30, 3, generator=generator, dtype=torch.float64) + 0.3
    counts = torch.from_numpy(latent.bootstrap_counts(40, 4, seed=1))
    got = latent.imq_mmd2_bootstrap(x, y, counts)
    constants = [2 * 3 * s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10)]

    def kernel(a, b):
        gaps = torch.cdist(a, b).square()
        return sum(c / (c + gaps) for c in constants)

    within_y = (kernel(y, y).sum() - 7 * len(y)) / (30 * 29)
    for b in range(4):
        index = torch.repeat_interleave(torch.arange(40), counts[b])
        distinct = index[:, None] != index[None, :]
        within_x = (kernel(x[index], x[index]) * distinct).sum() / distinct.sum()
        expected = within_x + within_y - 2 * kernel(x[index], y).mean()
        assert float(got[b]) == pytest.approx(float(expected), rel=1e-10)
    assert float(latent.imq_mmd2_bootstrap(x, y, torch.ones(1, 40))[0]) == pytest.approx(
        imq_mmd2(x, y), rel=1e-12)


def test_prior_coverage_and_holes_compare_the_codes_with_the_models_own_prior():
    """A mixture prior moved far from every code leaves all its draws in holes and covers
    nothing; the same model with the component on the codes' own mean and spread covers
    them. The prior's draws are what the latent metrics compare against, not N(0, I)."""
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", latent_dim=2, width=4, hidden=16, prior="mog",
                                  prior_components=1), (1, 8, 8)).eval()
    images = torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(1))

    def scores():
        ctx = EvalContext(model, images, images, 128, 0)
        return {name: METRICS.get(name).compute(ctx).value
                for name in ("prior_coverage", "prior_holes")}

    with torch.no_grad():
        model.prior.means.fill_(50.0)
    far = scores()
    assert far == {"prior_coverage": 0.0, "prior_holes": 1.0}
    draws = latent.latent_draws(EvalContext(model, images, images, 128, 0))["posterior"]
    with torch.no_grad():
        model.prior.means.copy_(draws.mean(0, keepdim=True))
        model.prior.logvars.copy_(draws.var(0, keepdim=True).log())
    near = scores()
    assert near["prior_coverage"] > 0.8 and near["prior_holes"] < 0.2
