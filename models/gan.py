r"""The DCGAN baseline: a generator built from the decoder stages, a discriminator from the
encoder stages, trained adversarially by the same harness as every other model.

Reusing :class:`~latentbench.models.decoders.ConvDecoder` as the generator makes the decoder an
axis for GANs too: ``model.decoder = "unpool-nearest"`` gives a generator that upsamples by
nearest-neighbour unpooling, exactly as the AE/VAE decoder of that name does, so upsampling can
be compared across model families. A GAN has no encoder, so every metric that needs one
(reconstruction, rate, latent coverage) is absent for it, never zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentbench.models.decoders import DECODERS, ConvDecoder, decoder_needs_switches
from latentbench.models.encoders import ENCODERS, ConvEncoder
from latentbench.models.protocol import LatentModel, LossTerms, ModelSpec
from latentbench.models.registry import InputError
from latentbench.models.zoo import MODELS

# Radford et al. 2016: LeakyReLU(0.2) in the discriminator keeps gradients flowing to the
# generator through units that a ReLU would switch off.
LEAKY_SLOPE = 0.2
# Radford et al. 2016: β₁ = 0.9 made training oscillate; 0.5 is the DCGAN setting.
ADAM_BETAS = (0.5, 0.999)


def discriminator_loss(real_scores: Tensor, fake_scores: Tensor, kind: str) -> Tensor:
    r"""The discriminator's loss from its logits on real and generated images, batch-averaged.

    - ``non-saturating`` (Goodfellow et al. 2014, the binary cross-entropy of a classifier with
      :math:`\sigma(D)` the probability "real"):
      :math:`\mathcal L_D = \mathbb E_x[\operatorname{softplus}(-D(x))]
      + \mathbb E_z[\operatorname{softplus}(D(G(z)))]`,
      since :math:`-\log\sigma(t) = \operatorname{softplus}(-t)` and
      :math:`-\log(1 - \sigma(t)) = \operatorname{softplus}(t)`;
    - ``hinge`` (Lim & Ye 2017; Miyato et al. 2018):
      :math:`\mathcal L_D = \mathbb E_x[\max(0, 1 - D(x))] + \mathbb E_z[\max(0, 1 + D(G(z)))]`.

    Args:
        real_scores: ``D(x)`` for real images, ``[N, 1]`` logits.
        fake_scores: ``D(G(z))`` for generated images, ``[M, 1]`` logits.
        kind: ``non-saturating`` or ``hinge``.
    """
    if kind == "hinge":
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def generator_loss(fake_scores: Tensor, kind: str) -> Tensor:
    r"""The generator's loss from the discriminator's logits on generated images, batch-averaged.

    - ``non-saturating`` (Goodfellow et al. 2014, §3): maximise :math:`\log D(G(z))` rather than
      minimise :math:`\log(1 - D(G(z)))`, which saturates early in training when the
      discriminator rejects every sample:
      :math:`\mathcal L_G = \mathbb E_z[\operatorname{softplus}(-D(G(z)))]`;
    - ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): :math:`\mathcal L_G = -\mathbb E_z[D(G(z))]`.

    Args:
        fake_scores: ``D(G(z))``, ``[M, 1]`` logits.
        kind: ``non-saturating`` or ``hinge``.
    """
    if kind == "hinge":
        return -fake_scores.mean()
    return F.softplus(-fake_scores).mean()


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Stop autograd from computing gradients for ``module``'s parameters inside the block.

    The generator's step backpropagates *through* the discriminator but must not update it;
    freezing skips the discriminator's weight gradients (about a third of its backward pass)
    instead of computing and discarding them.
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@MODELS.register("dcgan")
class DCGAN(LatentModel):
    r"""Deep convolutional GAN (Radford et al. 2016) with a choice of decoder stage and loss.

    The generator is :class:`ConvDecoder` with batch normalisation, producing logits; images are
    :math:`G(z) = \sigma(\mathrm{logits})` with :math:`z \sim \mathcal N(0, I)`. The
    discriminator is :class:`ConvEncoder` with LeakyReLU(0.2) and one output, the logit
    :math:`D(x)` of "x is real". The two play

    .. math::
        \min_G \max_D\; \mathbb E_x[\log \sigma(D(x))] + \mathbb E_z[\log(1 - \sigma(D(G(z))))]

    through alternating steps, each with its own Adam (β = (0.5, 0.999)): see
    :func:`discriminator_loss` and :func:`generator_loss` for the ``non-saturating`` and
    ``hinge`` objectives (``model.gan_loss``).

    Args:
        spec: the model section; ``decoder`` picks the generator's upsampling stage, ``encoder``
            (default ``conv``) the discriminator's downsampling stage, ``width`` and ``hidden``
            size both players, ``gan_loss`` the objective.
        image_shape: ``(C, H, W)``, H and W divisible by 4.
    """

    summary = "DCGAN: generator from the decoder stages, discriminator from the encoder stages"
    capabilities = frozenset({"sample", "decode"})
    sampling = "generator applied to z ~ N(0, I)"

    def __init__(self, spec: ModelSpec, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.spec = spec
        self.latent_dim = spec.latent_dim
        self.gan_loss = spec.gan_loss
        # Batch norm in the generator is what made DCGAN train stably (Radford et al. 2016).
        self.generator = ConvDecoder(image_shape, spec.latent_dim, spec.width, spec.hidden,
                                     DECODERS.get(spec.decoder), norm=True)
        # A GAN has no encoder whose switches an unpool-max stage could reuse, so any encoder
        # stage can be the discriminator; without a choice it is the plain strided conv.
        encoder = "conv" if spec.encoder is None else spec.encoder
        self.discriminator = ConvEncoder(image_shape, spec.width, spec.hidden, 1,
                                         ENCODERS.get(encoder),
                                         activation=partial(nn.LeakyReLU, LEAKY_SLOPE))
        if decoder_needs_switches(spec.decoder):
            self.sampling += ("; the generator has no encoder switches, so unpool-max puts each "
                              "value at the top-left of its cell")

    @classmethod
    def from_spec(cls, spec: ModelSpec, image_shape: tuple[int, int, int]) -> DCGAN:
        """Build from a suite's model section.

        Raises:
            InputError: ``model.beta`` is set (a GAN has no KL term), ``model.options`` is set
                (only plug-in models take options), an unknown encoder/decoder, or an image
                shape the conv stacks cannot handle.
        """
        if spec.beta is not None:
            raise InputError("model.beta: a GAN has no KL term; use name = \"vae\" to set beta")
        if spec.options:
            raise InputError(f"model.options: only plug-in models take options; "
                             f"{spec.name!r} got {sorted(spec.options)}")
        return cls(spec, image_shape)

    def decode(self, z: Tensor) -> Tensor:
        """Generator logits for codes ``z`` ``[N, latent_dim]``; images are their sigmoid."""
        return self.generator(z)

    def generate(self, n: int, device: torch.device) -> Tensor:
        r"""``n`` images :math:`\sigma(G(z))`, ``z ~ N(0, I)`` from the global RNG."""
        return torch.sigmoid(self.decode(torch.randn(n, self.latent_dim, device=device)))

    def critic(self, images: Tensor) -> Tensor:
        """Discriminator logits ``[N, 1]`` of "real" for images in [0, 1]."""
        scores, _ = self.discriminator(images)  # pooling switches, if any, are of no use here
        return scores

    @torch.no_grad()
    def loss(self, x: Tensor) -> LossTerms:
        """Both players' losses on real batch ``x`` and one batch of ``len(x)`` samples, with no
        optimiser step and no graph: for logging and evaluation. ``loss = d_loss + g_loss``.

        In train mode the generator's batch-norm running statistics still move, as on any
        forward pass; call ``eval()`` first to leave the model untouched.
        """
        fake_scores = self.critic(self.generate(len(x), x.device))
        d_loss = discriminator_loss(self.critic(x), fake_scores, self.gan_loss)
        g_loss = generator_loss(fake_scores, self.gan_loss)
        return LossTerms(loss=d_loss + g_loss, parts={"d_loss": d_loss, "g_loss": g_loss})

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """One Adam per player, both at ``lr`` with β = (0.5, 0.999); checkpointed by name."""
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=ADAM_BETAS),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr,
                                              betas=ADAM_BETAS),
        }

    def train_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> LossTerms:
        """One discriminator step, then one generator step on a fresh z ~ N(0, I).

        Each step changes only its own player's weights. ``d_loss`` is the discriminator's loss
        before its step; ``g_loss`` is the generator's, scored by the updated discriminator.
        The returned ``loss`` (their sum) is what the harness logs and checks for NaN; it is not
        minimised as such.
        """
        # Discriminator step. The fakes are made without a graph: the generator is not updated
        # here, so nothing should flow back into it.
        with torch.no_grad():
            fake = self.generate(len(x), x.device)
        d_loss = discriminator_loss(self.critic(x), self.critic(fake), self.gan_loss)
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["discriminator"].step()

        # Generator step: gradients go through the (frozen) discriminator into the generator.
        with frozen(self.discriminator):
            g_loss = generator_loss(self.critic(self.generate(len(x), x.device)), self.gan_loss)
            optimizers["generator"].zero_grad(set_to_none=True)
            g_loss.backward()
        optimizers["generator"].step()

        d_loss, g_loss = d_loss.detach(), g_loss.detach()
        return LossTerms(loss=d_loss + g_loss, parts={"d_loss": d_loss, "g_loss": g_loss})

