"""A VAE (or AE) built from any encoder and decoder ``nn.Module``: the base of user plug-ins.

Subclass :class:`ModuleVAE`, build your modules in ``from_spec`` (reading your own settings from
``[model.options]``), and name the class in a suite (``model.name = "my_models:MLPVAE"``) or
register it under the ``latentbench.models`` entry-point group. The loss, the pixel likelihood,
the sampling and the capabilities come from here, so a plug-in is scored exactly like the
built-in models. See the README section "Bring your own model".
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from latentbench.models.gaussian import reparameterize
from latentbench.models.likelihoods import LIKELIHOODS
from latentbench.models.priors import Prior, PriorSetting, StandardNormal, build_prior, prior_of
from latentbench.models.protocol import LatentModel, LossTerms, ModelSpec, Posterior
from latentbench.models.registry import InputError


class ModuleVAE(LatentModel):
    r"""A VAE from an arbitrary encoder and decoder, with a β-weighted KL (pythae style).

    .. math::
        \mathcal L(x) = -\log p(x \mid z) + \beta\,\mathrm{KL}\big(q(z \mid x) \,\|\,
        p(z)\big), \quad z = \mu + \sigma \odot \varepsilon

    with the reconstruction term summed over pixels, the KL summed over latent dimensions, both
    averaged over the batch (the latentbench loss convention), and p(z) the ``prior``
    (N(0, I) by default; the KL is then in closed form, else its one-sample estimate). With
    ``variational=False`` it is a deterministic autoencoder: ``loss = −log p(x | z =
    enc(x))``, no KL; it has no prior, so its samples, decoded from z ~ N(0, I), are only as
    good as its codes happen to match N(0, I) (override :meth:`sample`, and fit what it needs
    in :meth:`calibrate`, for better).

    Args:
        encoder: maps images ``[N, C, H, W]`` in [0, 1] to ``[N, 2·latent_dim]`` (μ then
            log σ², for a variational model) or ``[N, latent_dim]`` (the code, when
            ``variational=False``).
        decoder: maps codes ``[N, latent_dim]`` to logits ``[N, C, H, W]``; the decoded image is
            ``sigmoid(logits)``.
        latent_dim: size of the latent code.
        beta: weight of the KL term; ``None`` means 1 (the plain VAE). Must be ``None`` when
            ``variational=False``.
        likelihood: a registered pixel likelihood (``latentbench list likelihoods``):
            ``bernoulli``, ``gaussian``, ``gaussian-learned`` or ``continuous-bernoulli``.
        sigma: σ of the Gaussian likelihoods (the starting σ of ``gaussian-learned``).
        variational: ``True`` for a Gaussian posterior (capabilities ``encode``, ``variational``,
            ``sample``, ``decode``), ``False`` for a deterministic code (``encode``, ``sample``,
            ``decode``).
        prior: a registered prior (``latentbench list priors``; ``None``: ``normal``) or a
            :class:`~latentbench.models.priors.Prior` of your own; a variational model only.
        prior_components: K of ``mog`` or ``vamp`` (``None``: the prior's default).
        image_shape: ``(C, H, W)`` of the images, which ``vamp`` needs for its pseudo-inputs.

    Raises:
        InputError: unknown likelihood, a bad ``latent_dim``, ``beta`` or ``sigma``, or a
            ``beta`` for a deterministic model.
        TypeError: ``encoder`` or ``decoder`` is not an ``nn.Module``.

    A plug-in whose decoder sees more of x than the code — skip connections from the encoder,
    say, with an encoder module that keeps its feature maps for the decoder module — declares
    it in the class: ``side_channel = "its decoder has skip connections from the encoder"``.
    Its distortion, −ELBO and IWAE bound are then left out (they are no bounds on −log p(x))
    and its reconstructions flagged.

    Example:
        >>> from torch import nn
        >>> model = ModuleVAE(nn.Sequential(nn.Flatten(), nn.Linear(16, 4)),
        ...                   nn.Sequential(nn.Linear(2, 16), nn.Unflatten(1, (1, 4, 4))),
        ...                   latent_dim=2)
        >>> sorted(model.capabilities)
        ['decode', 'encode', 'sample', 'variational']
    """

    summary = "VAE / AE from user encoder and decoder modules (a plug-in base class)"

    spec_fields = frozenset({"prior", "prior_components"})

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, *,
                 beta: float | None = None, likelihood: str = "bernoulli",
                 sigma: float = 0.5**0.5, variational: bool = True,
                 prior: str | Prior | None = None, prior_components: int | None = None,
                 image_shape: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name}: expected an nn.Module, got {type(module).__name__}")
        if not variational and beta is not None:
            raise InputError("model.beta: a deterministic (variational=False) model has no KL "
                             "term to weigh")
        # ModelSpec validates latent_dim, beta and sigma with the suite's error messages, and the
        # likelihood registry takes a spec.
        spec = ModelSpec(latent_dim=latent_dim, beta=beta, likelihood=likelihood, sigma=sigma)
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.variational = variational
        self.beta = 1.0 if beta is None else float(beta)
        self.likelihood = LIKELIHOODS.get(likelihood)(spec)
        self.pixel_likelihood = likelihood
        # An instance attribute shadows the class default, so one class serves both kinds.
        self.capabilities = frozenset({"encode", "variational", "sample", "decode"}
                                      if variational else {"encode", "sample", "decode"})
        if not variational:
            if prior is not None:
                raise InputError("model.prior: a deterministic (variational=False) model has "
                                 "no prior")
            self.sampling = "decoded from z ~ N(0, I); a deterministic encoder has no prior"
            return
        if isinstance(prior, Prior):
            self.prior = prior
        else:
            self.prior = build_prior(prior, prior_components,
                                     PriorSetting(latent_dim, image_shape=image_shape,
                                                  encode=self.encode))
        if not isinstance(self.prior, StandardNormal):
            self.sampling = f"decoded from z drawn from the prior ({self.prior.describe()})"

    @classmethod
    def from_spec(cls, spec: ModelSpec, image_shape: tuple[int, int, int]) -> ModuleVAE:
        """Build the model for ``spec`` and images of ``image_shape`` ``(C, H, W)``.

        Subclasses override this: build the encoder and decoder for ``image_shape``, read their
        own settings with :meth:`read_options`, and return
        ``cls(encoder, decoder, **cls.spec_settings(spec))``.

        Raises:
            InputError: always, on ``ModuleVAE`` itself, which has no modules of its own.
        """
        raise InputError(f"model.name: {cls.__name__} builds no modules of its own; subclass "
                         f"it and define from_spec(cls, spec, image_shape)")

    @staticmethod
    def spec_settings(spec: ModelSpec) -> dict[str, Any]:
        """The constructor arguments a suite's ``[model]`` section sets: ``latent_dim``,
        ``beta``, ``likelihood``, ``sigma``, and ``prior`` and ``prior_components`` where the
        suite sets them (``vamp`` also needs ``image_shape=image_shape``).

        Raises:
            InputError: ``model.beta_schedule`` is not ``constant`` (a plug-in has none).
        """
        if spec.beta_schedule != "constant":
            raise InputError(f"model.beta_schedule: ModuleVAE plug-ins use a constant beta, got "
                             f"{spec.beta_schedule!r}")
        settings = {"latent_dim": spec.latent_dim, "beta": spec.beta,
                    "likelihood": spec.likelihood, "sigma": spec.sigma}
        # Only when set: a plug-in whose own __init__ predates priors keeps working.
        settings.update({name: getattr(spec, name) for name in ("prior", "prior_components")
                         if getattr(spec, name) is not None})
        return settings

    @staticmethod
    def read_options(spec: ModelSpec, **defaults: Any) -> dict[str, Any]:
        """``spec.options`` over ``defaults``, each value checked against its default's type
        (an int is accepted for a float default; a ``None`` default accepts any value).

        Unknown keys are errors, as everywhere in a suite, so a typo in ``[model.options]``
        does not silently train the default.

        Raises:
            InputError: a key not in ``defaults`` or a value of another type, naming
                ``model.options.<key>``.
        """
        unknown = sorted(set(spec.options) - set(defaults))
        if unknown:
            allowed = ", ".join(sorted(defaults)) or "none"
            raise InputError(f"model.options.{unknown[0]}: unknown option; allowed: {allowed}")
        merged = dict(defaults)
        for key, value in spec.options.items():
            default = defaults[key]
            if isinstance(default, float) and isinstance(value, int) \
                    and not isinstance(value, bool):
                value = float(value)
            if default is not None and (type(value) is not type(default)):
                raise InputError(f"model.options.{key}: expected {type(default).__name__}, got "
                                 f"{value!r}")
            merged[key] = value
        return merged

    def encode(self, x: Tensor) -> Posterior:
        """μ and log σ² (the encoder's output split in two), or the deterministic code.

        Raises:
            ValueError: the encoder's output is not ``[N, k·latent_dim]`` (k = 2 or 1).
        """
        out = self.encoder(x)
        width = (2 if self.variational else 1) * self.latent_dim
        if out.dim() != 2 or out.shape[1] != width:
            raise ValueError(f"{type(self).__name__}: the encoder must output [N, {width}] "
                             f"({'2·' if self.variational else ''}latent_dim), got "
                             f"{list(out.shape)}")
        if not self.variational:
            return Posterior(mean=out)
        mean, logvar = out.chunk(2, dim=1)
        return Posterior(mean=mean, logvar=logvar)

    def decode(self, z: Tensor) -> Tensor:
        """Logits ``[N, C, H, W]`` of the pixel means for codes ``z`` ``[N, latent_dim]``."""
        return self.decoder(z)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draws of the prior (N(0, I) for a deterministic model, which has none)."""
        return prior_of(self).sample(n, generator).to(self.device)

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """−log p(x|z) per image, nats, summed over pixels."""
        return self.likelihood(logits, x)

    def loss(self, x: Tensor) -> LossTerms:
        """``recon + β·KL`` on batch ``x`` (``recon`` alone when not variational)."""
        return beta_vae_loss(self, x, self.beta)


def beta_vae_loss(model: LatentModel, x: Tensor, beta: float) -> LossTerms:
    """``recon + β·KL(q(z|x) ‖ p(z))`` on batch ``x`` with one reparameterised draw (p: the
    model's prior, :func:`~latentbench.models.priors.prior_of`), or
    ``recon`` at the code when ``model.encode`` gives no ``logvar`` (an autoencoder); both
    terms in the latentbench loss convention, averaged over the batch."""
    posterior = model.encode(x)
    if posterior.logvar is None:
        recon = model.reconstruction_nll(model.decode(posterior.mean), x).mean()
        return LossTerms(loss=recon, parts={"recon": recon})
    z = reparameterize(posterior.mean, posterior.logvar)
    recon = model.reconstruction_nll(model.decode(z), x).mean()
    kl = prior_of(model).kl(posterior.mean, posterior.logvar, z).mean()
    return LossTerms(loss=recon + beta * kl, parts={"recon": recon, "kl": kl})

