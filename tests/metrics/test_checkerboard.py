"""Checkerboard score: the phase sums equal the DFT's Nyquist bins; oracle models."""

import pytest
import torch

from latentbench.metrics import METRICS, EvalContext
from latentbench.metrics.checkerboard import nyquist_power, power_ratio_bootstrap
from latentbench.models.protocol import LatentModel

SHAPE = (1, 12, 12)


def test_phase_sums_equal_the_fft_at_the_nyquist_bins():
    images = torch.rand(5, 3, 8, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    spectrum = torch.fft.fft2(images)
    h, w = images.shape[-2] // 2, images.shape[-1] // 2
    reference = (spectrum[..., h, w].abs() ** 2 + spectrum[..., h, 0].abs() ** 2
                 + spectrum[..., 0, w].abs() ** 2).sum(1)
    assert torch.allclose(nyquist_power(images), reference, rtol=1e-12)


class Sampler(LatentModel):
    """Samples are fixed images handed in: the data itself, or a pattern."""

    capabilities = frozenset({"sample"})
    latent_dim = 1

    def __init__(self, images):
        super().__init__()
        self.images = images
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def sample(self, n, generator=None):
        index = torch.randint(len(self.images), (n,), generator=generator)
        return self.images[index]

    def decode(self, z):
        raise NotImplementedError

    def loss(self, x):
        raise NotImplementedError


def score(model, test):
    ctx = EvalContext(model, test, test, batch_size=64)
    return METRICS.get("checkerboard").compute(ctx).value


def test_oracles():
    test = torch.rand(200, *SHAPE, generator=torch.Generator().manual_seed(1))
    like_data = score(Sampler(test), test)
    assert like_data == pytest.approx(1.0, rel=0.2)  # resampled from the data: about 1
    board = ((torch.arange(12)[:, None] + torch.arange(12)[None, :]) % 2).float()
    pattern = test * 0.8 + 0.2 * board  # the data with a period-2 checkerboard added
    # F(π, π) of the added board is 0.2·72 = 14.4, power 207 against ~34 for the data: ≈ 6.9.
    assert score(Sampler(pattern), test) == pytest.approx((0.8**2 * 33.8 + 207.4) / 33.8,
                                                          rel=0.15)
    flat = torch.full_like(test, 0.5)
    assert score(Sampler(flat), test) == 0.0
    assert METRICS.get("checkerboard").applies_to({"sample"})


def test_target_family_and_bootstrap_standard_error():
    metric = METRICS.get("checkerboard")
    assert metric.target == 1.0 and metric.higher_is_better is None
    assert metric.family == "samples"
    test = torch.rand(300, *SHAPE, generator=torch.Generator().manual_seed(2))
    result = metric.compute(EvalContext(Sampler(test), test, test, batch_size=64))
    assert result.details["test_power"] > 0 and result.details["sample_power"] > 0
    assert result.value == pytest.approx(result.details["sample_power"]
                                         / result.details["test_power"], rel=1e-12)
    # Two independent means of 300 powers: the ratio's error is about √2 · cv / √300.
    fake, real = nyquist_power(test[:150]), nyquist_power(test[150:])
    rounds = power_ratio_bootstrap(fake, real, rounds=400, seed=0)
    expected = float((fake.var() / fake.mean() ** 2 / 150 + real.var() / real.mean() ** 2 / 150)
                     .sqrt() * fake.mean() / real.mean())
    assert float(rounds.std()) == pytest.approx(expected, rel=0.2)
    assert 0 < result.std_error < 0.3
    assert "bootstrap" in result.details["std_error_method"]
