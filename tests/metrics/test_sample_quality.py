"""The registered FID family: oracle models (the data itself scores best, a constant image
worst), one feature pass shared by the six scores, and keys and counts as recorded."""

import numpy as np
import pytest
import torch
from torch import nn

from latentbench.benchmarks.data import DataSpec, load_dataset
from latentbench.metrics import METRICS, EvalContext
from latentbench.metrics.context import EvalSettings
from latentbench.metrics.prdc import prdc

FAMILY = ("fid", "kid", "precision", "recall", "density", "coverage")


class CountingPool(nn.Module):
    """4×4 average pooling as features (49-d for MNIST), counting the images it sees; scaled
    so that the cubic KID kernel (xᵀy/d + 1)³ sees more than its constant term."""

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.body = nn.Sequential(nn.AvgPool2d(4), nn.Flatten())

    def forward(self, images):
        self.seen += len(images)
        return 8.0 * self.body(images)


@pytest.fixture(scope="module")
def digits():
    data = load_dataset(DataSpec("mnist5k"))
    return data.test[:400], data.train[:400]


def scores(model, test, extractor, **settings):
    ctx = EvalContext(model, test, test, batch_size=128, settings=EvalSettings(**settings),
                      load_extractor=lambda name: extractor)
    return {name: METRICS.get(name).compute(ctx, "pool") for name in FAMILY}, ctx


def test_the_test_set_itself_scores_best(digits, replay):
    test, _ = digits
    extractor = CountingPool()
    result, _ = scores(replay(test), test, extractor, kid_subsets=10, kid_subset_size=200)
    assert result["fid"].value == pytest.approx(0.0, abs=1e-9)
    # Unbiased, so ≈ 0 up to the subsets' noise (real and fake subsets are drawn apart): within
    # 5 standard errors, one comparison at family error 1e-6 (4.9; measured −2.1).
    assert abs(result["kid"].value) < 5 * result["kid"].std_error
    assert result["kid"].std_error == pytest.approx(result["kid"].details["subset_std"], rel=0.1)
    for name in ("precision", "recall", "coverage"):
        assert result[name].value == 1.0
    assert result["density"].value == pytest.approx(1.0, abs=0.02)
    # One pass over the test images and one over the samples served all six scores.
    assert extractor.seen == 2 * len(test)


def test_held_out_digits_beat_a_constant_image(digits, replay):
    test, train = digits
    other, _ = scores(replay(train), test, CountingPool(), kid_subsets=10, kid_subset_size=200)
    mean_image = test.mean(0, keepdim=True).expand_as(test).contiguous()
    noise = mean_image + 1e-3 * torch.randn(mean_image.shape, generator=torch.Generator()
                                           .manual_seed(0))
    constant, _ = scores(replay(noise), test, CountingPool(), kid_subsets=10,
                         kid_subset_size=200)
    assert 0 < other["fid"].value < constant["fid"].value
    assert other["kid"].value < constant["kid"].value
    for name in ("recall", "coverage"):
        assert other[name].value > 0.5 > constant[name].value


def test_scores_equal_the_public_functions_on_the_same_features(digits, replay):
    test, train = digits
    result, ctx = scores(replay(train), test, CountingPool(), kid_subsets=5, kid_subset_size=100)
    real, fake = ctx.feature_set("pool", "test"), ctx.feature_set("pool", "samples")
    # The streamed float64 moments equal NumPy's mean and N − 1 covariance of the features.
    np.testing.assert_allclose(real.mean.numpy(), real.features.double().mean(0).numpy(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(real.cov.numpy(), np.cov(real.features.double().numpy().T),
                               rtol=1e-9, atol=1e-12)
    reference3, reference5 = prdc(real.features, fake.features, 3), prdc(real.features,
                                                                         fake.features, 5)
    assert result["precision"].value == reference3["precision"]
    assert result["recall"].value == reference3["recall"]
    assert result["density"].value == reference5["density"]
    assert result["coverage"].value == reference5["coverage"]
    for score in result.values():
        assert score.samples == len(train) and score.details["real_samples"] == len(test)


def test_family_is_registered_in_feature_space_and_needs_samples():
    for name in FAMILY:
        metric = METRICS.get(name)
        assert metric.feature_space and metric.applies_to({"sample"})
        assert not metric.applies_to({"encode", "variational"})


def test_family_directions_and_targets():
    for name in FAMILY:
        assert METRICS.get(name).family == "samples"
    assert METRICS.get("density").target == 1.0
    assert METRICS.get("density").higher_is_better is None
    for name in ("precision", "recall", "coverage"):
        assert METRICS.get(name).higher_is_better and METRICS.get(name).target is None
    for name in ("fid", "kid"):
        assert METRICS.get(name).higher_is_better is False


def test_every_score_has_a_standard_error_and_its_method(digits, replay):
    test, train = digits
    result, _ = scores(replay(train), test, CountingPool(), kid_subsets=10)
    for name, score in result.items():
        assert 0 < score.std_error < abs(score.value) + 1, name
        assert score.details["std_error_method"], name
    for name in ("fid", "precision", "recall", "density", "coverage"):
        assert result[name].details["bootstrap_rounds"] == 30
    # The default subset is half the 400 points; no warning, no clipping.
    assert result["kid"].details["subset_size"] == 200
    assert not result["kid"].details["subset_size_clipped"]


def test_a_kid_subset_as_large_as_the_set_is_clipped_with_a_warning(digits, replay):
    test, train = digits
    with pytest.warns(UserWarning, match="kid_subset_size = 400 reaches the smaller"):
        result, _ = scores(replay(train), test, CountingPool(), kid_subsets=10,
                           kid_subset_size=400)
    kid = result["kid"]
    assert kid.details["subset_size"] == 200 and kid.details["subset_size_clipped"]
    assert kid.details["subset_size_requested"] == 400
    assert kid.std_error > 0


def test_bootstrap_errors_are_reproducible_and_follow_the_seed(digits, replay):
    test, train = digits

    def errors(seed):
        ctx = EvalContext(replay(train), test, test, batch_size=128, seed=seed,
                          settings=EvalSettings(kid_subsets=5),
                          load_extractor=lambda name: CountingPool())
        return [METRICS.get(name).compute(ctx, "pool").std_error for name in ("fid", "density")]

    assert errors(0) == errors(0)
    assert errors(0) != errors(1)
