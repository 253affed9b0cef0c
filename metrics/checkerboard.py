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
from latentbench.metrics.registry import Score, register_metric


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


#: Bootstrap resamples behind the checkerboard score's standard error.
BOOTSTRAP_ROUNDS = 200


def power_ratio_bootstrap(fake: Tensor, real: Tensor, rounds: int = BOOTSTRAP_ROUNDS,
                          seed: int = 0) -> Tensor:
    """Mean of ``fake`` over mean of ``real`` (per-image Nyquist powers, ``[M]`` and ``[N]``)
    in ``rounds`` bootstrap resamples that redraw both sets with replacement, independently:
    float64 ``[rounds]``. Milliseconds: a resample is a gather and two means."""
    generator = torch.Generator().manual_seed(seed)
    fake, real = fake.double().cpu(), real.double().cpu()
    ratios = torch.empty(rounds, dtype=torch.float64)
    for b in range(rounds):  # one resample at a time: memory of one set, not of 200
        pick_fake = torch.randint(len(fake), (len(fake),), generator=generator)
        pick_real = torch.randint(len(real), (len(real),), generator=generator)
        ratios[b] = fake[pick_fake].mean() / real[pick_real].mean()
    return ratios


@register_metric("checkerboard", target=1.0, family="samples", needs={"sample"}, unit="ratio")
def checkerboard(ctx: EvalContext) -> Score:
    """Nyquist-bin power of samples over that of test images (ideal 1: like the data).

    Above 1: the period-2 pattern of stride-2 transposed convolutions; below 1: samples
    smoother than the data (blur), which is as far from the data as a checkerboard. Ranked by
    the distance to 1. Standard error: a bootstrap that redraws the generated and the test
    images (:func:`power_ratio_bootstrap`); the per-image powers are heavy-tailed, so the
    ratio is noisier than its sample counts suggest. Details: the mean ``sample_power`` and
    ``test_power``.
    """
    fake = nyquist_power(ctx.samples.detach())
    real = torch.cat([nyquist_power(x.cpu()) for x in ctx.batches(ctx.test_images)])
    rounds = power_ratio_bootstrap(fake, real, BOOTSTRAP_ROUNDS, ctx.seed)
    return Score(float(fake.mean() / real.mean()), samples=len(fake),
                 std_error=float(rounds.std()),
                 details={"sample_power": float(fake.mean()), "test_power": float(real.mean()),
                          "test_samples": len(real), "bootstrap_rounds": BOOTSTRAP_ROUNDS,
                          "std_error_method": (
                              f"bootstrap: {BOOTSTRAP_ROUNDS} resamples of the generated and "
                              f"of the test images, with replacement, independently (seed = "
                              f"the evaluation's)")})
