"""ACAI lines scores: the reference oracles of docs/metrics.md, the nearest line against scipy's
cosine ``cdist`` (what ``brain-research/acai`` ``lib/eval.py`` calls), the smoothness rules, the
input contract, and the registered metrics on a model that interpolates perfectly."""

import math

import numpy as np
import pytest
import scipy.spatial.distance
import torch

from latentbench.metrics import METRICS, EvalContext, acai_lines_metrics
from latentbench.metrics.acai import (
    LineBank,
    angle_smoothness,
    line_scores,
    nearest_lines,
    true_lines,
)
from latentbench.metrics.context import EvalSettings
from latentbench.metrics.interpolation import evaluation_paths
from latentbench.metrics.line_images import draw_lines
from latentbench.models.protocol import LatentModel, Posterior

START, END, STEPS = 5 * math.pi / 7, 3 * math.pi / 2, 16


@pytest.fixture(scope="module")
def bank() -> LineBank:
    return true_lines()


@pytest.fixture(scope="module")
def ends() -> torch.Tensor:
    return draw_lines([START, END])


def test_perfect_interpolation_scores_zero(bank):
    # True lines at evenly spaced angles: each is (nearly) in the bank, and the angle moves
    # at an even pace.
    perfect = draw_lines(np.linspace(START, END, STEPS))[None]
    scores = acai_lines_metrics(perfect, reference=bank)
    assert scores["mean_distance"] < 1e-5
    assert abs(scores["smoothness"]) < 1e-3


def test_pixel_crossfade_matches_the_reference_values(bank, ends):
    t = torch.linspace(0, 1, STEPS)[:, None, None, None]
    crossfade = ((1 - t) * ends[0] + t * ends[1])[None]
    scores = acai_lines_metrics(crossfade, reference=bank)
    assert scores["mean_distance"] == pytest.approx(7.2e-3, rel=0.03)
    # Often quoted as ≈ 0.94; measured 0.921 (a literal scipy cdist + np.unwrap transcription of
    # lib/eval.py gives the same). The nearest line creeps 0.007 rad, then jumps to the end.
    assert scores["smoothness"] == pytest.approx(0.94, rel=0.03)


def test_abrupt_switch_is_real_but_not_smooth(bank, ends):
    half = STEPS // 2
    abrupt = torch.cat([ends[:1].expand(half, -1, -1, -1),
                        ends[1:].expand(STEPS - half, -1, -1, -1)])[None]
    scores = acai_lines_metrics(abrupt, reference=bank)
    assert scores["mean_distance"] < 1e-5
    assert scores["smoothness"] == pytest.approx(1 - 1 / (STEPS - 1), rel=1e-3)  # ≈ 0.93


def test_default_bank_is_the_reference_one(bank):
    assert bank.images.shape == (10_000, 32, 32)
    np.testing.assert_allclose(bank.angles.numpy(), np.arange(10_000) * (2 * np.pi / 10_000),
                               rtol=1e-12)
    lines = draw_lines(np.linspace(0.1, 0.9, 4))[None]
    assert acai_lines_metrics(lines) == acai_lines_metrics(lines, reference=bank)


def test_nearest_line_equals_scipy_cosine_cdist():
    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    small = LineBank(draw_lines(angles)[:, 0], torch.from_numpy(angles))
    queries = draw_lines(rng.random(40) * 2 * np.pi)[:, 0].double().numpy()
    queries += 0.3 * rng.standard_normal(queries.shape)
    distance, angle = nearest_lines(queries, small)
    reference = scipy.spatial.distance.cdist(
        queries.reshape(40, -1), small.images.double().numpy().reshape(300, -1), "cosine")
    np.testing.assert_allclose(distance, reference.min(1), rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(angle, angles[reference.argmin(1)])


def test_grey_image_has_cosine_distance_one():
    angles = np.array([0.0, 1.0])
    distance, _ = nearest_lines(np.zeros((1, 32, 32)),
                                LineBank(draw_lines(angles)[:, 0], angles))
    assert distance.tolist() == [1.0]


def test_smoothness_unwraps_across_zero():
    # Evenly spaced through 2π → 0: after unwrapping, uniform motion.
    across = (6.0 + 0.1 * np.arange(10)) % (2 * np.pi)
    assert angle_smoothness(across[None])[0] == pytest.approx(0.0, abs=1e-12)
    # Hand computed: steps 0.1, 0.1, 0.4 of a total 0.6 → 0.4/0.6 − 1/3.
    assert angle_smoothness(np.array([[1.0, 1.1, 1.2, 1.6]]))[0] == pytest.approx(1 / 3)
    # Backwards motion counts by its size: steps 0.5, 0.2 (back), 0.3 of a total 0.6.
    assert angle_smoothness(np.array([[0.0, 0.5, 0.3, 0.6]]))[0] == pytest.approx(0.5 / 0.6 - 1 / 3)


def test_undefined_smoothness_counts_as_zero_in_the_mean(bank, ends):
    half = STEPS // 2
    abrupt = torch.cat([ends[:1].expand(half, -1, -1, -1), ends[1:].expand(half, -1, -1, -1)])
    still = ends[:1].expand(STEPS, -1, -1, -1)  # starts and ends on one line: undefined
    assert np.isnan(angle_smoothness(np.full((1, 5), 2.0)))[0]
    both = acai_lines_metrics(torch.stack([abrupt, still]), reference=bank)
    assert both["smoothness"] == pytest.approx((1 - 1 / (STEPS - 1)) / 2, rel=1e-3)
    assert math.isnan(acai_lines_metrics(still[None], reference=bank)["smoothness"])


def test_channel_axes_and_array_input_give_the_same_scores(bank):
    lines = draw_lines(np.linspace(1.0, 2.0, 5)).view(1, 5, 32, 32) * 0.9
    expected = acai_lines_metrics(lines, reference=bank)
    for variant in (lines[:, :, None], lines[..., None], lines.numpy(), lines.double()):
        assert acai_lines_metrics(variant, reference=bank) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("shape", "message"), [
    ((5, 32, 32), "n_interp, n_steps"),
    ((1, 1, 32, 32), "at least 2 steps"),
    ((1, 4, 2, 32, 32), "one channel"),
    ((1, 4, 32, 16), "square"),
])
def test_bad_shapes_are_rejected(shape, message):
    with pytest.raises(ValueError, match=message):
        acai_lines_metrics(torch.zeros(shape))


