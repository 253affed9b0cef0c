"""A decoder that sees more of x than the code says so (``side_channel``), and the evaluation
then drops its likelihood bounds: max-unpooling switches carry the image past the bottleneck."""

import pytest
import torch
from torch import nn

from latentbench.benchmarks.config import EvalSpec
from latentbench.benchmarks.data import DataSpec, load_dataset
from latentbench.benchmarks.evaluate import evaluate
from latentbench.metrics import METRICS
from latentbench.models import DECODERS, LatentModel, ModelSpec, ModuleVAE, Posterior, build_model
from latentbench.models.decoders import decoder_needs_switches

SMALL = {"latent_dim": 2, "width": 8, "hidden": 32}
BOUNDS = ("distortion", "neg_elbo", "iwae_nll")
RECONSTRUCTION = ("recon_mse", "recon_bce", "psnr", "ssim")


@pytest.mark.parametrize("name", ["vae", "ae"])
def test_built_models_declare_the_switches_of_unpool_max(name):
    for decoder in DECODERS:
        model = build_model(ModelSpec(name=name, decoder=decoder, **SMALL), (1, 28, 28))
        if decoder_needs_switches(decoder):
            assert "max-pooling switches" in model.side_channel and decoder in model.side_channel
        else:
            assert model.side_channel is None, decoder
    transposed = build_model(ModelSpec(name=name, decoder="transposed", **SMALL), (1, 28, 28))
    assert transposed.side_channel is None


def test_the_bounds_and_the_reconstructions_are_registered_as_such():
    for name in BOUNDS:
        metric = METRICS.get(name)
        assert metric.bound and metric.family == "likelihood", name
    assert METRICS.get("rate").family == "likelihood" and not METRICS.get("rate").bound
    for name in RECONSTRUCTION:
        metric = METRICS.get(name)
        assert metric.family == "reconstruction" and not metric.bound, name


@pytest.fixture(scope="module")
def switching_vae_and_digits():
    """An unpool-max VAE with a 2-d code trained for 120 steps on 1,024 real digits (~3 s)."""
    data = load_dataset(DataSpec(n_train=1024, n_test=200))
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", decoder="unpool-max", **SMALL), (1, 28, 28))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(120):
        batch = data.train[(step * 64) % 1024:][:64]
        optimizer.zero_grad()
        model.loss(batch).loss.backward()
        optimizer.step()
    return model.eval(), data.test


@torch.no_grad()
def test_decoding_a_code_with_another_images_switches_draws_that_image(
        switching_vae_and_digits):
    model, digits = switching_vae_and_digits
    a, b = digits[:100], digits[100:]
    code_a, switches_b = model.encode(a).mean, model.encode(b).switches
    mixed = torch.sigmoid(model.decode(code_a, switches_b))
    to_a = (mixed - a).square().flatten(1).mean(1)
    to_b = (mixed - b).square().flatten(1).mean(1)
    # The switches decide the picture: every one of the 100 pairs comes out as B, the image
    # whose switches were used, not A, whose code was (measured: MSE 0.10 to A, 0.03 to B;
    # every pair for each of torch seeds 0-3).
    assert (to_b < to_a).all()
    assert to_b.mean() < 0.5 * to_a.mean()


class SkipVAE(ModuleVAE):
    """A plug-in with a skip connection: the decoder adds a learned map of the input image."""

    summary = "test plug-in: VAE whose decoder adds a skip connection from the image"
    side_channel = "its decoder has a skip connection from the encoder's input"

    def __init__(self):
        super().__init__(nn.Sequential(nn.Flatten(), nn.Linear(64, 4)),
                         nn.Sequential(nn.Linear(2, 64), nn.Unflatten(1, (1, 8, 8))),
                         latent_dim=2)
        self.skip = nn.Conv2d(1, 1, 3, padding=1)

    def encode(self, x):
        posterior = super().encode(x)
        return Posterior(posterior.mean, posterior.logvar, switches=(x,))

    def decode_posterior(self, z, posterior):
        return self.decode(z) + self.skip(posterior.switches[0])


class PlainVAE(LatentModel):
    """The minimal protocol model: its decoder sees only z, and it says nothing."""

    capabilities = frozenset({"encode", "variational"})
    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.inner = SkipVAE()

    def encode(self, x):
        return self.inner.encode(x)

    def decode(self, z):
        return self.inner.decode(z)

    def reconstruction_nll(self, logits, x):
        return self.inner.reconstruction_nll(logits, x)

    def loss(self, x):
        raise NotImplementedError


def test_the_evaluation_drops_the_bounds_of_a_plug_in_with_skip_connections():
    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    spec = EvalSpec(metrics=(*RECONSTRUCTION, "rate", *BOUNDS), iwae_k=4, batch_size=32)
    skipping = evaluate(SkipVAE().eval(), images, images, spec, seed=0)
    for name in BOUNDS:
        assert name not in skipping.values
        assert "skip connection" in skipping.errors[name]
    assert "rate" in skipping.values and "rate" not in skipping.caveats
    for name in RECONSTRUCTION:
        assert name in skipping.values and "skip connection" in skipping.caveats[name]
    plain = evaluate(PlainVAE().eval(), images, images, spec, seed=0)
    assert set(plain.values) == {*RECONSTRUCTION, "rate", *BOUNDS} and not plain.caveats
    assert LatentModel.side_channel is None
