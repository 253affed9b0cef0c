"""Factor draws for the disentanglement metrics: batches that share a factor, pairs that share
one, and the encoded pool, on the real ``shapes`` grid."""

import numpy as np
import pytest
import torch

from latentbench.benchmarks.data.shapes import ShapesFactors
from latentbench.metrics.factors import encode_factor_draws, sample_fixed, sample_pairs
from latentbench.models import ModelSpec, build_model


def test_a_fixed_factor_batch_shares_it_and_varies_the_rest():
    sampler = ShapesFactors()
    batch = sample_fixed(sampler, 64, factor=3, value=7, rng=np.random.default_rng(0))
    assert batch.shape == (64, 5) and (batch[:, 3] == 7).all()
    for k in (0, 1, 2, 4):  # the others are drawn: 64 draws of 3…40 values are not all equal
        assert len(np.unique(batch[:, k])) > 1
    # the sprites sit in the same column: x fixed, so their horizontal ink centre agrees
    images = sampler.render(batch)[:, 0]
    columns = (images.sum(1) * torch.arange(64)).sum(1) / images.sum((1, 2))
    assert columns.max() - columns.min() < 2.0


def test_pairs_share_their_factor_value_and_nothing_else():
    sampler = ShapesFactors()
    first, second = sample_pairs(sampler, 500, factor=2, rng=np.random.default_rng(1))
    assert (first[:, 2] == second[:, 2]).all()
    assert len(np.unique(first[:, 2])) > 20  # a value per pair, not one for all
    for k in (0, 1, 3, 4):  # independent elsewhere: most pairs differ
        assert (first[:, k] != second[:, k]).mean() > 0.5


@pytest.mark.parametrize("call", [
    lambda s, r: sample_fixed(s, 4, factor=5, value=0, rng=r),
    lambda s, r: sample_fixed(s, 4, factor=0, value=3, rng=r),
    lambda s, r: sample_pairs(s, 4, factor=-1, rng=r),
])
def test_a_factor_or_value_off_the_grid_is_refused(call):
    with pytest.raises(ValueError, match="factor|value"):
        call(ShapesFactors(), np.random.default_rng(0))


def test_the_pool_holds_the_posterior_means_of_the_rendered_draws():
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", latent_dim=3, width=4, hidden=8),
                        (1, 64, 64)).eval()
    pool = encode_factor_draws(model, ShapesFactors(), train=30, test=10, seed=4,
                               batch_size=16)
    assert pool.codes.shape == (40, 3) and pool.codes.dtype == np.float64
    assert pool.factors.shape == (40, 5) and pool.train == 30 and pool.seed == 4
    assert pool.fit_codes.shape == (30, 3) and pool.test_factors.shape == (10, 5)
    expected = ShapesFactors().sample(40, np.random.default_rng(4))
    assert np.array_equal(pool.factors, expected)  # the draw is a function of the seed
    with torch.no_grad():
        means = model.encode(ShapesFactors().render(expected)).mean.double().numpy()
    np.testing.assert_allclose(pool.codes, means, rtol=1e-5, atol=1e-6)