def test_bad_values_and_references_are_rejected(bank):
    lines = draw_lines(np.linspace(1.0, 2.0, 4))[None]
    with pytest.raises(ValueError, match="finite"):
        acai_lines_metrics(torch.where(lines > 0, math.nan, lines), reference=bank)
    small = LineBank(draw_lines([0.0, 1.0], size=16)[:, 0], np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="like the interpolations"):
        acai_lines_metrics(lines, reference=small)
    with pytest.raises(ValueError, match="one angle per line"):
        acai_lines_metrics(lines, reference=LineBank(bank.images, bank.angles[:5]))


class AngleModel(LatentModel):
    """Encodes a line as (cos θ, sin θ) of its ink's centre of mass seen from the image centre,
    and decodes a code to the true line at its angle: slerp then turns the line evenly."""

    capabilities = frozenset({"encode"})
    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the model a device
        self.decodes = 0

    def encode(self, x):
        ink = x[:, 0].double()
        centres = torch.arange(32, dtype=torch.float64) + 0.5 - 16
        mass = ink.sum((1, 2))
        right = (ink.sum(1) * centres).sum(1) / mass
        up = -(ink.sum(2) * centres).sum(1) / mass  # rows point down, θ counter-clockwise
        direction = torch.stack([right, up], 1)
        return Posterior(mean=(direction / direction.norm(dim=1, keepdim=True)).float())

    def decode(self, z):
        self.decodes += 1
        lines = (draw_lines(torch.atan2(z[:, 1], z[:, 0]).double()) + 1) / 2
        return torch.logit(lines.clamp(1e-6, 1 - 1e-6))

    def loss(self, x):
        raise NotImplementedError


def acai(model, path):
    test = (draw_lines(np.random.default_rng(5).random(200) * 2 * np.pi) + 1) / 2
    ctx = EvalContext(model, test, test, batch_size=64, dataset="lines",
                      settings=EvalSettings(interp_path=path))
    return {n: METRICS.get(f"acai_{n}").compute(ctx) for n in ("mean_distance", "smoothness")}


def test_registered_scores_of_a_perfect_interpolator():
    model = AngleModel()
    scores = acai(model, "slerp")
    assert model.decodes == 4  # 16 × 16 decodes in batches of 64: one pass for both scores
    assert scores["mean_distance"].value < 1e-4
    assert abs(scores["smoothness"].value) < 0.01
    assert scores["mean_distance"].samples == 256 and scores["smoothness"].samples == 16
    assert scores["smoothness"].details["path"] == "slerp"


def test_registered_smoothness_sees_uneven_pace():
    # lerp between two unit codes follows the chord: every decode is still a true line, but
    # the angle turns fastest mid-way — realism stays perfect, smoothness does not.
    scores = acai(AngleModel(), "lerp")
    assert scores["mean_distance"].value < 1e-4
    # Measured 0.031 against 2.7e-4 for slerp (a quarter turn alone gives ≈ 0.018).
    assert scores["smoothness"].value > 0.02
    assert scores["smoothness"].value > 20 * acai(AngleModel(), "slerp")["smoothness"].value


def test_registered_scores_carry_the_standard_error_over_paths():
    model = AngleModel()
    test = (draw_lines(np.random.default_rng(5).random(200) * 2 * np.pi) + 1) / 2
    ctx = EvalContext(model, test, test, batch_size=64, dataset="lines",
                      settings=EvalSettings(interp_path="lerp"))
    distance = METRICS.get("acai_mean_distance").compute(ctx)
    smoothness = METRICS.get("acai_smoothness").compute(ctx)
    # The same paths, scored by hand: the std over the 16 paths / √16.
    scores = line_scores(evaluation_paths(ctx) * 2 - 1)
    per_path = np.nan_to_num(scores.smoothness, nan=0.0)
    assert smoothness.std_error == pytest.approx(per_path.std(ddof=1) / 4, rel=1e-12)
    assert distance.std_error == pytest.approx(scores.distance.mean(1).std(ddof=1) / 4,
                                               rel=1e-12)
    assert smoothness.std_error > 0 and distance.std_error >= 0
    assert "√paths" in smoothness.details["std_error_method"]
    assert "√paths" in distance.details["std_error_method"]


def test_one_path_has_no_standard_error():
    test = (draw_lines(np.random.default_rng(5).random(20) * 2 * np.pi) + 1) / 2
    ctx = EvalContext(AngleModel(), test, test, batch_size=64, dataset="lines",
                      settings=EvalSettings(interp_pairs=1))
    assert METRICS.get("acai_smoothness").compute(ctx).std_error is None
    assert METRICS.get("acai_mean_distance").compute(ctx).std_error is None


def test_registered_metrics_apply_only_to_encoders_on_lines():
    for name in ("acai_mean_distance", "acai_smoothness"):
        metric = METRICS.get(name)
        assert not metric.higher_is_better and metric.family == "interpolation"
        assert metric.applies_to({"encode"}, "lines")
        assert not metric.applies_to({"encode"}, "mnist5k")
        assert not metric.applies_to({"sample"}, "lines")
