"""Decoders: code ``[N, latent_dim]`` → logits ``[N, C, H, W]``.

Every decoder has the same skeleton — fully connected layers to a ``2·width × H/4 × W/4`` map,
then two stages that double the resolution — and differs only in how a stage upsamples. A
registered decoder is therefore just the factory of one upsampling stage ``(c_in, c_out) →
module``, which keeps the comparison between decoders about upsampling and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from latentbench.models.encoders import DOWNSAMPLING
from latentbench.models.registry import Registry

UpsampleStage = Callable[[int, int], nn.Module]
DECODERS: Registry[UpsampleStage] = Registry("decoder", "model.decoder")


@DECODERS.register("transposed")
def transposed_stage(c_in: int, c_out: int) -> nn.Module:
    """ConvTranspose2d, kernel 4, stride 2, padding 1: learned upsampling (can leave
    checkerboard artifacts where kernel footprints overlap unevenly)."""
    return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)


@DECODERS.register("unpool-nearest")
def nearest_stage(c_in: int, c_out: int) -> nn.Module:
    """Nearest-neighbour unpooling (each value copied into its 2×2 cell), then a 3×3 conv."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(c_in, c_out, 3, padding=1))


class ConvDecoder(nn.Module):
    """Linear(hidden) → ReLU → Linear → reshape → stage(2w→w) → ReLU → stage(w→C).

    Args:
        image_shape: ``(C, H, W)`` of the output, H and W divisible by 4.
        latent_dim: size of the input code.
        width: channels of the last hidden map (the first has ``2·width``).
        hidden: units of the fully connected layer.
        stage: the upsampling stage factory (a registered decoder).
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: int,
                 hidden: int, stage: UpsampleStage) -> None:
        super().__init__()
        channels, height, wide = image_shape
        self.start_shape = (2 * width, height // DOWNSAMPLING, wide // DOWNSAMPLING)
        start = self.start_shape[0] * self.start_shape[1] * self.start_shape[2]
        self.project = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, start), nn.ReLU(inplace=True),
        )
        self.upsample = nn.Sequential(
            stage(2 * width, width), nn.ReLU(inplace=True), stage(width, channels)
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.upsample(self.project(z).view(-1, *self.start_shape))
