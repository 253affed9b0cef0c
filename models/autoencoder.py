"""The deterministic autoencoder (AE) and the encoder/decoder plumbing it shares with the VAE."""

from __future__ import annotations

import torch
from torch import Tensor

from latentbench.models.decoders import DECODERS, ConvDecoder
from latentbench.models.encoders import ENCODERS
from latentbench.models.likelihoods import LIKELIHOODS
from latentbench.models.protocol import LatentModel, LossTerms, ModelSpec, Posterior
from latentbench.models.registry import InputError
from latentbench.models.zoo import MODELS


class EncoderDecoderModel(LatentModel):
    """An encoder, a decoder and a pixel likelihood built from a :class:`ModelSpec`.

    Args:
        spec: the model section of the suite.
        image_shape: ``(C, H, W)``.
        code_factor: encoder outputs per latent dimension (1 for a code, 2 for μ and logσ²).
    """

    def __init__(self, spec: ModelSpec, image_shape: tuple[int, int, int], code_factor: int):
        super().__init__()
        self.spec = spec
        self.latent_dim = spec.latent_dim
        self.nll = LIKELIHOODS.get(spec.likelihood)
        self.encoder = ENCODERS.get(spec.encoder)(
            image_shape, spec.width, spec.hidden, code_factor * spec.latent_dim
        )
        self.decoder = ConvDecoder(image_shape, spec.latent_dim, spec.width, spec.hidden,
                                   DECODERS.get(spec.decoder))

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """−log p(x|z) per image, nats."""
        return self.nll(logits, x, self.spec.sigma)


@MODELS.register("ae")
class Autoencoder(EncoderDecoderModel):
    """Deterministic autoencoder: ``loss = −log p(x | z = enc(x))``, no KL term.

    An AE has no prior, so :meth:`sample` draws from a Gaussian fitted to the codes of the
    training images after training (the ex-post density estimate of Ghosh et al. 2020,
    "From Variational to Deterministic Autoencoders"); before :meth:`calibrate` it uses N(0, I).
    """

    summary = "deterministic autoencoder; samples from a Gaussian fitted to training codes"
    capabilities = frozenset({"encode", "sample"})
    sampling = "decoded from z drawn from a Gaussian fitted to the training codes (no prior)"

    def __init__(self, spec: ModelSpec, image_shape: tuple[int, int, int]) -> None:
        super().__init__(spec, image_shape, code_factor=1)
        # Buffers, not attributes: they belong in the state_dict next to the weights.
        self.register_buffer("code_mean", torch.zeros(spec.latent_dim))
        self.register_buffer("code_scale_tril", torch.eye(spec.latent_dim))

    @classmethod
    def from_spec(cls, spec: ModelSpec, image_shape: tuple[int, int, int]) -> Autoencoder:
        if spec.beta is not None:
            raise InputError("model.beta: the plain autoencoder has no KL term; "
                             "use name = \"vae\" to set beta")
        return cls(spec, image_shape)

    def encode(self, x: Tensor) -> Posterior:
        return Posterior(mean=self.encoder(x))

    def loss(self, x: Tensor) -> LossTerms:
        recon = self.reconstruction_nll(self.decode(self.encoder(x)), x).mean()
        return LossTerms(loss=recon, recon=recon)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(n, self.latent_dim, generator=generator).to(self.code_mean)
        return torch.sigmoid(self.decode(self.code_mean + eps @ self.code_scale_tril.T))

    @torch.no_grad()
    def calibrate(self, train_images: Tensor, batch_size: int) -> None:
        """Fit the sampling Gaussian N(m, S) to the codes of ``train_images``."""
        codes = torch.cat([self.encoder(batch.to(self.device))
                           for batch in train_images.split(batch_size)]).double()
        cov = torch.cov(codes.T).reshape(self.latent_dim, self.latent_dim)
        # A small ridge keeps the Cholesky defined when some code dimensions are unused.
        cov += 1e-6 * torch.eye(self.latent_dim, dtype=cov.dtype, device=cov.device)
        self.code_mean.copy_(codes.mean(dim=0))
        self.code_scale_tril.copy_(torch.linalg.cholesky(cov))
