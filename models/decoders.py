"""Decoders: code ``[N, latent_dim]`` → logits ``[N, C, H, W]``.

Every decoder has the same skeleton — fully connected layers to a ``2·width × H/4 × W/4`` map,
then two stages that double the resolution — and differs only in how a stage upsamples, which
keeps a comparison between decoders about upsampling and nothing else. A registered decoder is
the factory of one stage ``(c_in, c_out) → module``; a stage's ``forward(x, switch)`` gets the
matching max-pooling switches of the encoder, which only ``unpool-max`` uses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentbench.models.encoders import DOWNSAMPLING
from latentbench.models.registry import Registry

UpStage = Callable[[int, int], nn.Module]
DECODERS: Registry[UpStage] = Registry("decoder", "model.decoder")


def bed_of_nails(x: Tensor) -> Tensor:
    """Each value at the top-left of its 2×2 cell, zeros elsewhere.

    ``out[n, c, 2i, 2j] = x[n, c, i, j]`` and ``out[n, c, 2i + a, 2j + b] = 0`` for
    ``(a, b) ≠ (0, 0)``. Input: any ``[N, C, H, W]`` tensor; output: a contiguous
    ``[N, C, 2H, 2W]`` of its dtype and device. Its gradient is the top-left entry of each cell of
    the output's gradient, an exact copy.

    Speed: a zero fill then one strided copy is as fast as anything measured on the CPU (an
    uninitialised buffer whose three other quarters are zeroed separately, interleaving through
    ``stack``/``cat``, or reinterpreting ``(x, 0)`` pairs as 64-bit integers were all as fast or
    slower), so this stays the plain formulation, whose autograd is exact by construction.
    """
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h, 2, w, 2)
    out[:, :, :, 0, :, 0] = x
    return out.view(n, c, 2 * h, 2 * w)


def _nearest_2x_copy(x: Tensor) -> Tensor:
    """The forward of :func:`nearest_2x`: plain copies, no arithmetic, so exact for any dtype.

    ``F.interpolate(..., mode="nearest")`` on the CPU takes its channels-last kernel for maps this
    small (output ``H + W <= 128``): it converts the input to channels-last, upsamples, and copies
    the result back to the input's layout — three passes and two full-size temporaries. Copies
    into the output directly do one pass:

    - NCHW on the CPU: the even columns of the even rows from ``x``, the odd columns from ``x``,
      then the odd rows from the even rows. Each copy's inner loop runs along a row; the single
      copy from a ``[N, C, H, 2, W, 2]`` broadcast of ``x`` does the same work but with an inner
      loop of two elements, and measured 1.5–4× slower on one thread.
    - channels-last, and any device other than the CPU: one copy from the broadcast, in the
      input's layout (channels innermost for channels-last, a contiguous run of channels per
      pixel; on a GPU one kernel is cheaper than three).
    """
    n, c, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        # Channels-last in, channels-last out, as F.interpolate does: work on the NHWC view.
        nhwc = x.permute(0, 2, 3, 1)
        out = nhwc[:, :, None, :, None, :].expand(n, h, 2, w, 2, c).reshape(n, 2 * h, 2 * w, c)
        return out.permute(0, 3, 1, 2)
    x = x.contiguous()
    if x.device.type != "cpu":
        return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)
    out = x.new_empty(n, c, h, 2, w, 2)
    out[:, :, :, 0, :, 0] = x
    out[:, :, :, 0, :, 1] = x
    out[:, :, :, 1] = out[:, :, :, 0]
    return out.view(n, c, 2 * h, 2 * w)


class _Nearest2x(torch.autograd.Function):
    """Nearest 2× upsampling: :func:`_nearest_2x_copy` forward, the native kernel's backward.

    The backward is ``upsample_nearest2d_backward``, the very kernel autograd runs for
    ``F.interpolate(x, scale_factor=2, mode="nearest")``, called with the same sizes and scales,
    so gradients are those of ``F.interpolate`` bit for bit on every device (on the CPU it adds
    each output pixel's gradient into its input cell in row-major order, ``((g00 + g01) + g10)
    + g11`` from zero, float32 accumulation for half types). Autograd's backward of a broadcast
    copy is a sum over the broadcast dimensions in another order, which differs by ~1e-6 and is
    slower. The backward is itself differentiable (its derivative is the upsampling), so a
    double backward works.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        ctx.input_size = list(x.shape)
        return _nearest_2x_copy(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        h, w = ctx.input_size[2:]
        return torch.ops.aten.upsample_nearest2d_backward(grad, [2 * h, 2 * w], ctx.input_size,
                                                          2.0, 2.0)


def nearest_2x(x: Tensor) -> Tensor:
    """Nearest-neighbour 2× upsampling: each value copied into its 2×2 cell.

    ``out[n, c, 2i + a, 2j + b] = x[n, c, i, j]`` for ``a, b ∈ {0, 1}``: the output and the
    gradient of ``F.interpolate(x, scale_factor=2, mode="nearest")``, bit for bit; the forward
    measured 2.7–3.5× faster on one CPU thread for the decoders' maps at batch 128 and 1000 (see
    :func:`_nearest_2x_copy` and :class:`_Nearest2x`).

    Input: a ``[N, C, H, W]`` tensor of any dtype and device, in any layout; output:
    ``[N, C, 2H, 2W]``, channels-last if the input is channels-last, else contiguous (the layout
    ``F.interpolate`` returns). Without autograd (``torch.no_grad``, ``torch.inference_mode``, an
    input that needs no gradient) it is the copy alone.
    """
    if x.dim() != 4:
        raise ValueError(f"nearest_2x: expected a [N, C, H, W] tensor, got shape {tuple(x.shape)}")
    if torch.is_grad_enabled() and x.requires_grad:
        return _Nearest2x.apply(x)
    return _nearest_2x_copy(x)


@DECODERS.register("transposed")
class TransposedStage(nn.Module):
    """ConvTranspose2d, kernel 4, stride 2: learned upsampling (uneven kernel overlap can leave
    checkerboard artifacts, Odena et al. 2016)."""

    needs_switches = False

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)

    def forward(self, x: Tensor, switch: Tensor | None = None) -> Tensor:
        return self.conv(x)


