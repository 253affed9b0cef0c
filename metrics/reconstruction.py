"""Reconstruction metrics on the test split: MSE and BCE per pixel, PSNR, SSIM.

All are computed from one pass (:func:`reconstruction_pass`) in which each test image is encoded,
its posterior mean decoded, and — for a Gaussian posterior — one ``z ~ q(z|x)`` drawn for the
distortion term of the ELBO. Every score here and in :mod:`~latentbench.metrics.elbo` and
:mod:`~latentbench.metrics.iwae` is a mean of per-image values, with their standard error over
the test images (:func:`per_image_score`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench.metrics.context import EvalContext, TestPass
from latentbench.metrics.registry import Score, register_metric
from latentbench.models.gaussian import reparameterize
from latentbench.models.likelihoods import LIKELIHOODS
from latentbench.models.priors import prior_of

#: How :func:`per_image_score` computes ``Score.std_error``, recorded in each score's details.
STD_ERROR_METHOD = "per-image std / sqrt(n)"

#: Monte-Carlo draws per test image of the rate KL(q(z|x) ‖ p(z)) for a prior without a closed
#: form (mog, vamp, flow): its Monte-Carlo standard error over 1,000 images is then ~0.01 nats
#: for the priors suite's VAEs, well under the spread between images.
RATE_KL_SAMPLES = 100


def per_image_score(values: Tensor, scale: float = 1.0,
                    details: dict[str, Any] | None = None) -> Score:
    """The mean of per-image ``values`` (times ``scale``) with its standard error over the test
    images: the standard deviation of the per-image values (N − 1 normaliser) over √N.

    The error is that of one evaluation on this test set — image-to-image spread plus any Monte
    Carlo noise in the per-image values (distortion's one posterior sample); it says nothing of
    the spread over training seeds. ``None`` for a single image, or where a value is infinite
    (the PSNR of an exact reconstruction).
    """
    values = values.double() * scale
    n = len(values)
    std_error = float(values.std() / math.sqrt(n)) if n > 1 else None
    if std_error is not None and not math.isfinite(std_error):
        std_error = None
    return Score(float(values.mean()), samples=n, std_error=std_error,
                 details={"std_error_method": STD_ERROR_METHOD, **(details or {})})


def grey_pixel_fraction(ctx: EvalContext) -> float:
    """The fraction of test pixels strictly between 0 and 1 (on which a Bernoulli is no
    density), computed once per evaluation."""

    def compute() -> float:
        grey = sum(int(((x > 0) & (x < 1)).sum()) for x in ctx.test_images.split(4096))
        return grey / max(1, ctx.test_images.numel())

    return ctx.shared(("grey_pixel_fraction",), compute)


def likelihood_details(ctx: EvalContext) -> dict[str, Any]:
    """What a likelihood score is measured with, for its details in metrics.json.

    - ``likelihood``: the model's pixel likelihood (``model.pixel_likelihood``), or
      ``"model-defined"`` for a plug-in's own;
    - ``binarize``: how the data were binarised (``none``, ``static``, ``dynamic``; the
      evaluation context's ``binarize``);
    - ``grey_pixels``: the fraction of test pixels neither 0 nor 1, measured;
    - ``proper_density``: whether the likelihood is a density (mass function) on these pixels:
      a Bernoulli only on binary ones; ``None`` for a likelihood of unknown support.
    """
    name = getattr(ctx.model, "pixel_likelihood", None)
    grey = grey_pixel_fraction(ctx)
    support = getattr(LIKELIHOODS.get(name), "support", None) if name in LIKELIHOODS else None
    proper = None if support is None else (grey == 0.0 if support == "binary" else True)
    return {"likelihood": name or "model-defined",
            "binarize": ctx.binarize,
            "grey_pixels": grey, "proper_density": proper}


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
    prior = prior_of(model)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in
                                            ("squared_error", "bce", "psnr", "ssim", "distortion",
                                             "rate", "rate_mc_variance", "latent_mean",
                                             "latent_logvar")}
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
            # A prior without a closed-form KL draws its Monte-Carlo samples after the
            # distortion's, from the same generator; N(0, I) draws none, so its scores are
            # those of the models before priors were components, digit for digit.
            rate, variance = prior.kl_estimate(posterior.mean, posterior.logvar,
                                               RATE_KL_SAMPLES, generator)
            parts["rate"].append(rate)
            if variance is not None:
                parts["rate_mc_variance"].append(variance)
    kept = {k: torch.cat(v).double().cpu() if v else None for k, v in parts.items()}
    samples = None if prior.analytic_kl or kept["rate"] is None else RATE_KL_SAMPLES
    return TestPass(pixels=ctx.test_images[0].numel(), rate_samples=samples, **kept)


@register_metric("recon_mse", higher_is_better=False, family="reconstruction", needs={"encode"},
                 unit="per pixel")
def recon_mse(ctx: EvalContext) -> Score:
    """Mean squared error per pixel between test images and their reconstructions."""
    tp = ctx.test_pass
    return per_image_score(tp.squared_error, 1.0 / tp.pixels)


@register_metric("recon_bce", higher_is_better=False, family="reconstruction", needs={"encode"},
                 unit="nats per pixel")
def recon_bce(ctx: EvalContext) -> Score:
    """Binary cross-entropy per pixel of the test reconstructions (posterior mean).

    On grey pixels its floor is the pixels' binary entropy, not 0 (details: ``grey_pixels``,
    ``binarize``).
    """
    tp = ctx.test_pass
    return per_image_score(tp.bce, 1.0 / tp.pixels, details={
        "binarize": ctx.binarize,
        "grey_pixels": grey_pixel_fraction(ctx)})


@register_metric("psnr", higher_is_better=True, family="reconstruction", needs={"encode"},
                 unit="dB")
def psnr(ctx: EvalContext) -> Score:
    """Peak signal-to-noise ratio of test reconstructions (data range 1), averaged over images."""
    return per_image_score(ctx.test_pass.psnr)


@register_metric("ssim", higher_is_better=True, family="reconstruction", needs={"encode"})
def ssim(ctx: EvalContext) -> Score:
    """Structural similarity of test reconstructions (torchmetrics, 11×11 Gaussian window)."""
    return per_image_score(ctx.test_pass.ssim)
