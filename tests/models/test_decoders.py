"""Every decoder with the conv encoder, at sizes divisible by 4, 1 and 3 channels."""

import pytest
import torch

from latentbench.models import DECODERS, ModelSpec, build_model
from latentbench.models.registry import InputError

SHAPES = [(1, 28, 28), (3, 32, 32), (1, 64, 64), (3, 12, 20)]


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["ae", "vae"])
def test_decoder_round_trip_shapes_and_gradients(decoder, shape, name):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name=name, decoder=decoder, latent_dim=5, width=4, hidden=16),
                        shape)
    x = torch.rand(3, *shape)
    assert model.encode(x).mean.shape == (3, 5)
    assert model.decode(torch.randn(3, 5)).shape == (3, *shape)
    recon = model.reconstruct(x)
    assert recon.shape == x.shape and recon.min() >= 0 and recon.max() <= 1
    model.loss(x).loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_each_decoder_upsamples_differently():
    """Nearest unpooling copies a value into its 2×2 cell; a transposed conv need not."""
    stage = DECODERS.get("unpool-nearest")(1, 1)
    upsample = stage[0]
    x = torch.arange(4.0).view(1, 1, 2, 2)
    assert torch.equal(upsample(x)[0, 0], torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.],
                                                        [2., 2., 3., 3.], [2., 2., 3., 3.]]))
    transposed = DECODERS.get("transposed")(2, 3)
    assert isinstance(transposed, torch.nn.ConvTranspose2d) and transposed.stride == (2, 2)
    assert transposed(torch.zeros(1, 2, 7, 7)).shape == (1, 3, 14, 14)


@pytest.mark.parametrize("shape, message", [((1, 30, 28), "divisible by 4"),
                                            ((2, 28, 28), "1 or 3 channels")])
def test_unusable_image_shapes_are_input_errors(shape, message):
    with pytest.raises(InputError, match=message):
        build_model(ModelSpec(), shape)
