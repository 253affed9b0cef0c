"""Interpolation paths and metrics: lerp/slerp properties, smoothness and straightness oracles,
PPL against a chi-square oracle, interp_fid ordering, and every registered metric on a trained
AE, an unpool-max AE and a DCGAN."""

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from latentbench.benchmarks.data.lines import draw_lines
from latentbench.metrics import METRICS, EvalContext
from latentbench.metrics.context import EvalSettings
from latentbench.metrics.frechet import bootstrap_counts, frechet_distance
from latentbench.metrics.interpolation import (
    INTERP_FID_BOOTSTRAP,
    MIDPOINTS,
    evaluation_paths,
    image_features,
    interpolate_decoded,
    interpolation_path,
    interpolation_strips,
    lerp,
    path_smoothness,
    path_straightness,
    slerp,
    standard_error,
    trimmed_mean,
)
from latentbench.models import ModelSpec, build_model
from latentbench.models.protocol import LatentModel, Posterior

# ------------------------------------------------------------------------------- lerp and slerp

finite = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)
pairs = st.integers(1, 8).flatmap(lambda d: st.tuples(
    hnp.arrays(np.float64, d, elements=finite), hnp.arrays(np.float64, d, elements=finite)))
fractions = st.floats(0, 1)
# No deadline: the first call of a test pays torch's warm-up, hundreds of ms on a busy runner.
quick = settings(max_examples=100, deadline=None)


def angle(a: torch.Tensor, b: torch.Tensor) -> float:
    return 2 * math.atan2(float((a / a.norm() - b / b.norm()).norm()),
                          float((a / a.norm() + b / b.norm()).norm()))


@quick
@given(pairs)
def test_endpoints_are_exact(vectors):
    z0, z1 = map(torch.from_numpy, vectors)
    for interpolate in (lerp, slerp):
        assert torch.equal(interpolate(z0, z1, 0.0), z0)
        assert torch.equal(interpolate(z0, z1, 1.0), z1)


@quick
@given(pairs)
def test_lerp_midpoint_is_the_average(vectors):
    z0, z1 = map(torch.from_numpy, vectors)
    torch.testing.assert_close(lerp(z0, z1, 0.5), (z0 + z1) / 2, rtol=1e-12, atol=1e-12)


@quick
@given(pairs, fractions)
def test_slerp_keeps_equal_norms_and_turns_at_constant_speed(vectors, t):
    z0, z1 = map(torch.from_numpy, vectors)
    assume(z0.norm() > 1e-3 and z1.norm() > 1e-3)
    z1 = z1 * (z0.norm() / z1.norm())
    omega = angle(z0, z1)
    assume(0.01 < omega < math.pi - 0.01)
    z = slerp(z0, z1, t)
    assert float(z.norm()) == pytest.approx(float(z0.norm()), rel=1e-9)
    assert angle(z0, z) == pytest.approx(t * omega, abs=1e-7)
    assert angle(z, z1) == pytest.approx((1 - t) * omega, abs=1e-7)


@quick
@given(pairs, fractions)
def test_slerp_interpolates_the_norm_linearly(vectors, t):
    z0, z1 = map(torch.from_numpy, vectors)
    assume(z0.norm() > 1e-3 and z1.norm() > 1e-3)
    assume(0.01 < angle(z0, z1) < math.pi - 0.01)
    expected = (1 - t) * z0.norm() + t * z1.norm()
    assert float(slerp(z0, z1, t).norm()) == pytest.approx(float(expected), rel=1e-9)


@quick
@given(pairs, st.floats(-3, 3).filter(lambda c: abs(c) > 1e-3), fractions)
def test_slerp_of_parallel_or_antiparallel_codes_is_lerp(vectors, scale, t):
    z0 = torch.from_numpy(vectors[0])
    z1 = scale * z0
    torch.testing.assert_close(slerp(z0, z1, t), lerp(z0, z1, t), rtol=1e-9, atol=1e-9)


