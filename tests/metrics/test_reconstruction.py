"""Reconstruction metrics: oracle models and references (numpy, torchmetrics' classes)."""

import numpy as np
import pytest
import torch
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from latentbench.metrics import METRICS, EvalContext
from latentbench.models.protocol import LatentModel, Posterior


class IdentityAutoencoder(LatentModel):
    """The perfect autoencoder: the code is the image, the decoder gives it back."""

    capabilities = frozenset({"encode"})

    def __init__(self, shape):
        super().__init__()
        self.shape = shape
        self.latent_dim = int(np.prod(shape))
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the model a device

    def encode(self, x):
        return Posterior(mean=x.flatten(1))

    def decode(self, z):
        return torch.logit(z.clamp(1e-7, 1 - 1e-7)).view(-1, *self.shape)

    def reconstruction_nll(self, logits, x):
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, x, reduction="none").flatten(1).sum(1)

    def loss(self, x):
        raise NotImplementedError

    def sample(self, n, generator=None):
        raise NotImplementedError


class ConstantAutoencoder(IdentityAutoencoder):
    """The useless autoencoder: grey whatever the input."""

    def decode(self, z):
        return torch.zeros(len(z), *self.shape)


SHAPE = (1, 16, 16)


@pytest.fixture
def images():
    return torch.rand(300, *SHAPE, generator=torch.Generator().manual_seed(0))


def scores(model, images, names=("recon_mse", "recon_bce", "psnr", "ssim")):
    ctx = EvalContext(model=model, test_images=images, train_images=images, batch_size=64)
    return {n: METRICS.get(n).compute(ctx).value for n in names}


def test_the_perfect_autoencoder_scores_best(images):
    perfect = scores(IdentityAutoencoder(SHAPE), images)
    useless = scores(ConstantAutoencoder(SHAPE), images)
    assert perfect["recon_mse"] == pytest.approx(0.0, abs=1e-12)
    assert perfect["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert perfect["psnr"] > 100
    for name in perfect:
        better = METRICS.get(name).higher_is_better
        assert (perfect[name] > useless[name]) == better, name


def test_values_match_numpy_and_torchmetrics(images):
    got = scores(ConstantAutoencoder(SHAPE), images)
    x = images.double().numpy()
    assert got["recon_mse"] == pytest.approx(np.mean((x - 0.5) ** 2), rel=1e-6)
    assert got["recon_bce"] == pytest.approx(np.log(2.0), rel=1e-6)  # BCE of p = ½ is log 2
    grey = torch.full_like(images, 0.5)
    psnr = PeakSignalNoiseRatio(data_range=1.0, reduction="none", dim=(1, 2, 3))
    assert got["psnr"] == pytest.approx(psnr(grey, images).mean().item(), rel=1e-5)
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
    assert got["ssim"] == pytest.approx(ssim(grey, images).item(), rel=1e-4, abs=1e-6)


def test_batch_size_does_not_change_the_scores(images):
    model = ConstantAutoencoder(SHAPE)
    a = scores(model, images)
    ctx = EvalContext(model=model, test_images=images, train_images=images, batch_size=7)
    for name, value in a.items():
        assert METRICS.get(name).compute(ctx).value == pytest.approx(value, rel=1e-6)


def test_reconstruction_metrics_need_an_encoder():
    for name in ("recon_mse", "recon_bce", "psnr", "ssim"):
        assert not METRICS.get(name).applies_to({"sample"})
        assert METRICS.get(name).applies_to({"encode", "sample"})


def test_each_score_carries_the_standard_error_of_its_per_image_values(images):
    model = ConstantAutoencoder(SHAPE)
    ctx = EvalContext(model=model, test_images=images, train_images=images, batch_size=64)
    x = images.double().flatten(1)
    per_image = {"recon_mse": ((x - 0.5) ** 2).mean(1),
                 "recon_bce": torch.full((len(x),), float(np.log(2.0)), dtype=torch.float64)}
    for name, values in per_image.items():
        score = METRICS.get(name).compute(ctx)
        assert score.samples == len(images)
        assert score.details["std_error_method"] == "per-image std / sqrt(n)"
        assert score.std_error == pytest.approx(float(values.std() / np.sqrt(len(values))),
                                                rel=1e-6, abs=1e-15)
    for name in ("psnr", "ssim"):
        score = METRICS.get(name).compute(ctx)
        per = getattr(ctx.test_pass, name)
        assert score.std_error == pytest.approx(float(per.std() / np.sqrt(len(per))), rel=1e-12)
        assert 0 < score.std_error < abs(score.value)
    # The grey reconstruction has the same BCE on every image: no spread, no error.
    assert METRICS.get("recon_bce").compute(ctx).std_error == pytest.approx(0.0, abs=1e-12)
    assert METRICS.get("recon_bce").compute(ctx).details["grey_pixels"] == 1.0


def test_reconstruction_metrics_are_a_family_and_no_bound():
    for name in ("recon_mse", "recon_bce", "psnr", "ssim"):
        assert METRICS.get(name).family == "reconstruction" and not METRICS.get(name).bound
