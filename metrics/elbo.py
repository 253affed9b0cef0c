"""Rate, distortion and the negative ELBO on the test split, in nats per image.

R = E_x KL(q(z|x) ‖ p(z)), D = −E_x E_q log p(x|z) (one posterior sample per image), and
−ELBO = D + R (Alemi et al. 2018). They are the axes of the rate–distortion plane on which β moves
a VAE: minimising D + βR traces the frontier with slope −β.
"""

from __future__ import annotations

from latentbench.metrics.context import EvalContext
from latentbench.metrics.registry import register_metric


@register_metric("rate", higher_is_better=False, needs={"variational"}, unit="nats/image")
def rate(ctx: EvalContext) -> float:
    """Rate: KL(q(z|x) ‖ N(0, I)) averaged over test images."""
    return float(ctx.test_pass.rate.mean())


@register_metric("distortion", higher_is_better=False, needs={"encode"}, unit="nats/image")
def distortion(ctx: EvalContext) -> float:
    """Distortion: −log p(x|z), z ~ q(z|x) (an AE: its code), averaged over test images."""
    return float(ctx.test_pass.distortion.mean())


@register_metric("neg_elbo", higher_is_better=False, needs={"variational"}, unit="nats/image")
def neg_elbo(ctx: EvalContext) -> float:
    """Negative ELBO = distortion + rate, averaged over test images (bounds −log p(x) above)."""
    tp = ctx.test_pass
    return float((tp.distortion + tp.rate).mean())
