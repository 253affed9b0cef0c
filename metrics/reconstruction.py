"""Reconstruction metrics on the test split: MSE and BCE per pixel, PSNR, SSIM.

All are computed from one pass (:func:`reconstruction_pass`) in which each test image is encoded,
its posterior mean decoded, and — for a Gaussian posterior — one ``z ~ q(z|x)`` drawn for the
distortion term of the ELBO.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentbench.metrics.context import EvalContext, TestPass
from latentbench.metrics.registry import register_metric
from latentbench.models.gaussian import kl_normal, reparameterize


@torch.no_grad()
def reconstruction_pass(ctx: EvalContext) -> TestPass:
    """Encode and decode every test image once; see :class:`TestPass` for what is kept."""
    # Imported here: torchmetrics (and the torchvision it loads) take ~2 s to import, which
    # `latentbench list` and every other CLI call would otherwise pay.
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    model, generator = ctx.model, ctx.generator()
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in
                                            ("squared_error", "bce", "psnr", "ssim", "distortion",
                                             "rate", "latent_mean", "latent_logvar")}
    for x in ctx.batches(ctx.test_images):
        posterior = model.encode(x)
        parts["latent_mean"].append(posterior.mean.flatten(1))
        if posterior.logvar is not None:
            parts["latent_logvar"].append(posterior.logvar.flatten(1))
        logits = model.decode_posterior(posterior.mean, posterior)
        x_hat = torch.sigmoid(logits)
        parts["squared_error"].append((x - x_hat).square().flatten(1).sum(1))
        parts["bce"].append(F.binary_cross_entropy_with_logits(logits, x, reduction="none")
                            .flatten(1).sum(1))
        parts["psnr"].append(peak_signal_noise_ratio(x_hat, x, data_range=1.0, reduction="none",
                                                     dim=(1, 2, 3)))
        parts["ssim"].append(structural_similarity_index_measure(x_hat, x, data_range=1.0,
                                                                 reduction="none"))
        if posterior.logvar is None:
            parts["distortion"].append(model.reconstruction_nll(logits, x))
        else:
            # The noise is drawn on the CPU from the context's generator so that the score does
            # not depend on the device or on what ran before.
            z = reparameterize(posterior.mean.cpu(), posterior.logvar.cpu(), generator)
            logits_z = model.decode_posterior(z.to(x.device), posterior)
            parts["distortion"].append(model.reconstruction_nll(logits_z, x))
            parts["rate"].append(kl_normal(posterior.mean, posterior.logvar))
    kept = {k: torch.cat(v).double().cpu() if v else None for k, v in parts.items()}
    return TestPass(pixels=ctx.test_images[0].numel(), **kept)


@register_metric("recon_mse", higher_is_better=False, needs={"encode"}, unit="per pixel")
def recon_mse(ctx: EvalContext) -> float:
    """Mean squared error per pixel between test images and their reconstructions."""
    tp = ctx.test_pass
    return float(tp.squared_error.mean() / tp.pixels)


@register_metric("recon_bce", higher_is_better=False, needs={"encode"}, unit="nats per pixel")
def recon_bce(ctx: EvalContext) -> float:
    """Binary cross-entropy per pixel of the test reconstructions (posterior mean)."""
    tp = ctx.test_pass
    return float(tp.bce.mean() / tp.pixels)


@register_metric("psnr", higher_is_better=True, needs={"encode"}, unit="dB")
def psnr(ctx: EvalContext) -> float:
    """Peak signal-to-noise ratio of test reconstructions (data range 1), averaged over images."""
    return float(ctx.test_pass.psnr.mean())


@register_metric("ssim", higher_is_better=True, needs={"encode"})
def ssim(ctx: EvalContext) -> float:
    """Structural similarity of test reconstructions (torchmetrics, 11×11 Gaussian window)."""
    return float(ctx.test_pass.ssim.mean())
