"""Convolutional encoders: image ``[N, C, H, W]`` → feature vector ``[N, out_features]``.

Two stride-2 stages halve the image twice, so any H and W divisible by 4 work.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from latentbench.models.registry import InputError, Registry

EncoderFactory = Callable[[tuple[int, int, int], int, int, int], nn.Module]
ENCODERS: Registry[EncoderFactory] = Registry("encoder", "model.encoder")

DOWNSAMPLING = 4  # two stride-2 stages


def check_image_shape(image_shape: tuple[int, int, int]) -> None:
    """Raise :class:`InputError` unless the image is 1 or 3 channels with H, W divisible by 4."""
    channels, height, width = image_shape
    if channels not in (1, 3):
        raise InputError(f"data: images must have 1 or 3 channels, got {channels}")
    if height % DOWNSAMPLING or width % DOWNSAMPLING:
        raise InputError(
            f"data: image height and width must be divisible by {DOWNSAMPLING}, "
            f"got {height}×{width}"
        )


@ENCODERS.register("conv")
def conv_encoder(
    image_shape: tuple[int, int, int], width: int, hidden: int, out_features: int
) -> nn.Module:
    """Conv(4, stride 2) → ReLU → Conv(4, stride 2) → ReLU → Linear(hidden) → ReLU → Linear.

    Args:
        image_shape: ``(C, H, W)``, H and W divisible by 4.
        width: channels after the first conv; the second has ``2·width``.
        hidden: units of the fully connected layer.
        out_features: size of the output (``latent_dim``, or ``2·latent_dim`` for μ and logσ²).
    """
    channels, height, wide = image_shape
    flat = 2 * width * (height // DOWNSAMPLING) * (wide // DOWNSAMPLING)
    return nn.Sequential(
        nn.Conv2d(channels, width, 4, stride=2, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(flat, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_features),
    )