def test_slerp_with_a_zero_endpoint_is_lerp():
    z0, z1 = torch.zeros(3, dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(slerp(z0, z1, 0.3), lerp(z0, z1, 0.3))


def test_quarter_turn_by_hand():
    z0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    z1 = torch.tensor([0.0, 4.0], dtype=torch.float64)
    # Half way: 45°, norm (2 + 4)/2 = 3.
    torch.testing.assert_close(slerp(z0, z1, 0.5), 3 * torch.tensor([1.0, 1.0]).double() / 2**0.5)


def test_interpolation_path_shape_spacing_and_errors():
    generator = torch.Generator().manual_seed(0)
    z0 = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    z1 = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    for path in ("lerp", "slerp"):
        codes = interpolation_path(z0, z1, 7, path)
        assert codes.shape == (3, 7, 5)
        assert torch.equal(codes[:, 0], z0) and torch.equal(codes[:, -1], z1)
    steps = interpolation_path(z0, z1, 7, "lerp").diff(dim=1)
    torch.testing.assert_close(steps, ((z1 - z0) / 6)[:, None].expand_as(steps))
    with pytest.raises(ValueError, match="steps"):
        interpolation_path(z0, z1, 1, "lerp")
    with pytest.raises(ValueError, match="lerp, slerp"):
        interpolation_path(z0, z1, 4, "bezier")
    with pytest.raises(ValueError, match=r"\[P, d\]"):
        interpolation_path(z0, z1[:2], 4, "lerp")


# ------------------------------------------------------------------ smoothness and straightness

T = 16


def line_path(start: torch.Tensor, stop: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """Feature path ``[1, T, d]`` at the given fractions of the way from start to stop."""
    start, stop, fractions = start.double(), stop.double(), fractions.double()
    return (start + fractions[:, None] * (stop - start))[None]


def test_uniform_motion_is_smooth_and_straight():
    features = line_path(torch.zeros(4), torch.tensor([1.0, -2.0, 0.5, 3.0]),
                         torch.linspace(0, 1, T, dtype=torch.float64))
    assert path_smoothness(features).item() == pytest.approx(0.0, abs=1e-12)
    assert path_straightness(features).item() == pytest.approx(1.0, rel=1e-12)


def test_one_jump_scores_the_worst_smoothness_but_is_straight():
    features = line_path(torch.zeros(3), torch.ones(3), (torch.arange(T) >= 5).double())
    assert path_smoothness(features).item() == pytest.approx(1 - 1 / (T - 1), rel=1e-12)
    assert path_straightness(features).item() == pytest.approx(1.0, rel=1e-12)


def test_detour_by_hand():
    # (0, 0) → (1, 0) → (1, 1): length 2 over a chord of √2; steps 1 and 1 of 2: 1/2 − 1/2.
    features = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]])
    assert path_straightness(features).item() == pytest.approx(2**0.5)
    assert path_smoothness(features).item() == pytest.approx(0.0)


def test_paths_that_do_not_move_are_undefined():
    still = torch.ones(2, T, 3)
    assert path_smoothness(still).isnan().all() and path_straightness(still).isnan().all()
    loop = torch.tensor([[[0.0], [1.0], [0.0]]])
    assert path_straightness(loop).isnan().all() and path_smoothness(loop).item() == 0.0
    with pytest.raises(ValueError, match=r"\[P, T, d\]"):
        path_smoothness(torch.ones(T, 3))


@quick
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(2, 9), st.integers(1, 4)),
                  elements=finite), st.floats(0.1, 10), st.integers(0, 2**16))
def test_bounds_and_invariance_to_similarity_transforms(features, scale, seed):
    f = torch.from_numpy(features)
    smooth, straight = path_smoothness(f), path_straightness(f)
    steps = f.shape[1] - 1
    assert (smooth.isnan() | ((smooth >= -1e-12) & (smooth <= 1 - 1 / steps + 1e-12))).all()
    assert (straight.isnan() | (straight >= 1 - 1e-9)).all()
    rotation = torch.linalg.qr(torch.randn(f.shape[2], f.shape[2], dtype=torch.float64,
                                           generator=torch.Generator().manual_seed(seed)))[0]
    moved = scale * f @ rotation + 3.0
    # Compared where the motion is well above the round-off of the shift by 3.
    moving = f.diff(dim=1).norm(dim=-1).sum(1) > 1e-3
    torch.testing.assert_close(path_smoothness(moved)[moving], smooth[moving], rtol=1e-7,
                               atol=1e-7)
    apart = torch.linalg.norm(f[:, -1] - f[:, 0], dim=-1) > 1e-3
    torch.testing.assert_close(path_straightness(moved)[apart], straight[apart], rtol=1e-7,
                               atol=0)
    torch.testing.assert_close(path_smoothness(f.flip(1)), smooth, equal_nan=True)


