"""Rate, distortion and the negative ELBO on the test split, in nats per image.

R = E_x KL(q(z|x) ‖ p(z)), D = −E_x E_q log p(x|z) (one posterior sample per image), and
−ELBO = D + R (Alemi et al. 2018). They are the axes of the rate–distortion plane on which β moves
a VAE: minimising D + βR traces the frontier with slope −β.

p(z) is the model's prior (``model.prior``): the KL is exact for N(0, I) and otherwise a
Monte-Carlo estimate with :data:`~latentbench.metrics.reconstruction.RATE_KL_SAMPLES` draws per
image; the details say which (``kl``) and give that estimate's own standard error
(``mc_std_error``).
"""

from __future__ import annotations

import math
from typing import Any

from latentbench.metrics.context import EvalContext, TestPass
from latentbench.metrics.reconstruction import likelihood_details, per_image_score
from latentbench.metrics.registry import Score, register_metric


def rate_details(tp: TestPass) -> dict[str, Any]:
    """How the rate was computed: ``kl`` (``"closed form"`` or the Monte-Carlo draws per
    image) and, for an estimate, ``mc_std_error``, the standard error of the mean rate from
    the draws alone, √(Σ_i Var_i) / N."""
    if tp.rate_samples is None:
        return {"kl": "closed form"}
    variance = tp.rate_mc_variance
    return {"kl": f"Monte Carlo, {tp.rate_samples} draws per image of log q(z|x) - log p(z)",
            "kl_samples": tp.rate_samples,
            "mc_std_error": float(variance.sum().sqrt()) / len(variance)
            if variance is not None and math.isfinite(float(variance.sum())) else None}


@register_metric("rate", higher_is_better=False, family="likelihood", needs={"variational"},
                 unit="nats/image", uses_prior=True)
def rate(ctx: EvalContext) -> Score:
    """Rate: KL(q(z|x) ‖ p(z)) to the model's prior, averaged over test images.

    Not a bound on −log p(x) and independent of the decoder, so it is kept for a model with a
    side channel. Details: :func:`rate_details`.
    """
    tp = ctx.test_pass
    return per_image_score(tp.rate, details={**likelihood_details(ctx), **rate_details(tp)})


@register_metric("distortion", higher_is_better=False, family="likelihood", bound=True,
                 needs={"encode"}, unit="nats/image")
def distortion(ctx: EvalContext) -> Score:
    """Distortion: −log p(x|z), z ~ q(z|x) (an AE: its code), averaged over test images."""
    return per_image_score(ctx.test_pass.distortion, details=likelihood_details(ctx))


@register_metric("neg_elbo", higher_is_better=False, family="likelihood", bound=True,
                 needs={"variational"}, unit="nats/image", uses_prior=True)
def neg_elbo(ctx: EvalContext) -> Score:
    """Negative ELBO = distortion + rate, averaged over test images (bounds −log p(x) above)."""
    tp = ctx.test_pass
    return per_image_score(tp.distortion + tp.rate,
                           details={**likelihood_details(ctx), **rate_details(tp)})
