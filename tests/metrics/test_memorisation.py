"""Memorisation metrics on oracles: a lookup table of the training set against the identity, and
the data-copying C_T of copied, fresh and far-off samples; the Mann–Whitney Z against its
definition by counting pairs."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentbench.metrics import METRICS, EvalContext
from latentbench.metrics.memorisation import data_copying_ct, data_copying_test
from latentbench.models.protocol import LatentModel, Posterior

SHAPE = (1, 8, 8)


class PixelCode(LatentModel):
    """Codes are the pixels themselves. ``decoder``: ``identity`` reconstructs every image;
    ``lookup`` returns the nearest image of ``table`` (a model that memorised its training
    set); ``constant`` returns mid-grey for every image (bad, but equally bad everywhere)."""

    capabilities = frozenset({"encode", "sample"})

    def __init__(self, decoder, table=None):
        super().__init__()
        self.latent_dim = math.prod(SHAPE)
        self.decoder, self.table = decoder, table
        self.anchor = nn.Parameter(torch.zeros(()))

    def encode(self, x):
        return Posterior(mean=x.flatten(1))

    def decode(self, z):
        if self.decoder == "identity":
            means = z
        elif self.decoder == "lookup":
            means = self.table.flatten(1)[torch.cdist(z, self.table.flatten(1)).argmin(1)]
        else:
            means = torch.full_like(z, 0.5)
        return torch.logit(means).view(-1, *SHAPE)

    def loss(self, x):
        raise NotImplementedError

    def reconstruction_nll(self, logits, x):
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def images(count, seed):
    # Kept inside (0.05, 0.95), where the logit of a pixel is well conditioned.
    return 0.05 + 0.9 * torch.rand(count, *SHAPE, generator=torch.Generator().manual_seed(seed))


def test_generalization_gap_tells_a_lookup_table_from_the_identity():
    train, test = images(300, 0), images(200, 1)

    def gap(model):
        ctx = EvalContext(model, test, train, batch_size=128)
        return METRICS.get("generalization_gap").compute(ctx)

    memoriser = gap(PixelCode("lookup", table=train))
    assert memoriser.details["train_mse"] == pytest.approx(0.0, abs=1e-10)
    # Its test error is the distance to the nearest training image: large.
    assert memoriser.value > 0.05
    assert memoriser.value > 20 * memoriser.std_error
    assert memoriser.details["train_images"] == 200  # a test-sized subset of the 300
    perfect = gap(PixelCode("identity"))
    assert perfect.value == pytest.approx(0.0, abs=1e-10)
    assert perfect.details["test_mse"] == pytest.approx(0.0, abs=1e-10)
    # Equally poor on both splits: no gap beyond the noise, though the error itself is large.
    blind = gap(PixelCode("constant"))
    assert blind.details["test_mse"] > 0.05
    assert abs(blind.value) < 5 * blind.std_error  # one comparison at 1e-6: 4.9 (measured 0.34)


def gaussian_clusters(count, seed, scale=1.0):
    """Points from a mixture of three 2-D Gaussians (σ = 0.5 · scale)."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    which = torch.randint(3, (count,), generator=generator)
    return centres[which] + 0.5 * scale * torch.randn(count, 2, generator=generator,
                                                      dtype=torch.float64)


@pytest.fixture(scope="module")
def splits():
    return gaussian_clusters(2000, 0), gaussian_clusters(1000, 1)


def test_copies_of_training_points_score_far_below_zero(splits):
    train, test = splits
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(2))[:1000]
    copies = train[pick] + 0.01 * torch.randn(1000, 2, generator=torch.Generator().manual_seed(3),
                                              dtype=torch.float64)
    result = data_copying_test(train, test, copies)
    assert result.c_t < -10
    assert result.median_distance_ratio < 0.5
    assert len(result.cell_z) == 5  # one cell per 200 test points, as Meehan et al.


#: |C_T| of fresh draws within this many of its null standard errors: Bonferroni-sized for the
#: 4 comparisons of this module (3 seeds here, 1 in pixel space) at family error 1e-6,
#: Φ⁻¹(1 − 1e-6/8) = 5.16, so 5.2. (A bound of 2 in C_T's own units was 4.5 standard errors
#: with 5 cells, but 2.8 with the 2 cells of the pixel-space case.)
NULL_Z = 5.2


def test_fresh_draws_score_near_zero(splits):
    train, test = splits
    for seed in (4, 5, 6):
        fresh = gaussian_clusters(1000, seed)
        result = data_copying_test(train, test, fresh)
        assert data_copying_ct(train, test, fresh) == result.c_t
        assert abs(result.c_t) < NULL_Z * result.null_std_error
        assert result.median_distance_ratio == pytest.approx(1.0, abs=0.2)


