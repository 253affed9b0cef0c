"""Every decoder and encoder: each valid pair at 28, 32 and 64 px, 1 and 3 channels; what each
upsampling does to a known input; the unpool-max / max-pooling pairing; the fast unpooling and
the in-place activations give the values and gradients of the operations they replace, bit for
bit, and so the same trained weights; the fused unpool-then-conv stages equal unpooling then
convolving to rounding."""

import contextlib
import copy
import itertools
from collections.abc import Iterator
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentbench.models import DECODERS, ENCODERS, ModelSpec, build_model
from latentbench.models.decoders import bed_of_nails, decoder_needs_switches, nearest_2x
from latentbench.models.encoders import ConvEncoder, MaxPoolStage, in_place_activation
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


# --- the fast unpooling: bit for bit the reference operations --------------------------------

#: (threads, dtype, (batch, channels, H, W)): on one thread 1×1 maps, odd sizes, every dtype;
#: on two, maps large enough (> 32,768 output elements) that the copies and the backward kernel
#: split the work between the threads (few: two threads on a loaded runner wait on each other).
UNPOOL_CASES = [(1, dtype, shape) for dtype in (torch.float32, torch.float64, torch.bfloat16)
                for shape in [(1, 1, 1, 1), (3, 5, 7, 6), (8, 16, 14, 14), (33, 32, 7, 7)]
                ] + [(2, torch.float32, (8, 16, 14, 14)), (2, torch.float64, (33, 32, 7, 7))]
INT_VIEW = {torch.float32: torch.int32, torch.float64: torch.int64, torch.bfloat16: torch.int16}


def same_bits(a: Tensor, b: Tensor) -> bool:
    """Equal dtype, shape, layout and bit patterns (``torch.equal`` takes −0 for +0)."""
    return (a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
            and torch.equal(a.view(INT_VIEW[a.dtype]), b.view(INT_VIEW[b.dtype])))


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def spread(shape: tuple[int, ...], dtype: torch.dtype, generator: torch.Generator) -> Tensor:
    """Normal values over ~20 orders of magnitude, with exact zeros and negative zeros: sums of
    them differ between summation orders, and zeros show how a sum starts."""
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    x = x * torch.exp(5 * torch.randn(shape, generator=generator, dtype=torch.float64))
    x[torch.rand(shape, generator=generator) < 0.1] = -0.0
    return x.to(dtype)


def old_bed_of_nails(x: Tensor) -> Tensor:
    """The bed of nails as it was first written: the reference."""
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h, 2, w, 2)
    out[:, :, :, 0, :, 0] = x
    return out.view(n, c, 2 * h, 2 * w)