class _UnpoolThenConv(nn.Module):
    """Shared shape of the unpooling decoders: a fixed 2× upsampling, then a 3×3 conv."""

    needs_switches = False

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)

    def upsample(self, x: Tensor, switch: Tensor | None) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, switch: Tensor | None = None) -> Tensor:
        return self.conv(self.upsample(x, switch))


#: Rows: the 4 taps of a kernel-4, stride-2 transposed convolution along one axis; columns: the
#: 3 taps of a 3×3 convolution applied after a 2× upsampling along that axis. Entry (t, d) is 1
#: where tap d of the 3×3 kernel reads the input value that tap t of the transposed kernel does.
#: Nearest: output 2i reads the upsampled values at 2i−1, 2i, 2i+1, i.e. x[i−1], x[i], x[i], and
#: output 2i+1 reads x[i], x[i], x[i+1]: K = [w₂, w₁+w₂, w₀+w₁, w₀] (1D). Bed of nails: the odd
#: upsampled values are zero, so K = [w₂, w₁, w₀, 0].
_NEAREST_TAPS = ((0, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0))
_NAILS_TAPS = ((0, 0, 1), (0, 1, 0), (1, 0, 0), (0, 0, 0))


class _FusedUnpoolThenConv(_UnpoolThenConv):
    """A fixed 2× unpooling then a 3×3 conv (padding 1), computed as the one transposed
    convolution (kernel 4, stride 2, padding 1) that equals them, whose kernel
    ``K[i, o] = T · W[o, i] · Tᵀ`` is built from the 3×3 weights ``W`` on each call (``T``: the
    stage's 4 × 3 tap matrix). The parameters, their gradients (by the chain rule through
    ``K``) and the outputs are those of unpooling then convolving, in exact arithmetic; in
    floating point they differ by rounding (sums of weights before products; float64 agrees to
    1e-12, see tests/models/test_decoders.py). Why: it does the work at the input's resolution —
    2.25× fewer multiply-adds than a 3×3 conv on the upsampled map — in one kernel that MKL-DNN
    and cuDNN run fast; on the CPU the unfused stage's 32 → 1 channel conv on 28 × 28 maps was
    most of a quick-suite VAE's training step (fused: 2–2.6× faster forward and backward per
    stage, measured on 2 threads).

    ``upsample(x, switch)`` still gives the unpooled map itself (exactly), for inspection.
    """

    taps: tuple[tuple[int, int, int], ...] = ()

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(c_in, c_out)
        self.register_buffer("tap_matrix", torch.tensor(self.taps, dtype=torch.float32),
                             persistent=False)

    def forward(self, x: Tensor, switch: Tensor | None = None) -> Tensor:
        taps = self.tap_matrix.to(self.conv.weight.dtype)
        kernel = torch.einsum("pa,oiab,qb->iopq", taps, self.conv.weight, taps)
        return F.conv_transpose2d(x, kernel, self.conv.bias, stride=2, padding=1)


