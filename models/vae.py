"""The variational autoencoder with a β-weighted KL term (β-VAE; β = 1 is the plain VAE)."""

from __future__ import annotations

import torch
from torch import Tensor

from latentbench.models.autoencoder import EncoderDecoderModel
from latentbench.models.gaussian import kl_normal, reparameterize
from latentbench.models.protocol import LossTerms, ModelSpec, Posterior
from latentbench.models.zoo import MODELS


@MODELS.register("vae")
class VAE(EncoderDecoderModel):
    r"""Gaussian-posterior VAE with a standard-normal prior.

    .. math::
        \mathcal L(x) = \underbrace{-\log p(x \mid z)}_{\text{recon}}
                        + \beta\, \mathrm{KL}\big(q(z \mid x) \,\|\, \mathcal N(0, I)\big),
        \quad z = \mu + \sigma\odot\varepsilon

    Reconstruction summed over pixels, KL summed over latent dimensions, both averaged over the
    batch (the β-VAE paper's convention: β = 1 is the ELBO, β > 1 weighs the prior more).
    """

    summary = "VAE / beta-VAE: Gaussian posterior, N(0, I) prior, loss = recon + beta * KL"
    capabilities = frozenset({"encode", "variational", "sample"})
    sampling = "decoded from z ~ N(0, I), the prior"

    def __init__(self, spec: ModelSpec, image_shape: tuple[int, int, int]) -> None:
        super().__init__(spec, image_shape, code_factor=2)
        self.beta = 1.0 if spec.beta is None else float(spec.beta)

    @classmethod
    def from_spec(cls, spec: ModelSpec, image_shape: tuple[int, int, int]) -> VAE:
        return cls(spec, image_shape)

    def encode(self, x: Tensor) -> Posterior:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return Posterior(mean=mean, logvar=logvar)

    def loss(self, x: Tensor) -> LossTerms:
        posterior = self.encode(x)
        z = reparameterize(posterior.mean, posterior.logvar)
        recon = self.reconstruction_nll(self.decode(z), x).mean()
        kl = kl_normal(posterior.mean, posterior.logvar).mean()
        return LossTerms(loss=recon + self.beta * kl, recon=recon, kl=kl)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return torch.sigmoid(self.decode(z))