def interpolate_nearest(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def value_and_grad(fn, x: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
    x = x.detach().requires_grad_()
    y = fn(x)
    y.backward(grad)
    return y.detach(), x.grad


@pytest.mark.parametrize("fast, reference", [(nearest_2x, interpolate_nearest),
                                             (bed_of_nails, old_bed_of_nails)],
                         ids=["nearest", "bed-of-nails"])
def test_unpooling_matches_its_reference_bit_for_bit(fast, reference):
    generator = torch.Generator().manual_seed(0)
    for (n_threads, dtype, shape), layout in itertools.product(
            UNPOOL_CASES, (torch.contiguous_format, torch.channels_last)):
        n, c, h, w = shape
        x = spread(shape, dtype, generator).contiguous(memory_format=layout)
        grad = spread((n, c, 2 * h, 2 * w), dtype, generator).contiguous(memory_format=layout)
        case = f"{n_threads} threads, {dtype}, {shape}, {layout}"
        with threads(n_threads):
            y, dx = value_and_grad(fast, x, grad)
            ref_y, ref_dx = value_and_grad(reference, x, grad)
            with torch.no_grad():
                assert same_bits(fast(x), ref_y), case
        assert same_bits(y, ref_y), case
        # Same values bit for bit; the layout of a gradient is autograd's business.
        assert same_bits(dx.contiguous(), ref_dx.contiguous()), case


def test_the_gradient_check_tells_summation_orders_apart():
    # Autograd's backward of a broadcast copy sums each 2×2 cell in another order: on these
    # values that gives other gradients, which the bit-for-bit test above would catch.
    generator = torch.Generator().manual_seed(0)
    x, grad = spread((8, 16, 14, 14), torch.float32, generator), spread(
        (8, 16, 28, 28), torch.float32, generator)
    n, c, h, w = x.shape
    _, broadcast = value_and_grad(lambda t: t[:, :, :, None, :, None].expand(
        n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w), x, grad)
    _, native = value_and_grad(interpolate_nearest, x, grad)
    assert not torch.equal(broadcast, native)
    # The CPU kernel's order: each output pixel, row-major, added into its cell from zero.
    g = grad.view(n, c, h, 2, w, 2)
    rows_major = ((g[:, :, :, 0, :, 0] + g[:, :, :, 0, :, 1]) + g[:, :, :, 1, :, 0]) + g[
        :, :, :, 1, :, 1]
    assert torch.equal(rows_major, native)


def test_nearest_2x_without_autograd_and_twice_differentiated():
    x = torch.randn(1, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    reference = interpolate_nearest(x)
    with torch.inference_mode():
        assert torch.equal(nearest_2x(x), reference)
    with torch.no_grad():
        assert nearest_2x(x).grad_fn is None
    assert torch.autograd.gradgradcheck(nearest_2x, (x,))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        nearest_2x(x[0])


def train_a_few_steps(model: nn.Module, steps: int = 3) -> nn.Module:
    torch.manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = torch.rand(16, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    for _ in range(steps):
        model.train_step(batch, {"model": optimizer})
    return model


def as_before(model: nn.Module) -> nn.Module:
    """``model`` with out-of-place activations, as the encoders and decoders were first
    written."""
    for module in model.modules():
        if isinstance(module, nn.ReLU | nn.LeakyReLU):
            module.inplace = False
    return model


def unfused(model: nn.Module) -> nn.Module:
    """``model`` whose fused unpool-then-conv stages unpool (F.interpolate nearest, or the
    plain bed of nails) and then convolve, as they were first written."""
    reference = {"unpool-nearest": interpolate_nearest, "unpool-zeros": old_bed_of_nails}
    for module in model.modules():
        for name, upsample in reference.items():
            if type(module) is DECODERS.get(name):
                module.forward = partial(lambda x, switch=None, m=module, up=upsample:
                                         m.conv(up(x)))
    return model


@pytest.mark.parametrize("encoder, decoder", [("conv", "unpool-nearest"),
                                              ("maxpool", "unpool-nearest"),
                                              ("maxpool", "unpool-max")])
def test_training_gives_the_same_weights_as_the_reference_operations(encoder, decoder):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", encoder=encoder, decoder=decoder, latent_dim=4,
                                  width=4, hidden=16), (1, 12, 12))
    reference = as_before(copy.deepcopy(model))
    assert any(getattr(m, "inplace", False) for m in model.modules())
    trained, trained_reference = train_a_few_steps(model), train_a_few_steps(reference)
    for (name, p), q in zip(trained.named_parameters(), trained_reference.parameters(),
                            strict=True):
        assert same_bits(p.detach(), q.detach()), name


@pytest.mark.parametrize("decoder", ["unpool-nearest", "unpool-zeros"])
@pytest.mark.parametrize("c_in, c_out, h, w", [(1, 1, 1, 1), (3, 2, 5, 7), (64, 32, 7, 7),
                                                (32, 1, 14, 14), (6, 3, 16, 9)])
def test_a_fused_stage_is_unpooling_then_its_convolution(decoder, c_in, c_out, h, w):
    # Float64: equal to rounding (1e-12); the values, and the gradients of input, weights and
    # bias. Float32: to float32 rounding of sums of up to 9·c_in products.
    torch.manual_seed(0)
    stage = DECODERS.get(decoder)(c_in, c_out)
    reference = unfused(copy.deepcopy(stage))
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x = torch.randn(3, c_in, h, w, dtype=dtype)
        outputs, grads = [], []
        for net in (stage, reference):
            net.to(dtype).zero_grad()
            xi = x.clone().requires_grad_()
            out = net(xi)
            (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)).sum().backward()
            outputs.append(out.detach())
            grads.append([xi.grad, net.conv.weight.grad, net.conv.bias.grad])
        assert outputs[0].shape == (3, c_out, 2 * h, 2 * w)
        scale = outputs[1].abs().max().item() + 1
        assert (outputs[0] - outputs[1]).abs().max().item() <= tolerance * scale
        # A weight or bias gradient sums over every output position, and such sums cancel
        # (the bias gradient here is ~1e-5 from terms of order 1): float32 rounding of a sum
        # of n terms is bounded by n·eps times their size, not by the size of the result.
        summed = outputs[0].numel() // c_out
        grad_tolerance = max(tolerance, torch.finfo(dtype).eps * summed)
        for a, b in zip(*grads, strict=True):
            assert (a - b).abs().max().item() <= grad_tolerance * (b.abs().max().item() + 1)


def test_a_fused_decoder_trains_to_the_weights_of_the_unfused_one():
    # In float64 the rounding differences stay at 1e-12 through training; float32 training
    # drifts apart at its rounding level, as any change of summation order does.
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", decoder="unpool-nearest", latent_dim=4, width=4,
                                  hidden=16), (1, 12, 12)).double()
    reference = unfused(copy.deepcopy(model))
    torch.manual_seed(1)
    batch = torch.rand(16, 1, 12, 12, dtype=torch.float64)
    for net in (model, reference):
        torch.manual_seed(2)  # the same posterior draws
        optimizer = torch.optim.SGD(net.parameters(), lr=1e-2)
        for _ in range(3):
            net.train_step(batch, {"model": optimizer})
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=1e-10, atol=1e-12), name


def test_in_place_activations_only_where_exact():
    assert in_place_activation(nn.ReLU).inplace
    assert in_place_activation(partial(nn.LeakyReLU, 0.2)).inplace
    assert not in_place_activation(partial(nn.LeakyReLU, -0.5)).inplace
    assert not in_place_activation(nn.ELU).inplace  # its backward from the result rounds
    # The GAN critic's LeakyReLU: gradients bit for bit those of the out-of-place module.
    torch.manual_seed(0)
    critic = ConvEncoder((1, 8, 8), 4, 8, 1, MaxPoolStage, partial(nn.LeakyReLU, 0.2))
    reference = as_before(copy.deepcopy(critic))
    x = torch.randn(4, 1, 8, 8)
    for net in (critic, reference):
        net(x)[0].sum().backward()
    for p, q in zip(critic.parameters(), reference.parameters(), strict=True):
        assert same_bits(p.grad, q.grad)
