"""What a metric is computed from: the trained model, the data, and passes shared between metrics.

Several metrics read the same forward pass (MSE, BCE, PSNR and SSIM all need the test
reconstructions; rate, distortion and −ELBO the posterior), so the context computes each pass
once, lazily, and every metric reads from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from latentbench.models.protocol import LatentModel


@dataclass(frozen=True)
class TestPass:
    """Per-image quantities of one pass over the test split (all float64 on the CPU, ``[N]``).

    Attributes:
        squared_error: Σ_pixels (x − x̂)², x̂ decoded from the posterior mean.
        bce: Σ_pixels BCE(x̂, x), x̂ decoded from the posterior mean.
        psnr: peak signal-to-noise ratio of x̂ against x (data range 1), dB.
        ssim: structural similarity of x̂ and x (Gaussian window 11, σ 1.5).
        distortion: −log p(x|z) with one z ~ q(z|x) (posterior mean for a deterministic
            encoder), nats.
        rate: KL(q(z|x) ‖ N(0, I)), nats; ``None`` for a deterministic encoder.
        pixels: pixels per image (C·H·W), to turn sums into per-pixel means.
    """

    squared_error: Tensor
    bce: Tensor
    psnr: Tensor
    ssim: Tensor
    distortion: Tensor
    rate: Tensor | None
    pixels: int


@dataclass
class EvalContext:
    """Everything a metric may read.

    Attributes:
        model: the trained model, in eval mode, on ``device``.
        test_images, train_images: float32 ``[N, C, H, W]`` in [0, 1] (CPU; batches are moved).
        batch_size: evaluation batch size.
        seed: seeds every random draw of the evaluation, so scores are reproducible.
    """

    model: LatentModel
    test_images: Tensor
    train_images: Tensor
    batch_size: int = 256
    seed: int = 0

    @property
    def device(self) -> torch.device:
        return self.model.device

    def generator(self) -> torch.Generator:
        """A fresh CPU generator seeded with :attr:`seed`, so each metric's draws are fixed."""
        return torch.Generator().manual_seed(self.seed)

    def batches(self, images: Tensor):
        """Yield device batches of ``images``, in order."""
        for batch in images.split(self.batch_size):
            yield batch.to(self.device, non_blocking=True)

    @cached_property
    def test_pass(self) -> TestPass:
        from latentbench.metrics.reconstruction import reconstruction_pass

        return reconstruction_pass(self)