def test_samples_far_from_the_data_score_far_above_zero(splits):
    train, test = splits
    assert data_copying_ct(train, test, gaussian_clusters(1000, 7, scale=3.0)) > 10
    assert data_copying_ct(train, test, gaussian_clusters(1000, 8) + 2.0) > 10


def test_the_cell_z_is_the_mann_whitney_count_standardised():
    # One cell; the training points 0 and 1000 put every point's distance at its own |x|.
    train = torch.tensor([[0.0], [1000.0]])
    test = torch.arange(1.0, 31.0).unsqueeze(1)  # distances 1 … 30
    generated = torch.arange(0.5, 25.0).unsqueeze(1)  # 0.5 … 24.5: nearer, as copies would be
    u = sum(float(g > p) for g in generated for p in test)  # pairs where the sample is farther
    m, n = len(generated), len(test)
    z = (u - m * n / 2 + 0.5) / math.sqrt(m * n * (m + n + 1) / 12)
    result = data_copying_test(train, test, generated, n_cells=1)
    assert result.cell_z == [pytest.approx(z, rel=1e-12)]
    assert result.c_t == pytest.approx(z, rel=1e-12) and z < 0


def test_cells_with_too_few_samples_are_left_out(splits):
    train, test = splits
    # Samples from the cluster at the origin, but for 5 strays at the one at (4, 0).
    generated = torch.cat([0.5 * torch.randn(300, 2, generator=torch.Generator().manual_seed(9),
                                             dtype=torch.float64),
                           torch.tensor([[4.0, 0.0]] * 5, dtype=torch.float64)])
    result = data_copying_test(train, test, generated, n_cells=3)
    used = [z for z in result.cell_z if z is not None]
    assert result.cells_used == len(used) < 3
    weights = [w for w, z in zip(result.cell_weights, result.cell_z, strict=True) if z is not None]
    assert result.c_t == pytest.approx(sum(w * z for w, z in zip(weights, used, strict=True))
                                       / sum(weights), rel=1e-12)
    with pytest.raises(ValueError, match="no cell holds test points and more than 20"):
        data_copying_test(train, test, generated[:20], n_cells=3)
    with pytest.raises(ValueError, match="n_cells: must be an integer"):
        data_copying_test(train, test, generated, n_cells=0)


def test_the_metric_in_pixel_space_flags_a_model_that_replays_its_training_set(replay):
    train, test = images(1000, 0), images(400, 1)

    def score(samples):
        ctx = EvalContext(replay(samples), test, train, batch_size=200,
                          load_extractor=lambda name: nn.Flatten())
        return METRICS.get("data_copying").compute(ctx, "pixels")

    jitter = 0.01 * torch.randn(400, *SHAPE, generator=torch.Generator().manual_seed(2))
    copied = score((train[:400] + jitter).clamp(0, 1))
    assert copied.value < -10
    assert copied.details["cells"] == 2 and copied.details["median_distance_ratio"] < 0.2
    assert copied.samples == 400 and copied.details["train_samples"] == 1000
    fresh = score(images(400, 3))
    assert abs(fresh.value) < NULL_Z * fresh.std_error  # the null standard error of C_T
    assert METRICS.get("data_copying").higher_is_better is None
    assert METRICS.get("data_copying").applies_to({"sample"})


def test_targets_and_families():
    for name, family in (("generalization_gap", "reconstruction"), ("data_copying", "samples")):
        metric = METRICS.get(name)
        assert metric.target == 0.0 and metric.higher_is_better is None
        assert metric.family == family


def test_generalization_gap_standard_error_is_that_of_a_difference_of_means():
    train, test = images(300, 0), images(200, 1)
    ctx = EvalContext(PixelCode("constant"), test, train, batch_size=128)
    score = METRICS.get("generalization_gap").compute(ctx)
    subset = torch.randperm(300, generator=torch.Generator().manual_seed(0))[:200]
    per_image = {name: (split - 0.5).square().flatten(1).mean(1).double()
                 for name, split in (("test", test), ("train", train[subset]))}
    expected = math.sqrt(sum(float(v.var()) / len(v) for v in per_image.values()))
    assert score.std_error == pytest.approx(expected, rel=1e-4)
    assert "var_test" in score.details["std_error_method"]


def test_data_copying_null_standard_error_is_that_of_a_weighted_mean(splits):
    train, test = splits
    result = data_copying_test(train, test, gaussian_clusters(1000, 4))
    weights = [w for w, z in zip(result.cell_weights, result.cell_z, strict=True)
               if z is not None]
    assert result.null_std_error == pytest.approx(
        math.sqrt(sum(w * w for w in weights)) / sum(weights), rel=1e-12)
