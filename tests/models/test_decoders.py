"""Every decoder and encoder: each valid pair at 28, 32 and 64 px, 1 and 3 channels; what each
upsampling does to a known input; the unpool-max / max-pooling pairing."""

import pytest
import torch
from torch import nn

from latentbench.models import DECODERS, ENCODERS, ModelSpec, build_model
from latentbench.models.decoders import bed_of_nails, decoder_needs_switches
from latentbench.models.registry import InputError

PAIRS = [(e, d) for d in DECODERS for e in ENCODERS
         if not decoder_needs_switches(d) or e == "maxpool"]
SHAPES = [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)]


def test_all_five_decoders_and_both_encoders_are_registered():
    assert set(DECODERS) == {"transposed", "unpool-nearest", "unpool-zeros", "unpool-max",
                             "upsample-bilinear"}
    assert set(ENCODERS) == {"conv", "maxpool"}


@pytest.mark.parametrize("encoder, decoder", PAIRS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_every_valid_pair_round_trips_and_trains(encoder, decoder, shape):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", encoder=encoder, decoder=decoder, latent_dim=5,
                                  width=4, hidden=16), shape)
    x = torch.rand(2, *shape)
    posterior = model.encode(x)
    assert posterior.mean.shape == (2, 5)
    assert (posterior.switches is not None) == (encoder == "maxpool")
    assert model.decode(torch.randn(2, 5)).shape == (2, *shape)
    recon = model.reconstruct(x)
    assert recon.shape == x.shape and 0 <= recon.min() and recon.max() <= 1
    assert model.sample(2).shape == (2, *shape)
    model.loss(x).loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def _upsample(decoder, x, switch=None):
    return DECODERS.get(decoder)(1, 1).upsample(x, switch)


def test_unpooling_layers_on_a_known_input():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert torch.equal(_upsample("unpool-nearest", x)[0, 0], torch.tensor(
        [[1., 1., 2., 2.], [1., 1., 2., 2.], [3., 3., 4., 4.], [3., 3., 4., 4.]]))
    assert torch.equal(_upsample("unpool-zeros", x)[0, 0], torch.tensor(
        [[1., 0., 2., 0.], [0., 0., 0., 0.], [3., 0., 4., 0.], [0., 0., 0., 0.]]))
    bilinear = _upsample("upsample-bilinear", x)[0, 0]
    # align_corners=False: the output pixel at 0.75 of the way from 1 to 2 is 1.25, and so on.
    assert torch.allclose(bilinear[0], torch.tensor([1.0, 1.25, 1.75, 2.0]))
    assert torch.allclose(bilinear[:, 0], torch.tensor([1.0, 1.5, 2.5, 3.0]))


def test_unpool_max_puts_values_back_where_the_maxima_were():
    image = torch.tensor([[[[0., 5., 1., 0.], [2., 0., 0., 7.], [0., 0., 9., 0.],
                            [3., 0., 0., 0.]]]])
    pooled, switches = nn.MaxPool2d(2, return_indices=True)(image)
    restored = _upsample("unpool-max", pooled, switches)
    assert torch.equal(restored, nn.MaxUnpool2d(2)(pooled, switches))
    assert torch.equal(restored[0, 0], torch.tensor(
        [[0., 5., 0., 0.], [0., 0., 0., 7.], [0., 0., 9., 0.], [3., 0., 0., 0.]]))
    # No switches (a sample from the prior): fixed top-left positions, the bed of nails.
    assert torch.equal(_upsample("unpool-max", pooled), bed_of_nails(pooled))


def test_unpool_max_reconstructions_use_the_encoder_switches():
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="ae", decoder="unpool-max", latent_dim=4, width=4,
                                  hidden=16), (1, 12, 12))
    x = torch.rand(3, 1, 12, 12)
    with torch.no_grad():
        posterior = model.encode(x)
        with_switches = model.reconstruct(x)
        without = torch.sigmoid(model.decode(posterior.mean))
    assert not torch.allclose(with_switches, without)
    assert "top-left" in model.sampling


def test_unpool_max_gets_the_pooling_encoder_and_rejects_another():
    model = build_model(ModelSpec(decoder="unpool-max", width=4, hidden=16), (1, 28, 28))
    assert model.encode(torch.rand(1, 1, 28, 28)).switches is not None
    with pytest.raises(InputError, match="model.encoder: decoder 'unpool-max'.*maxpool"):
        build_model(ModelSpec(decoder="unpool-max", encoder="conv"), (1, 28, 28))


@pytest.mark.parametrize("shape, message", [((1, 30, 28), "divisible by 4"),
                                            ((2, 28, 28), "1 or 3 channels")])
def test_unusable_image_shapes_are_input_errors(shape, message):
    with pytest.raises(InputError, match=message):
        build_model(ModelSpec(), shape)