def test_trimmed_mean_keeps_the_order_statistics_at_the_percentiles():
    values = np.concatenate([np.arange(201.0), [1e9, -1e9]])
    mean, kept = trimmed_mean(values)
    # 203 values: the 1st percentile's lower neighbour is 1, the 99th's upper one is 199.
    assert (mean, kept) == (pytest.approx(100.0), 199)


# ------------------------------------------------------------------------- registered, oracles


class PixelModel(LatentModel):
    """The code is the image itself; the decoder returns ``look(code)``. With the identity, lerp
    is a pixel crossfade; ``torch.round`` snaps a binary image to the nearer endpoint; a
    constant ignores the code."""

    capabilities = frozenset({"encode", "sample"})

    def __init__(self, shape, look=lambda z: z):
        super().__init__()
        self.shape, self.look = shape, look
        self.latent_dim = math.prod(shape)
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device and dtype
        self.decodes = 0

    def encode(self, x):
        return Posterior(mean=x.flatten(1))

    def decode(self, z):
        self.decodes += 1
        return torch.logit(self.look(z).clamp(1e-6, 1 - 1e-6)).view(-1, *self.shape)

    def loss(self, x):
        raise NotImplementedError


class Scaled(nn.Module):
    """Multiplies its input by a constant: an extractor on another scale."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


EXTRACTORS = {"flat": nn.Flatten, "pooled": lambda: nn.Sequential(nn.AvgPool2d(4), nn.Flatten()),
              "flat10": lambda: nn.Sequential(nn.Flatten(), Scaled(10.0))}


def context(model, test, seed=0, dataset="", **knobs):
    return EvalContext(model, test, test, batch_size=64, seed=seed, dataset=dataset,
                       settings=EvalSettings(**knobs),
                       load_extractor=lambda name: EXTRACTORS[name]())


def compute(ctx, name, extractor=None):
    metric = METRICS.get(name)
    return metric.compute(ctx, extractor) if metric.feature_space else metric.compute(ctx)


@pytest.fixture(scope="module")
def lines():
    return (draw_lines(np.random.default_rng(0).random(256) * 2 * np.pi) + 1) / 2


def test_pixel_crossfade_moves_uniformly_in_pixel_space():
    test = torch.rand(100, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    ctx = context(PixelModel((1, 8, 8)), test)
    smooth = compute(ctx, "interp_smoothness", "flat")
    assert smooth.value == pytest.approx(0.0, abs=1e-4)
    assert compute(ctx, "interp_straightness", "flat").value == pytest.approx(1.0, abs=1e-4)
    assert smooth.samples == 16 and smooth.details["undefined_pairs"] == 0
    assert smooth.details["endpoints"].startswith("encoded test pairs")


def test_snapping_decoder_jumps_once():
    test = (torch.rand(100, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    ctx = context(PixelModel((1, 8, 8), look=torch.round), test)
    assert compute(ctx, "interp_smoothness", "flat").value == pytest.approx(1 - 1 / 15, rel=1e-5)
    assert compute(ctx, "interp_straightness", "flat").value == pytest.approx(1.0, rel=1e-5)


def test_decoded_paths_start_and_end_at_distinct_test_images(lines):
    ctx = context(PixelModel((1, 32, 32)), lines)
    paths = interpolate_decoded(ctx, 5, 4, "slerp", ctx.generator())
    assert paths.shape == (5, 4, 1, 32, 32)
    flat = lines.flatten(1)
    for end in (paths[:, 0], paths[:, -1]):
        distance = torch.cdist(end.flatten(1), flat, compute_mode="donot_use_mm_for_euclid_dist")
        assert (distance.min(1).values < 1e-4).all()
    assert ((paths[:, 0] - paths[:, -1]).abs().amax((1, 2, 3)) > 0.1).all()
    strips = interpolation_strips(ctx, rows=3, steps=5)
    assert strips.shape == (15, 1, 32, 32) and 0 <= strips.min() and strips.max() <= 1
    torch.testing.assert_close(strips.view(3, 5, 1, 32, 32),
                               interpolate_decoded(ctx, 3, 5, "lerp", ctx.generator()))


def test_ppl_of_a_decoder_that_ignores_the_code_is_zero():
    model = PixelModel((1, 8, 8), look=lambda z: torch.full_like(z, 0.3))
    test = torch.rand(10, 1, 8, 8)
    for path in ("lerp", "slerp"):
        score = compute(context(model, test, ppl_pairs=200, interp_path=path), "ppl", "flat")
        assert score.value == 0.0 and score.samples == 200


def test_ppl_of_a_linear_decoder_matches_the_chi_square_oracle():
    # G(z) = 0.5 + s·z in pixels: each PPL term is s²‖z₂ − z₁‖² with z₂ − z₁ ~ N(0, 2I), i.e.
    # 2s²·χ²_k; its mean between the 1st and 99th percentiles is 2s²·k·ΔF_{k+2}/ΔF_k.
    s, k, n = 0.05, 64, 2000
    model = PixelModel((1, 8, 8), look=lambda z: 0.5 + s * z)
    score = compute(context(model, torch.rand(10, 1, 8, 8), ppl_pairs=n), "ppl", "flat")
    lo, hi = scipy.stats.chi2.ppf([0.01, 0.99], k)
    inside = scipy.stats.chi2.cdf(hi, k) - scipy.stats.chi2.cdf(lo, k)
    trimmed = k * (scipy.stats.chi2.cdf(hi, k + 2) - scipy.stats.chi2.cdf(lo, k + 2)) / inside
    assert score.value == pytest.approx(2 * s**2 * trimmed, rel=0.02)
    assert score.details["kept"] == pytest.approx(0.98 * n, abs=3)


def bent(z):
    """A decoder that moves unevenly along a straight latent path (and bends it)."""
    return torch.sigmoid(3 * z + z.square())


def test_scaling_the_features_by_10_multiplies_ppl_by_100_and_leaves_ppl_ratio_alone():
    test = torch.rand(10, 1, 8, 8)
    scores = {}
    for extractor in ("flat", "flat10"):
        ctx = context(PixelModel((1, 8, 8), look=bent), test, ppl_pairs=300)
        scores[extractor] = (compute(ctx, "ppl", extractor), compute(ctx, "ppl_ratio", extractor))
    (ppl, ratio), (ppl10, ratio10) = scores["flat"], scores["flat10"]
    # Up to round-off: ×10 rounds every float32 feature, and a PPL term is the difference of
    # two features ε apart, divided by ε², which magnifies that rounding (measured ~2e-5).
    assert ppl10.value == pytest.approx(100 * ppl.value, rel=1e-4)
    assert ppl10.std_error == pytest.approx(100 * ppl.std_error, rel=1e-3)
    assert ratio10.value == pytest.approx(ratio.value, rel=1e-4)
    assert ratio10.std_error == pytest.approx(ratio.std_error, rel=1e-3)
    # An uneven pace costs more squared speed than the chord: the ratio is above 1.
    assert ratio.value > 1.05 and 0 < ratio.std_error < 0.1 * ratio.value
    assert ratio.details["endpoint_sq_distance"] > 0 and ratio.samples == 300
    assert ratio.details["std_error_method"].startswith("bootstrap over pairs")


def test_ppl_ratio_of_a_linear_decoder_is_the_trimmed_share_of_the_chi_square():
    # G(z) = 0.5 + s·z on lerp moves at constant velocity: each pair's PPL term equals its
    # squared chord, so the ratio is the 1–99 % trimmed mean of 2s²χ²_k over its full mean.
    s, k, n = 0.05, 64, 2000
    ctx = context(PixelModel((1, 8, 8), look=lambda z: 0.5 + s * z), torch.rand(10, 1, 8, 8),
                  ppl_pairs=n)
    ppl, ratio = compute(ctx, "ppl", "flat"), compute(ctx, "ppl_ratio", "flat")
    lo, hi = scipy.stats.chi2.ppf([0.01, 0.99], k)
    inside = scipy.stats.chi2.cdf(hi, k) - scipy.stats.chi2.cdf(lo, k)
    share = (scipy.stats.chi2.cdf(hi, k + 2) - scipy.stats.chi2.cdf(lo, k + 2)) / inside
    assert ratio.value == pytest.approx(share, abs=0.01) and ratio.value < 1
    # The PPL's standard error: the std of the kept terms (≈ 2s²√(2k), a little less for the
    # trimming) over √kept.
    kept = ppl.details["kept"]
    assert ppl.std_error == pytest.approx(2 * s**2 * math.sqrt(2 * k) / math.sqrt(kept),
                                          rel=0.15)
    assert ppl.details["std_error_method"].startswith("std of the kept per-pair values")


def test_ppl_ratio_reuses_the_ppl_pass_and_adds_only_the_endpoint_decodes():
    model = PixelModel((1, 8, 8), look=bent)
    ctx = context(model, torch.rand(10, 1, 8, 8), ppl_pairs=256)  # batches of 64
    first = compute(ctx, "ppl", "flat")
    assert model.decodes == 8  # 256 pairs × 2 ends
    compute(ctx, "ppl_ratio", "flat")
    assert model.decodes == 16  # + 256 pairs × 2 endpoints
    assert compute(ctx, "ppl", "flat") == first and model.decodes == 16
    # In a fresh evaluation, ppl_ratio first gives ppl the same value.
    other = context(PixelModel((1, 8, 8), look=bent), torch.rand(10, 1, 8, 8), ppl_pairs=256)
    compute(other, "ppl_ratio", "flat")
    assert compute(other, "ppl", "flat").value == first.value


def test_ppl_ratio_of_a_decoder_that_ignores_the_code_is_undefined():
    model = PixelModel((1, 8, 8), look=lambda z: torch.full_like(z, 0.3))
    score = compute(context(model, torch.rand(10, 1, 8, 8), ppl_pairs=50), "ppl_ratio", "flat")
    assert math.isnan(score.value) and score.std_error is None


def test_per_path_scores_carry_the_std_over_paths_over_root_paths():
    test = torch.rand(100, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ctx = context(PixelModel((1, 8, 8), look=bent), test)
    paths = evaluation_paths(ctx)
    features = image_features(ctx, "flat", paths.flatten(0, 1)).view(16, paths.shape[1], -1)
    for name, per_path in (("interp_smoothness", path_smoothness(features)),
                           ("interp_straightness", path_straightness(features))):
        score = compute(ctx, name, "flat")
        assert score.std_error == pytest.approx(float(per_path.std()) / 4, rel=1e-9)
        assert score.std_error > 0 and "√paths" in score.details["std_error_method"]


def test_standard_error_ignores_undefined_values_and_needs_two():
    assert standard_error(np.array([1.0, 3.0, np.nan])) == pytest.approx(2**0.5 / 2**0.5)
    assert standard_error(torch.tensor([1.0, np.nan])) is None


def test_interp_fid_ranks_crossfades_above_a_constant_image(lines):
    scores = {}
    for name, look in (("identity", lambda z: z), ("constant", lambda z: torch.full_like(z, .5))):
        model = PixelModel((1, 32, 32), look=look)
        ctx = context(model, lines)
        scores[name] = compute(ctx, "interp_fid", "pooled")
        decodes = model.decodes
        compute(ctx, "interp_fid", "flat")  # a second feature space reuses the midpoints
        assert model.decodes == decodes
    assert scores["identity"].value < 0.5 * scores["constant"].value
    assert scores["identity"].samples == len(lines) == scores["identity"].details["real"]
    assert 0 < scores["identity"].std_error < 0.2 * scores["identity"].value
    assert "bootstrap over the midpoints" in scores["identity"].details["std_error_method"]


def test_interp_fid_std_error_is_the_std_of_a_seeded_bootstrap_of_the_midpoints(lines):
    ctx = context(PixelModel((1, 32, 32)), lines, seed=4)
    score = compute(ctx, "interp_fid", "pooled")
    fake, real = ctx.feature_set("pooled", MIDPOINTS), ctx.feature_set("pooled", "test")
    # Each resample by hand: the midpoints repeated by their multiplicities, FID to the test set.
    values = []
    for counts in bootstrap_counts(fake.n, INTERP_FID_BOOTSTRAP, seed=4):
        sample = fake.features.double().repeat_interleave(torch.from_numpy(counts), dim=0)
        values.append(frechet_distance(sample.mean(0), torch.cov(sample.T), real.mean, real.cov))
    assert score.std_error == pytest.approx(float(np.std(values, ddof=1)), rel=1e-6)


# --------------------------------------------------------------------- registered, real models

INTERP = ("interp_smoothness", "interp_straightness", "interp_fid", "ppl", "ppl_ratio")
ACAI = ("acai_mean_distance", "acai_smoothness")


def scores_of(model, test, seed=0, **knobs):
    ctx = context(model, test, seed=seed, dataset="lines", ppl_pairs=128, **knobs)
    return {name: compute(ctx, name, "pooled") for name in INTERP + ACAI
            if METRICS.get(name).applies_to(model.capabilities, "lines")}


@pytest.fixture(scope="module")
def trained_ae(lines):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="ae", latent_dim=4, width=8, hidden=64), (1, 32, 32))
    optimizers = model.configure_optimizers(1e-2)
    # 160 steps (under a second): enough that decodes differ between codes — a model that
    # decodes every code to the mean line would leave the ACAI smoothness undefined.
    for _ in range(20):
        for batch in lines.split(32):
            model.train_step(batch, optimizers)
    model.calibrate(lines, 64)
    return model.eval()


def test_every_metric_on_a_trained_autoencoder(trained_ae, lines):
    scores = scores_of(trained_ae, lines)
    assert set(scores) == set(INTERP + ACAI)
    values = {name: score.value for name, score in scores.items()}
    assert all(math.isfinite(v) for v in values.values()), values
    assert 0 <= values["interp_smoothness"] <= 1 - 1 / 15
    assert values["interp_straightness"] >= 1
    assert values["interp_fid"] > 0 and values["ppl"] > 0 and values["ppl_ratio"] > 0
    for name, score in scores.items():
        assert METRICS.get(name).family == "interpolation", name
        assert score.std_error is not None and score.std_error >= 0, name
        assert score.details["std_error_method"], name
    # ACAI smoothness can pass 1 − 1/15: its denominator is the net change of angle, which a
    # path that turns back and forth overshoots.
    assert 0 < values["acai_mean_distance"] < 1 and values["acai_smoothness"] >= 0
    assert scores["acai_smoothness"].details["undefined_pairs_counted_as_0"] < 8
    again = scores_of(trained_ae, lines)
    assert {n: s.value for n, s in again.items()} == values  # fixed seed, same scores
    other = scores_of(trained_ae, lines, seed=1)
    assert other["interp_smoothness"].value != values["interp_smoothness"]
    assert other["ppl"].value != values["ppl"]


def test_unpool_max_decodes_paths_without_switches(lines):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", decoder="unpool-max", latent_dim=4, width=4,
                                  hidden=16), (1, 32, 32)).eval()
    score = compute(context(model, lines[:64], interp_pairs=4), "interp_smoothness", "pooled")
    assert math.isfinite(score.value)
    assert "unpool-max" in score.details["decoder_switches"]


def test_dcgan_interpolates_between_latent_draws(lines):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="dcgan", latent_dim=4, width=4, hidden=16),
                        (1, 32, 32)).eval()
    scores = scores_of(model, lines[:128], interp_path="slerp")
    assert set(scores) == set(INTERP)  # no encoder: no ACAI scores
    assert all(math.isfinite(s.value) for s in scores.values())
    assert scores["interp_smoothness"].details["endpoints"].startswith("latent draws")
    assert scores["ppl"].value > 0 and scores["interp_straightness"].value >= 1
