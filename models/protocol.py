"""The model protocol every latentbench model follows, and its config.

A model maps images in [0, 1], ``[N, C, H, W]``, to latent codes and back. What a model can do is
declared in :attr:`LatentModel.capabilities`, and metrics state what they need, so a metric that
does not apply to a model (reconstruction for a GAN) is skipped — absent, never zero:

- ``"encode"``: has an encoder (reconstruction, latent metrics);
- ``"variational"``: the encoder is a Gaussian posterior q(z|x), so rate and ELBO are defined;
- ``"sample"``: can draw new images;
- ``"decode"``: maps latent codes to images (:meth:`LatentModel.decode` of
  :meth:`LatentModel.sample_latent` draws) and trains through :meth:`LatentModel.loss`: path
  lengths, latent interpolations and the cost metrics need it. A generator-only plug-in
  (:class:`~latentbench.models.generator.GeneratorModel`) or a file of samples has only
  ``"sample"`` and is scored on the sample metrics alone.

A model trained elsewhere is scored as loaded: ``[model] weights`` loads a ``state_dict`` into
any model, and a model class with ``trained_here = False`` (pythae models, sample files,
generator-only plug-ins) is never trained by latentbench (``train.epochs`` must be 0).

A model whose decoder sees more of x than the code (max-pooling switches, skip connections)
says so in :attr:`LatentModel.side_channel`: its likelihoods are then not bounds on −log p(x),
so the evaluation leaves them out with that reason, and flags its reconstructions.

Training goes through :meth:`LatentModel.configure_optimizers` and :meth:`LatentModel.train_step`;
the defaults (one Adam, minimise :meth:`LatentModel.loss`) fit every model with a single
objective, and a GAN overrides both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from latentbench.models.registry import InputError, check_int, check_number

BETA_SCHEDULES = ("constant", "warmup", "cyclical")
GAN_LOSSES = ("non-saturating", "hinge")
#: :class:`ModelSpec` fields that only some models read (``None``: the model's default). Each
#: model lists those it takes in :attr:`LatentModel.spec_fields`; ``build_model`` refuses the
#: others, so a weight set on a model that has no such term is an error, never ignored.
MODEL_SPECIFIC_FIELDS = ("alpha", "gamma", "capacity", "capacity_steps", "prior",
                         "prior_components")


@dataclass(frozen=True)
class ModelSpec:
    """The ``[model]`` section of a suite.

    Attributes:
        name: registered model (``latentbench list models``), or ``"package.module:Class"``.
        encoder: registered encoder (``latentbench list encoders``); ``None`` picks the one the
            decoder needs (``maxpool`` for ``unpool-max``, else ``conv``).
        decoder: registered decoder (``latentbench list decoders``).
        latent_dim: size of the latent code.
        width: channels of the first conv stage; the second has ``2·width``.
        hidden: units of the fully connected layer between the conv stack and the code.
        beta: weight of the KL term (VAE family only; for ``btcvae`` the weight of the total
            correlation); ``None`` means the model's default.
        beta_schedule: ``constant``; ``warmup`` (β rises linearly from 0 over ``warmup_steps``
            optimiser steps); ``cyclical`` (Fu et al. 2019: in each cycle of ``cycle_steps``
            steps β rises linearly over the first ``cycle_ratio`` of it, then stays).
        warmup_steps, cycle_steps, cycle_ratio: parameters of those schedules.
        likelihood: ``bernoulli``, ``gaussian`` (fixed ``sigma``), ``gaussian-learned`` or
            ``continuous-bernoulli`` (a density on [0, 1] for grey pixels).
        sigma: σ of the fixed Gaussian likelihood; 1/√2 makes −log p(x|z) = ‖x − x̂‖² + const.
        gan_loss: ``non-saturating`` or ``hinge`` (GANs only).
        alpha: ``btcvae`` only: weight of the index-code mutual information; ``None`` means the
            model's default.
        gamma: ``btcvae``: weight of the dimension-wise KL; ``annealed-vae``: weight of the
            capacity penalty γ·|KL − C_t|; ``None`` means the model's default.
        capacity: ``annealed-vae`` only: C_max, the KL (nats) the capacity C_t rises to;
            ``None`` means the model's default.
        capacity_steps: ``annealed-vae`` only: T, the optimiser steps over which C_t rises
            linearly from 0 to C_max; ``None`` means the model's default.
        prior: the prior p(z) of a VAE (``latentbench list priors``): ``normal`` (N(0, I),
            the default; stored as ``None``, so it names the same run as before the option
            existed), ``mog``, ``vamp``, ``flow``, or ``"package.module:Class"``.
        prior_components: K of the ``mog`` mixture or of the ``vamp`` pseudo-inputs; ``None``
            means the prior's default (10 and 50).
        options: free-form settings passed to a plug-in model.
        weights: a ``state_dict`` file (``torch.save(model.state_dict(), path)``, or a
            latentbench run's ``model.pt``) loaded into the built model with
            ``weights_only=True`` before training; with ``train.epochs = 0`` the run scores
            these weights as they are. A relative path is relative to the suite file. The run
            id holds the file's sha256, not its path.

    The fields of :data:`MODEL_SPECIFIC_FIELDS` are read by some models only: a model lists the
    ones it takes in :attr:`LatentModel.spec_fields`, and setting one that it does not take is
    an :class:`InputError` when the model is built.
    """

    name: str = "vae"
    encoder: str | None = None
    decoder: str = "transposed"
    latent_dim: int = 16
    width: int = 32
    hidden: int = 256
    beta: float | None = None
    beta_schedule: str = "constant"
    warmup_steps: int = 1000
    cycle_steps: int = 1000
    cycle_ratio: float = 0.5
    likelihood: str = "bernoulli"
    sigma: float = 0.5**0.5
    gan_loss: str = "non-saturating"
    alpha: float | None = None
    gamma: float | None = None
    capacity: float | None = None
    capacity_steps: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    prior: str | None = None
    prior_components: int | None = None

    def __post_init__(self) -> None:
        if self.prior == "normal":  # the default by name: one run id for both spellings
            object.__setattr__(self, "prior", None)
        if self.prior is not None and not self.prior.strip():
            raise InputError("model.prior: give a prior of `latentbench list priors`, or leave "
                             "it out for normal")
        if self.prior_components is not None:
            object.__setattr__(self, "prior_components",
                               check_int(self.prior_components, "model.prior_components",
                                         minimum=1))
        if self.weights is not None and not self.weights.strip():
            raise InputError("model.weights: give the path of a state_dict file, or leave it "
                             "out")
        for name in ("latent_dim", "width", "hidden", "warmup_steps", "cycle_steps"):
            # Stored as the plain int check_int returns (a numpy integer passes the check), so
            # the run id's JSON can hold it.
            object.__setattr__(self, name,
                               check_int(getattr(self, name), f"model.{name}", minimum=1))
        # check_number also refuses nan and inf: TOML has both.
        for name in ("beta", "alpha", "gamma", "capacity"):
            if getattr(self, name) is not None:
                check_number(getattr(self, name), f"model.{name}", minimum=0)
        if self.capacity_steps is not None:
            object.__setattr__(self, "capacity_steps",
                               check_int(self.capacity_steps, "model.capacity_steps", minimum=1))
        check_number(self.sigma, "model.sigma", minimum=0, above=True)
        check_number(self.cycle_ratio, "model.cycle_ratio", minimum=0, maximum=1, above=True)
        for name, allowed in (("beta_schedule", BETA_SCHEDULES), ("gan_loss", GAN_LOSSES)):
            if getattr(self, name) not in allowed:
                raise InputError(f"model.{name}: must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")


@dataclass
class LossTerms:
    """One batch's training objective and its named parts, each averaged over the batch.

    Attributes:
        loss: the scalar minimised (for a GAN: the sum of its players' losses, for logging).
        parts: named scalars logged per epoch: ``recon`` (−log p(x|z) summed over pixels, nats
            per image) and ``kl`` (KL(q(z|x) ‖ p(z)) summed over latent dims) for the VAE family;
            ``d_loss``, ``g_loss`` for a GAN.
    """

    loss: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)

    @property
    def recon(self) -> Tensor:
        return self.parts["recon"]

    @property
    def kl(self) -> Tensor | None:
        return self.parts.get("kl")


@dataclass
class Posterior:
    """What an encoder says about ``z`` given ``x``: the mean, the log-variance if Gaussian, and
    the max-pooling switches of the encoder if it has any (for ``unpool-max`` decoders)."""

    mean: Tensor
    logvar: Tensor | None = None
    switches: tuple[Tensor, ...] | None = None


class LatentModel(nn.Module, ABC):
    """Base class of every model: encode / decode / sample / loss, and how it trains.

    Subclasses set :attr:`latent_dim` and :attr:`capabilities` and implement the abstract methods
    their capabilities promise; :meth:`encode` of a model without ``"encode"`` raises.
    """

    latent_dim: int
    capabilities: frozenset[str] = frozenset()
    #: How :meth:`sample` draws, for the report's caption of the samples.
    sampling: str = "decoded from z drawn from the prior"
    #: Why the decoder sees more of x than the code, in a short phrase that completes "not a
    #: bound on −log p(x), because ...": ``"its decoder reads the encoder's max-pooling switches
    #: (unpool-max)"``, ``"its decoder has skip connections from the encoder"``. ``None`` (the
    #: default) for a decoder that sees only z. With a side channel, distortion, −ELBO and the
    #: IWAE bound are not bounds on −log p(x) (the decoder can copy x past the code), so they are
    #: absent with this reason, and reconstruction metrics are kept but flagged, never ranked.
    side_channel: str | None = None
    #: The registered name of the likelihood :meth:`reconstruction_nll` computes
    #: (``bernoulli``, ``gaussian``, ``continuous-bernoulli``, ...), recorded with every
    #: likelihood metric; ``None`` for a likelihood of the model's own.
    pixel_likelihood: str | None = None
    #: The fields of :data:`MODEL_SPECIFIC_FIELDS` this model reads; ``build_model`` refuses a
    #: spec that sets any other of them.
    spec_fields: frozenset[str] = frozenset()
    #: ``False`` for a model that is scored as loaded and never trained by latentbench (a
    #: pythae model, a file of samples, a generator-only plug-in): ``train.epochs`` must be 0.
    trained_here: bool = True
    #: The ``[model.options]`` keys that hold paths of files or folders the model reads (a
    #: pythae folder, a sample file): the run id holds their contents' sha256 instead of the
    #: paths, and a relative path is relative to the suite file.
    file_options: tuple[str, ...] = ()

    @classmethod
    def identity(cls, spec: ModelSpec) -> dict[str, Any]:
        """The results.csv columns that say what was scored: ``decoder`` and ``latent_dim``
        (``None``: not known or not applicable, shown as –). Default: the spec's. A model
        loaded from elsewhere overrides it with what it found (pythae's latent size)."""
        return {"decoder": spec.decoder, "latent_dim": spec.latent_dim}

    def encode(self, x: Tensor) -> Posterior:
        """The posterior (or deterministic code) of images ``x`` in [0, 1], ``[N, C, H, W]``."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder")

    @abstractmethod
    def decode(self, z: Tensor) -> Tensor:
        """Decoder output for codes ``z`` ``[N, latent_dim]``: logits of pixel means."""

    @abstractmethod
    def loss(self, x: Tensor) -> LossTerms:
        """The training objective on a batch ``x`` (see :class:`LossTerms`)."""

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` codes ``[n, latent_dim]`` from the distribution :meth:`sample` decodes.

        Default: the prior N(0, I), drawn on the CPU with ``generator`` and then moved, so a seed
        gives the same codes on every device. Latent-space metrics (prior coverage, path
        length) compare against this distribution, so a model that samples from elsewhere (the
        AE's fitted Gaussian) overrides it.
        """
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` new images in [0, 1]: :meth:`sample_latent` decoded. Default for every model
        whose decoder takes a plain code."""
        return torch.sigmoid(self.decode(self.sample_latent(n, generator)))

    def decode_posterior(self, z: Tensor, posterior: Posterior) -> Tensor:
        """Decode ``z`` drawn from ``posterior``: decoders that reuse encoder side information
        (the ``unpool-max`` switches) take it from there. Default: :meth:`decode`."""
        return self.decode(z)

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """−log p(x|z) in nats, summed over pixels: one value per image of ``x``."""
        raise NotImplementedError(f"{type(self).__name__} has no pixel likelihood")

    def reconstruct(self, x: Tensor) -> Tensor:
        """Images in [0, 1] decoded from the posterior mean of ``x`` (no sampling noise)."""
        posterior = self.encode(x)
        return torch.sigmoid(self.decode_posterior(posterior.mean, posterior))

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """The optimisers, by name (checkpointed under these names). Default: one Adam.

        ``foreach=True``: the multi-tensor update, which CUDA takes by default, on the CPU too,
        where it gives the same parameters bit for bit and a quick-suite VAE step 3–4 % faster
        (``fused=True`` is faster still but rounds differently)."""
        return {"model": torch.optim.Adam(self.parameters(), lr=lr, foreach=True)}

    def prepare_training(self, n_train: int) -> None:
        """Hook run once by the trainer before its first step, with the number of training
        images; default: nothing to do.

        For an objective that depends on the size of the data set (β-TCVAE's minibatch-weighted
        sampling). It runs before a checkpoint is restored, so what it sets as state (in the
        ``state_dict``) the checkpoint's values replace on a resumed run.

        Args:
            n_train: images per epoch, ``N``.
        """

    def train_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> LossTerms:
        """One optimisation step on batch ``x``. Default: minimise :meth:`loss`."""
        terms = self.loss(x)
        optimizer = optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        return terms

    def calibrate(self, train_images: Tensor, batch_size: int) -> None:
        """Hook run once after training with the training images; default: nothing to do."""

    @property
    def device(self) -> torch.device:
        """Where the model's parameters (else buffers) live; the CPU for a model with none
        (a generator-only plug-in that holds no tensors)."""
        return module_device(self)


def first_tensor(module: nn.Module) -> Tensor | None:
    """The first parameter of ``module``, else its first buffer; ``None`` when it has none."""
    return next(iter((*module.parameters(), *module.buffers())), None)


def module_device(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters (else buffers) live; the CPU for a module with none."""
    tensor = first_tensor(module)
    return torch.device("cpu") if tensor is None else tensor.device
