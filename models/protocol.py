"""The model protocol every latentbench model follows, and its config.

A model maps images in [0, 1], ``[N, C, H, W]``, to latent codes and back. What a model can do is
declared in :attr:`LatentModel.capabilities`, and metrics state what they need, so a metric that
does not apply to a model (reconstruction for a GAN) is skipped — absent, never zero:

- ``"encode"``: has an encoder (reconstruction, latent metrics);
- ``"variational"``: the encoder is a Gaussian posterior q(z|x), so rate and ELBO are defined;
- ``"sample"``: can draw new images.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from latentbench.models.registry import InputError


@dataclass(frozen=True)
class ModelSpec:
    """The ``[model]`` section of a suite.

    Attributes:
        name: registered model (``latentbench list models``).
        encoder: registered encoder (``latentbench list encoders``... see ``list decoders``).
        decoder: registered decoder (``latentbench list decoders``).
        latent_dim: size of the latent code.
        width: channels of the first conv layer; deeper layers use multiples of it.
        hidden: units of the fully connected layer between the conv stack and the code.
        beta: weight of the KL term (VAE family only); ``None`` means the model's default.
        likelihood: ``bernoulli`` (BCE with logits) or ``gaussian`` (fixed σ).
        sigma: σ of the Gaussian likelihood; 1/√2 makes −log p(x|z) = ‖x − x̂‖² + const.
    """

    name: str = "vae"
    encoder: str = "conv"
    decoder: str = "transposed"
    latent_dim: int = 16
    width: int = 32
    hidden: int = 256
    beta: float | None = None
    likelihood: str = "bernoulli"
    sigma: float = 0.5**0.5

    def __post_init__(self) -> None:
        for name in ("latent_dim", "width", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"model.{name}: must be a positive integer, got {value!r}")
        if self.beta is not None and (isinstance(self.beta, bool) or self.beta < 0):
            raise InputError(f"model.beta: must be a number >= 0, got {self.beta!r}")
        if self.sigma <= 0:
            raise InputError(f"model.sigma: must be > 0, got {self.sigma!r}")


@dataclass
class LossTerms:
    """One batch's training objective and its parts, each averaged over the batch.

    Attributes:
        loss: the scalar minimised: ``recon + β·kl`` (``recon`` alone without a KL term).
        recon: −log p(x|z) summed over pixels, averaged over the batch (nats per image).
        kl: KL(q(z|x) ‖ p(z)) summed over latent dims, averaged over the batch, or ``None``.
    """

    loss: Tensor
    recon: Tensor
    kl: Tensor | None = None


@dataclass
class Posterior:
    """What an encoder says about ``z`` given ``x``: the mean, and the log-variance if Gaussian."""

    mean: Tensor
    logvar: Tensor | None = None


class LatentModel(nn.Module, ABC):
    """Base class of every model: encode / decode / sample / loss.

    Subclasses set :attr:`latent_dim` and :attr:`capabilities` and implement the abstract methods
    their capabilities promise; :meth:`encode` of a model without ``"encode"`` raises.
    """

    latent_dim: int
    capabilities: frozenset[str] = frozenset()
    #: How :meth:`sample` draws, for the report's caption of the samples.
    sampling: str = "decoded from z drawn from the prior"

    def encode(self, x: Tensor) -> Posterior:
        """The posterior (or deterministic code) of images ``x`` in [0, 1], ``[N, C, H, W]``."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder")

    @abstractmethod
    def decode(self, z: Tensor) -> Tensor:
        """Decoder output for codes ``z`` ``[N, latent_dim]``: logits of pixel means."""

    @abstractmethod
    def loss(self, x: Tensor) -> LossTerms:
        """The training objective on a batch ``x`` (see :class:`LossTerms`)."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` new images in [0, 1]."""

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """−log p(x|z) in nats, summed over pixels: one value per image of ``x``."""
        raise NotImplementedError(f"{type(self).__name__} has no pixel likelihood")

    def reconstruct(self, x: Tensor) -> Tensor:
        """Images in [0, 1] decoded from the posterior mean of ``x`` (no sampling noise)."""
        return torch.sigmoid(self.decode(self.encode(x).mean))

    def calibrate(self, train_images: Tensor, batch_size: int) -> None:
        """Hook run once after training with the training images; default: nothing to do."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
