"""Rate, distortion and the negative ELBO on the test split, in nats per image.

R = E_x KL(q(z|x) ‖ p(z)), D = −E_x E_q log p(x|z) (one posterior sample per image), and
−ELBO = D + R (Alemi et al. 2018). They are the axes of the rate–distortion plane on which β moves
a VAE: minimising D + βR traces the frontier with slope −β.
"""

from __future__ import annotations

from latentbench.metrics.context import EvalContext
from latentbench.metrics.reconstruction import likelihood_details, per_image_score
from latentbench.metrics.registry import Score, register_metric


@register_metric("rate", higher_is_better=False, family="likelihood", needs={"variational"},
                 unit="nats/image")
def rate(ctx: EvalContext) -> Score:
    """Rate: KL(q(z|x) ‖ N(0, I)) averaged over test images.

    Not a bound on −log p(x) and independent of the decoder, so it is kept for a model with a
    side channel.
    """
    return per_image_score(ctx.test_pass.rate, details=likelihood_details(ctx))


@register_metric("distortion", higher_is_better=False, family="likelihood", bound=True,
                 needs={"encode"}, unit="nats/image")
def distortion(ctx: EvalContext) -> Score:
    """Distortion: −log p(x|z), z ~ q(z|x) (an AE: its code), averaged over test images."""
    return per_image_score(ctx.test_pass.distortion, details=likelihood_details(ctx))


@register_metric("neg_elbo", higher_is_better=False, family="likelihood", bound=True,
                 needs={"variational"}, unit="nats/image")
def neg_elbo(ctx: EvalContext) -> Score:
    """Negative ELBO = distortion + rate, averaged over test images (bounds −log p(x) above)."""
    tp = ctx.test_pass
    return per_image_score(tp.distortion + tp.rate, details=likelihood_details(ctx))
