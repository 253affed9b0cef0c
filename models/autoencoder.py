"""The deterministic autoencoder (AE) and the encoder/decoder plumbing it shares with the VAE."""

from __future__ import annotations

import torch
from torch import Tensor

from latentbench.models.decoders import DECODERS, ConvDecoder, decoder_needs_switches
from latentbench.models.encoders import ENCODERS, ConvEncoder
from latentbench.models.likelihoods import LIKELIHOODS
from latentbench.models.protocol import LatentModel, LossTerms, ModelSpec, Posterior
from latentbench.models.registry import InputError
from latentbench.models.zoo import MODELS

POOLING_ENCODER = "maxpool"


def resolve_encoder(spec: ModelSpec) -> str:
    """The encoder a spec gets: the one it names, or the one its decoder needs.

    Raises:
        InputError: the decoder unpools with switches but the encoder does not pool.
    """
    needs_switches = decoder_needs_switches(spec.decoder)
    if spec.encoder is None:
        return POOLING_ENCODER if needs_switches else "conv"
    ENCODERS.get(spec.encoder)
    if needs_switches and spec.encoder != POOLING_ENCODER:
        raise InputError(f"model.encoder: decoder {spec.decoder!r} unpools with the switches of "
                         f"a max-pooling encoder; use encoder = \"{POOLING_ENCODER}\" or leave "
                         f"it out, got {spec.encoder!r}")
    return spec.encoder


class EncoderDecoderModel(LatentModel):
    """An encoder, a decoder and a pixel likelihood built from a :class:`ModelSpec`.

    Args:
        spec: the model section of the suite.
        image_shape: ``(C, H, W)``.
        code_factor: encoder outputs per latent dimension (1 for a code, 2 for μ and logσ²).
    """

    def __init__(self, spec: ModelSpec, image_shape: tuple[int, int, int], code_factor: int):
        super().__init__()
        if spec.options:
            raise InputError(f"model.options: only plug-in models take options; "
                             f"{spec.name!r} got {sorted(spec.options)}")
        self.spec = spec
        self.latent_dim = spec.latent_dim
        self.likelihood = LIKELIHOODS.get(spec.likelihood)(spec)
        self.encoder = ConvEncoder(image_shape, spec.width, spec.hidden,
                                   code_factor * spec.latent_dim,
                                   ENCODERS.get(resolve_encoder(spec)))
        self.decoder = ConvDecoder(image_shape, spec.latent_dim, spec.width, spec.hidden,
                                   DECODERS.get(spec.decoder))
        self.pixel_likelihood = spec.likelihood
        if decoder_needs_switches(spec.decoder):
            self.sampling += ("; with no encoded image to take switches from, unpool-max puts "
                              "each value at the top-left of its cell")
            # The switches say where each maximum of the encoder's feature maps was: the
            # decoder gets that much of x past the code.
            self.side_channel = (f"its decoder reads the encoder's max-pooling switches "
                                 f"({spec.decoder})")

    def decode(self, z: Tensor, switches: tuple[Tensor, ...] | None = None) -> Tensor:
        return self.decoder(z, switches)

    def decode_posterior(self, z: Tensor, posterior: Posterior) -> Tensor:
        return self.decode(z, posterior.switches)

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """−log p(x|z) per image, nats."""
        return self.likelihood(logits, x)


@MODELS.register("ae")
class Autoencoder(EncoderDecoderModel):
    """Deterministic autoencoder: ``loss = −log p(x | z = enc(x))``, no KL term.

    An AE has no prior, so :meth:`sample` draws from a Gaussian fitted to the codes of the
    training images after training (the ex-post density estimate of Ghosh et al. 2020,
    "From Variational to Deterministic Autoencoders"); before :meth:`calibrate` it uses N(0, I).
    """

    summary = "deterministic autoencoder; samples from a Gaussian fitted to training codes"
    capabilities = frozenset({"encode", "sample", "decode"})
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
        code, switches = self.encoder(x)
        return Posterior(mean=code, switches=switches)

    def loss(self, x: Tensor) -> LossTerms:
        posterior = self.encode(x)
        logits = self.decode_posterior(posterior.mean, posterior)
        recon = self.reconstruction_nll(logits, x).mean()
        return LossTerms(loss=recon, parts={"recon": recon})

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` codes from N(m, S), the Gaussian :meth:`calibrate` fitted to the training codes."""
        eps = torch.randn(n, self.latent_dim, generator=generator).to(self.code_mean)
        return self.code_mean + eps @ self.code_scale_tril.T

    @torch.no_grad()
    def calibrate(self, train_images: Tensor, batch_size: int) -> None:
        """Fit the sampling Gaussian N(m, S) to the codes of ``train_images``."""
        codes = torch.cat([self.encode(batch.to(self.device)).mean
                           for batch in train_images.split(batch_size)])
        mean, scale_tril = fit_gaussian(codes)
        self.code_mean.copy_(mean)
        self.code_scale_tril.copy_(scale_tril)


def fit_gaussian(codes: Tensor) -> tuple[Tensor, Tensor]:
    """The mean ``m`` and Cholesky factor ``L`` (``S = L Lᵀ``) of the Gaussian fitted to
    ``codes`` ``[N, d]`` (N ≥ 2), in float64: the sampling distribution of a model without a
    prior (an autoencoder, here or loaded from pythae)."""
    codes = codes.double()
    dim = codes.shape[1]
    cov = torch.cov(codes.T).reshape(dim, dim)
    # A small ridge keeps the Cholesky defined when some code dimensions are unused.
    cov += 1e-6 * torch.eye(dim, dtype=cov.dtype, device=cov.device)
    return codes.mean(dim=0), torch.linalg.cholesky(cov)
