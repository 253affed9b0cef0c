"""Checkerboard artifacts: how much of a model's samples' energy sits at the Nyquist frequencies.

Stride-2 transposed convolutions overlap unevenly and leave a period-2 pattern (Odena et al.
2016, "Deconvolution and Checkerboard Artifacts"). The energy of that pattern is read off the
three Nyquist bins of each image's 2-D DFT, which for period 2 reduce to sums over the four
phases of the 2×2 grid — no FFT needed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from latentbench.metrics.context import EvalContext
from latentbench.metrics.registry import register_metric


def nyquist_power(images: Tensor) -> Tensor:
    r"""Power at the Nyquist bins (π, π), (π, 0) and (0, π), summed over them and the channels.

    With phase sums :math:`S_{ab} = \sum x[a{::}2, b{::}2]`:
    :math:`F(\pi,\pi) = S_{00} - S_{01} - S_{10} + S_{11}`,
    :math:`F(\pi,0) = S_{00} + S_{01} - S_{10} - S_{11}`,
    :math:`F(0,\pi) = S_{00} - S_{01} + S_{10} - S_{11}`; the power is :math:`\sum |F|^2`.
    These are the DFT coefficients at those frequencies when H and W are even.

    Args:
        images: ``[N, C, H, W]`` with H and W even.

    Returns:
        float64 ``[N]``.
    """
    x = images.double()
    s00, s01 = x[..., 0::2, 0::2].sum((-2, -1)), x[..., 0::2, 1::2].sum((-2, -1))
    s10, s11 = x[..., 1::2, 0::2].sum((-2, -1)), x[..., 1::2, 1::2].sum((-2, -1))
    bins = torch.stack([s00 - s01 - s10 + s11, s00 + s01 - s10 - s11, s00 - s01 + s10 - s11])
    return bins.square().sum(dim=(0, 2))


@register_metric("checkerboard", higher_is_better=False, needs={"sample"}, unit="ratio")
def checkerboard(ctx: EvalContext) -> float:
    """Nyquist-bin power of samples over that of test images (1 = like the data)."""
    fake = nyquist_power(ctx.samples)
    real = torch.cat([nyquist_power(x.cpu()) for x in ctx.batches(ctx.test_images)])
    return float(fake.mean() / real.mean())