@DECODERS.register("unpool-nearest")
class NearestUnpoolStage(_FusedUnpoolThenConv):
    """Nearest-neighbour unpooling (each value copied into its 2×2 cell), then a 3×3 conv, as
    one transposed convolution (see :class:`_FusedUnpoolThenConv`).

    ``upsample`` is :func:`nearest_2x`: the values and gradients of ``F.interpolate(...,
    mode="nearest")``, faster."""

    taps = _NEAREST_TAPS

    def upsample(self, x: Tensor, switch: Tensor | None) -> Tensor:
        return nearest_2x(x)


@DECODERS.register("unpool-zeros")
class ZerosUnpoolStage(_FusedUnpoolThenConv):
    """"Bed of nails" unpooling (value at the top-left of its 2×2 cell, zeros elsewhere), then a
    3×3 conv, as one transposed convolution (see :class:`_FusedUnpoolThenConv`)."""

    taps = _NAILS_TAPS

    def upsample(self, x: Tensor, switch: Tensor | None) -> Tensor:
        return bed_of_nails(x)


@DECODERS.register("unpool-max")
class MaxUnpoolStage(_UnpoolThenConv):
    """Max-unpooling with the encoder's pooling switches (SegNet), then a 3×3 conv. Without
    switches (sampling, interpolation) each value goes to the top-left of its cell instead."""

    needs_switches = True

    def upsample(self, x: Tensor, switch: Tensor | None) -> Tensor:
        if switch is None:
            return bed_of_nails(x)
        return F.max_unpool2d(x, switch, 2, output_size=(2 * x.shape[2], 2 * x.shape[3]))


@DECODERS.register("upsample-bilinear")
class BilinearStage(_UnpoolThenConv):
    """Bilinear upsampling, then a 3×3 conv."""

    def upsample(self, x: Tensor, switch: Tensor | None) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ConvDecoder(nn.Module):
    """Linear(hidden) → act → Linear → reshape → stage(2w→w) → act → stage(w→C).

    Args:
        image_shape: ``(C, H, W)`` of the output, H and W divisible by 4.
        latent_dim: size of the input code.
        width: channels of the last hidden map (the first has ``2·width``).
        hidden: units of the fully connected layer.
        stage: the upsampling stage factory (a registered decoder).
        norm: batch-normalise the hidden layers (DCGAN generators want it).

    ``forward(z, switches)``: ``switches`` are the encoder's pooling indices, first stage first,
    or ``None``; the stages use them in reverse order, mirroring the encoder.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: int,
                 hidden: int, stage: UpStage, norm: bool = False) -> None:
        super().__init__()
        channels, height, wide = image_shape
        self.start_shape = (2 * width, height // DOWNSAMPLING, wide // DOWNSAMPLING)
        start = self.start_shape[0] * self.start_shape[1] * self.start_shape[2]

        def activate(n: int, batch_norm: type[nn.Module]) -> list[nn.Module]:
            return [batch_norm(n), nn.ReLU(inplace=True)] if norm else [nn.ReLU(inplace=True)]

        self.project = nn.Sequential(nn.Linear(latent_dim, hidden),
                                     *activate(hidden, nn.BatchNorm1d),
                                     nn.Linear(hidden, start), *activate(start, nn.BatchNorm1d))
        self.first = stage(2 * width, width)
        self.between = nn.Sequential(*activate(width, nn.BatchNorm2d))
        self.last = stage(width, channels)

    def forward(self, z: Tensor, switches: tuple[Tensor, ...] | None = None) -> Tensor:
        first_switch, last_switch = (None, None) if switches is None else switches[::-1]
        x = self.project(z).view(-1, *self.start_shape)
        return self.last(self.between(self.first(x, first_switch)), last_switch)


def decoder_needs_switches(name: str) -> bool:
    """Whether decoder ``name`` unpools with encoder switches (and so needs a pooling encoder)."""
    return bool(getattr(DECODERS.get(name), "needs_switches", False))

