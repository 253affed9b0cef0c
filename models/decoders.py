"""Decoders: code ``[N, latent_dim]`` → logits ``[N, C, H, W]``.

Every decoder has the same skeleton — fully connected layers to a ``2·width × H/4 × W/4`` map,
then two stages that double the resolution — and differs only in how a stage upsamples, which
keeps a comparison between decoders about upsampling and nothing else. A registered decoder is
the factory of one stage ``(c_in, c_out) → module``; a stage's ``forward(x, switch)`` gets the
matching max-pooling switches of the encoder, which only ``unpool-max`` uses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from latentbench.models.encoders import DOWNSAMPLING
from latentbench.models.registry import Registry

UpStage = Callable[[int, int], nn.Module]
DECODERS: Registry[UpStage] = Registry("decoder", "model.decoder")


def bed_of_nails(x: Tensor) -> Tensor:
    """Each value at the top-left of its 2×2 cell, zeros elsewhere: ``[N, C, 2H, 2W]``."""
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h, 2, w, 2)
    out[:, :, :, 0, :, 0] = x
    return out.view(n, c, 2 * h, 2 * w)


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


@DECODERS.register("unpool-nearest")
class NearestUnpoolStage(_UnpoolThenConv):
    """Nearest-neighbour unpooling (each value copied into its 2×2 cell), then a 3×3 conv."""

    def upsample(self, x: Tensor, switch: Tensor | None) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


@DECODERS.register("unpool-zeros")
class ZerosUnpoolStage(_UnpoolThenConv):
    """"Bed of nails" unpooling (value at the top-left of its 2×2 cell, zeros elsewhere), then a
    3×3 conv."""

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

