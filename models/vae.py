"""The variational autoencoder with a β-weighted KL term (β-VAE; β = 1 is the plain VAE)."""

from __future__ import annotations

import torch
from torch import Tensor

from latentbench.models.autoencoder import EncoderDecoderModel
from latentbench.models.gaussian import reparameterize
from latentbench.models.priors import PriorSetting, build_prior
from latentbench.models.protocol import LossTerms, ModelSpec, Posterior
from latentbench.models.zoo import MODELS


def scheduled_beta(spec: ModelSpec, beta: float, step: int) -> float:
    r"""The KL weight at optimiser step ``step`` (0-based) under ``spec.beta_schedule``.

    - ``constant``: :math:`\beta`;
    - ``warmup``: :math:`\beta \min(1, t / T_w)` (linear KL warm-up, Bowman et al. 2016);
    - ``cyclical``: :math:`\beta \min(1, (t \bmod T_c) / (r T_c))` (Fu et al. 2019), the
      warm-up repeated every ``cycle_steps`` with a ramp over the fraction ``cycle_ratio``.
    """
    if spec.beta_schedule == "warmup":
        return beta * min(1.0, step / spec.warmup_steps)
    if spec.beta_schedule == "cyclical":
        return beta * min(1.0, (step % spec.cycle_steps) / (spec.cycle_ratio * spec.cycle_steps))
    return beta


@MODELS.register("vae")
class VAE(EncoderDecoderModel):
    r"""Gaussian-posterior VAE with a prior p(z) of ``model.prior`` (default N(0, I)).

    .. math::
        \mathcal L(x) = \underbrace{-\log p(x \mid z)}_{\text{recon}}
                        + \beta_t\, \mathrm{KL}\big(q(z \mid x) \,\|\, p(z)\big),
        \quad z = \mu + \sigma\odot\varepsilon

    The KL is in closed form for N(0, I) and otherwise the one-sample estimate
    :math:`\log q(z|x) - \log p(z)` at the same z (:class:`~latentbench.models.priors.Prior`);
    the prior's parameters train with the model, and :meth:`sample` decodes its draws.

    Reconstruction summed over pixels, KL summed over latent dimensions, both averaged over the
    batch (the β-VAE paper's convention: β = 1 is the ELBO, β > 1 weighs the prior more).
    :math:`\beta_t` follows ``model.beta_schedule``; the step counter is part of the state_dict
    (as extra state: a Python int, so reading it never waits for a GPU), hence checkpointed with
    the weights, and a resumed run continues the schedule where it stopped.
    """

    summary = ("VAE / beta-VAE: Gaussian posterior, model.prior (N(0, I) by default), "
               "loss = recon + beta * KL")
    capabilities = frozenset({"encode", "variational", "sample", "decode"})
    sampling = "decoded from z ~ N(0, I), the prior"
    spec_fields = frozenset({"prior", "prior_components"})
    #: β when ``model.beta`` is unset (results.csv records it); ``None`` for an objective
    #: without a β.
    default_beta: float | None = 1.0

    def __init__(self, spec: ModelSpec, image_shape: tuple[int, int, int]) -> None:
        super().__init__(spec, image_shape, code_factor=2)
        self.beta = self.default_beta if spec.beta is None else float(spec.beta)
        self.step = 0
        self.prior = build_prior(spec.prior, spec.prior_components,
                                 PriorSetting(spec.latent_dim, image_shape=image_shape,
                                              encode=self.encode))
        if spec.prior is not None:
            self.sampling = f"decoded from z drawn from the prior ({self.prior.describe()})"

    def get_extra_state(self) -> dict[str, int]:
        return {"step": self.step}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])

    @classmethod
    def from_spec(cls, spec: ModelSpec, image_shape: tuple[int, int, int]) -> VAE:
        return cls(spec, image_shape)

    def current_beta(self) -> float:
        """The KL weight of the next training step."""
        return scheduled_beta(self.spec, self.beta, self.step)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of the prior (its noise drawn on the CPU from ``generator``)."""
        return self.prior.sample(n, generator).to(self.device)

    def encode(self, x: Tensor) -> Posterior:
        features, switches = self.encoder(x)
        mean, logvar = features.chunk(2, dim=1)
        return Posterior(mean=mean, logvar=logvar, switches=switches)

    def loss(self, x: Tensor) -> LossTerms:
        posterior = self.encode(x)
        z = reparameterize(posterior.mean, posterior.logvar)
        recon = self.reconstruction_nll(self.decode_posterior(z, posterior), x).mean()
        kl = self.prior.kl(posterior.mean, posterior.logvar, z).mean()
        beta = self.current_beta()
        if self.training:
            self.step += 1
        return LossTerms(loss=recon + beta * kl,
                         parts={"recon": recon, "kl": kl, "beta": recon.new_tensor(beta)})

