"""Priors p(z) over latent codes: a component of a VAE, with parameters that train with it.

A prior has :meth:`Prior.log_prob` and :meth:`Prior.sample`, and :meth:`Prior.kl` gives the KL
term of the loss for a diagonal-Gaussian posterior q(z|x) = N(μ, diag e^ℓ):

- ``normal``: N(0, I), the KL in closed form (the default; the VAE of Kingma & Welling);
- ``mog``: a mixture of K diagonal Gaussians with learned means, variances and weights;
- ``vamp``: the VampPrior (Tomczak & Welling 2018), p(z) = (1/K) Σ_k q(z | u_k), the encoder's
  posteriors at K learned pseudo-inputs u_k;
- ``flow``: N(0, I) pushed through a small RealNVP (Dinh et al. 2017) of affine couplings.

Every prior but ``normal`` has no closed-form KL, so the loss takes the one-sample Monte-Carlo
estimate KL ≈ log q(z|x) − log p(z) at the reparameterised z the reconstruction term also
decodes, and the evaluation's ``rate`` averages :data:`~latentbench.metrics.reconstruction`'s
stated number of draws per image (:meth:`Prior.kl_estimate`).

A suite picks one with ``model.prior`` (``latentbench list priors``); ``model.prior_components``
sets K of ``mog`` and ``vamp``. A plug-in prior is a :class:`Prior` subclass named as
``"package.module:Class"``, built with ``Class.build(setting)`` from a :class:`PriorSetting`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentbench.models.gaussian import LOG_2PI, kl_normal, log_normal
from latentbench.models.protocol import first_tensor, module_device
from latentbench.models.registry import InputError, Registry, check_int, import_attribute

PRIORS: Registry[type[Prior]] = Registry("prior", "model.prior")

#: The name ``model.prior`` takes when it is left out.
DEFAULT_PRIOR = "normal"

#: Codes per :meth:`Prior.log_prob` call of :meth:`Prior.kl_estimate`: a 50-component mixture
#: of 16-d codes then holds 26 MB at a time.
LOG_PROB_CODES = 8192


@dataclass(frozen=True)
class PriorSetting:
    """What a prior is built from.

    Attributes:
        latent_dim: size of the codes, d.
        components: ``model.prior_components``: K of a mixture or of the VampPrior; ``None``
            for the prior's default.
        image_shape: ``(C, H, W)`` of the images (the VampPrior's pseudo-inputs have it);
            ``None`` when the model does not know it.
        encode: the model's encoder, images → :class:`~latentbench.models.protocol.Posterior`
            (the VampPrior's components are its posteriors); ``None`` for none.
    """

    latent_dim: int
    components: int | None = None
    image_shape: tuple[int, int, int] | None = None
    encode: Callable[[Tensor], Any] | None = None


class Prior(nn.Module, ABC):
    r"""A distribution p(z) on :math:`\mathbb R^d` with a log-density and draws.

    Subclasses set :attr:`latent_dim`, implement :meth:`log_prob` and :meth:`sample`, and may
    override :meth:`kl` with a closed form (then :attr:`analytic_kl` is ``True``). Their
    parameters are the model's (the model holds the prior as a submodule), so one optimiser
    trains both.
    """

    latent_dim: int
    #: Whether :meth:`kl` is exact (closed form) rather than a one-sample Monte-Carlo estimate.
    analytic_kl: bool = False
    #: K when ``model.prior_components`` is unset; ``None``: the prior has no components.
    default_components: int | None = None
    #: One line for ``latentbench list priors``.
    summary: str = ""
    #: The ``model.prior`` name it was built from (set by :func:`build_prior`).
    registry_name: str = "custom"

    @classmethod
    def build(cls, setting: PriorSetting) -> Prior:
        """The prior for ``setting`` (default: ``cls(setting)``)."""
        return cls(setting)  # type: ignore[call-arg]

    @abstractmethod
    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) in nats for codes ``z`` ``[..., d]``: shape ``[...]``, differentiable in
        the prior's parameters and in ``z``."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws ``[n, d]`` on the prior's device (the noise drawn on the CPU from
        ``generator``, so a seed gives the same draws on every device); not differentiable."""

    def describe(self) -> str:
        """What the prior is, as results and metrics record it (``"mog, K=10"``)."""
        return type(self).__name__

    @property
    def device(self) -> torch.device:
        """Where the prior's parameters live; the CPU for a prior without any."""
        return module_device(self)

    def cast(self, z: Tensor) -> Tensor:
        """``z`` on the device and in the dtype of the prior's parameters (unchanged for a
        prior without any), for :meth:`log_prob` of codes computed elsewhere."""
        tensor = first_tensor(self)
        return z if tensor is None else z.to(device=tensor.device, dtype=tensor.dtype)

    def kl(self, mean: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
        r"""The KL term of the loss for q(z|x) = N(``mean``, diag e^``logvar``), per image.

        Default, the one-sample Monte-Carlo estimate at ``z`` drawn from q (reparameterised,
        so its gradient is the pathwise one):

        .. math:: \widehat{\mathrm{KL}} = \log q(z \mid x) - \log p(z)

        unbiased for KL(q ‖ p), summed over the latent dimensions.

        Args:
            mean, logvar: ``[N, d]`` posterior parameters.
            z: ``[N, d]`` a draw from the posterior.

        Returns:
            ``[N]`` nats.
        """
        return log_normal(z, mean, logvar).sum(-1) - self.log_prob(z)

    @torch.no_grad()
    def kl_estimate(self, mean: Tensor, logvar: Tensor, samples: int,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        r"""KL(q(z|x) ‖ p(z)) per image for the evaluation, with its Monte-Carlo variance.

        Exact (closed form) where the prior has one (variance ``None``); else the mean of
        ``samples`` draws :math:`z_s = \mu + \sigma \odot \varepsilon_s` of
        :math:`\log q(z_s|x) - \log p(z_s)`, with :math:`\log q = -\tfrac12 \sum_d
        (\varepsilon_d^2 + \ell_d + \log 2\pi)` taken from the noise, and the variance of that
        mean (sample variance / S). The noise is float64 from ``generator`` on the CPU.

        Args:
            mean, logvar: ``[N, d]`` posterior parameters (any device).
            samples: S ≥ 1 draws per image (ignored by a closed form).
            generator: CPU generator of the noise.

        Returns:
            ``(kl [N], variance [N] | None)``: a closed form in the inputs' dtype and device,
            an estimate in float64 on the CPU.
        """
        if self.analytic_kl:
            return self.kl(mean, logvar, mean), None
        mean64, logvar64 = mean.double().cpu(), logvar.double().cpu()
        eps = torch.randn(samples, *mean64.shape, dtype=torch.float64, generator=generator)
        z = mean64 + torch.exp(0.5 * logvar64) * eps
        log_q = -0.5 * (eps.square() + logvar64 + LOG_2PI).sum(-1)
        # log p in slices of LOG_PROB_CODES codes: a mixture's log_prob holds a [codes, K, d]
        # block, which for every draw of a train split at once would take gigabytes.
        step = max(1, LOG_PROB_CODES // samples)
        log_p = torch.cat([self.log_prob(self.cast(z[:, start:start + step])).double().cpu()
                           for start in range(0, z.shape[1], step)], dim=1)
        terms = log_q - log_p  # [S, N]
        variance = terms.var(0) / samples if samples > 1 else torch.full_like(terms[0], math.nan)
        return terms.mean(0), variance


def _draw_noise(n: int, d: int, generator: torch.Generator | None) -> Tensor:
    return torch.randn(n, d, generator=generator)


@PRIORS.register("normal")
class StandardNormal(Prior):
    """N(0, I): no parameters; KL in closed form (the default, results as before this option)."""

    analytic_kl = True
    summary = "N(0, I); KL in closed form (the default)"

    def __init__(self, setting: PriorSetting) -> None:
        super().__init__()
        self.latent_dim = setting.latent_dim

    def describe(self) -> str:
        return "normal"

    def log_prob(self, z: Tensor) -> Tensor:
        return log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        # Exactly the draws of the models before priors were components: randn on the CPU.
        return _draw_noise(n, self.latent_dim, generator)

    def kl(self, mean: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
        """The closed form of :func:`~latentbench.models.gaussian.kl_normal` (``z`` unused)."""
        return kl_normal(mean, logvar)


def _mixture_log_prob(z: Tensor, means: Tensor, logvars: Tensor, log_weights: Tensor) -> Tensor:
    r""":math:`\log \sum_k \pi_k \mathcal N(z; m_k, \operatorname{diag} e^{s_k})` for ``z``
    ``[..., d]`` and K components ``[K, d]``, ``log_weights`` ``[K]`` (log π)."""
    per_component = log_normal(z.unsqueeze(-2), means, logvars).sum(-1)  # [..., K]
    return torch.logsumexp(per_component + log_weights, dim=-1)


def _mixture_draws(n: int, means: Tensor, logvars: Tensor, weights: Tensor,
                   generator: torch.Generator | None) -> Tensor:
    """``n`` draws of a diagonal mixture: the component, then its noise, from ``generator``."""
    index = torch.multinomial(weights.detach().double().cpu(), n, replacement=True,
                              generator=generator)
    eps = _draw_noise(n, means.shape[1], generator).to(means)
    index = index.to(means.device)
    return means[index] + torch.exp(0.5 * logvars[index]) * eps


def _components(setting: PriorSetting, name: str) -> int:
    default = PRIORS.get(name).default_components
    return check_int(default if setting.components is None else setting.components,
                     "model.prior_components", minimum=1)


@PRIORS.register("mog")
class MixturePrior(Prior):
    r"""A mixture of K diagonal Gaussians, :math:`\sum_k \pi_k \mathcal N(m_k, \operatorname{diag}
    e^{s_k})`, with learned means, log-variances and weights.

    Initialised with means drawn from N(0, I) (the model's seed), unit variances and equal
    weights; π = softmax of learned logits.
    """

    default_components = 10
    summary = "mixture of K diagonal Gaussians, learned means, variances and weights (K=10)"

    def __init__(self, setting: PriorSetting) -> None:
        super().__init__()
        count = _components(setting, "mog")
        self.latent_dim = setting.latent_dim
        self.means = nn.Parameter(torch.randn(count, setting.latent_dim))
        self.logvars = nn.Parameter(torch.zeros(count, setting.latent_dim))
        self.logits = nn.Parameter(torch.zeros(count))

    def describe(self) -> str:
        return f"mog, K={len(self.logits)}"

    def log_prob(self, z: Tensor) -> Tensor:
        return _mixture_log_prob(z, self.means, self.logvars, F.log_softmax(self.logits, 0))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return _mixture_draws(n, self.means, self.logvars, F.softmax(self.logits, 0), generator)


@PRIORS.register("vamp")
class VampPrior(Prior):
    r"""The VampPrior (Tomczak & Welling 2018): :math:`p(z) = \frac1K \sum_k q(z \mid u_k)`.

    The K pseudo-inputs :math:`u_k` are images, learned with the model; each component is the
    encoder's diagonal-Gaussian posterior at one of them. As in the paper, a pseudo-input is a
    parameter clipped to [0, 1] (hardtanh), initialised at 0.05 + 0.01·N(0, 1) (their MNIST
    setting); the components are recomputed from the current encoder at every call.
    """

    default_components = 50
    summary = "VampPrior: mean of the encoder's posteriors at K learned pseudo-inputs (K=50)"

    def __init__(self, setting: PriorSetting) -> None:
        super().__init__()
        count = _components(setting, "vamp")
        if setting.image_shape is None or setting.encode is None:
            raise InputError("model.prior: vamp needs the model's encoder and image shape; "
                             "this model gives none")
        self.latent_dim = setting.latent_dim
        self.pseudo_inputs = nn.Parameter(0.05 + 0.01 * torch.randn(count, *setting.image_shape))
        # A callable, not a submodule: the encoder belongs to the model (one copy of its
        # weights in the state_dict).
        self._encode = setting.encode

    def describe(self) -> str:
        return f"vamp, K={len(self.pseudo_inputs)}"

    def component_posteriors(self) -> tuple[Tensor, Tensor]:
        """The means and log-variances ``[K, d]`` of q(z | u_k) at the clipped pseudo-inputs."""
        posterior = self._encode(F.hardtanh(self.pseudo_inputs, 0.0, 1.0))
        return posterior.mean.flatten(1), posterior.logvar.flatten(1)

    def log_prob(self, z: Tensor) -> Tensor:
        means, logvars = self.component_posteriors()
        log_weights = torch.full((len(means),), -math.log(len(means)), dtype=z.dtype,
                                 device=z.device)
        return _mixture_log_prob(z, means, logvars, log_weights)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        means, logvars = self.component_posteriors()
        weights = torch.full((len(means),), 1.0 / len(means))
        return _mixture_draws(n, means, logvars, weights, generator)


class AffineCoupling(nn.Module):
    r"""One RealNVP coupling: the coordinates where ``mask`` is 1 pass unchanged and set a
    scale and shift of the others, :math:`u = z \odot e^{s(z_m)} + t(z_m)` on them.

    The log-scale is bounded by tanh (each layer scales by at most e), which keeps the flow
    stable without a learning-rate warm-up; the last layer starts at zero, so a new coupling
    is the identity.
    """

    def __init__(self, mask: Tensor, hidden: int) -> None:
        super().__init__()
        dim = len(mask)
        self.register_buffer("mask", mask)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 2 * dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _scale_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        scale, shift = self.net(kept).chunk(2, dim=-1)
        free = 1.0 - self.mask
        return torch.tanh(scale) * free, shift * free

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(u, log |det ∂u/∂z|)`` for ``z`` ``[..., d]``."""
        scale, shift = self._scale_shift(z * self.mask)
        return z * torch.exp(scale) + shift, scale.sum(-1)

    def inverse(self, u: Tensor) -> Tensor:
        """``z`` with ``forward(z)[0] == u`` (the kept coordinates are ``u``'s own)."""
        scale, shift = self._scale_shift(u * self.mask)
        return (u - shift) * torch.exp(-scale)


@PRIORS.register("flow")
class FlowPrior(Prior):
    r"""N(0, I) through a RealNVP: :math:`\log p(z) = \log \mathcal N(f(z); 0, I) + \log
    |\det \partial f / \partial z|`, with f four affine couplings (:class:`AffineCoupling`,
    masks alternating over even and odd coordinates, 64 hidden units); draws are
    :math:`f^{-1}(\varepsilon)`. It starts as N(0, I) exactly (every coupling is the identity).
    """

    summary = "N(0, I) through a RealNVP of 4 affine couplings (64 hidden units)"
    layers = 4
    hidden = 64

    def __init__(self, setting: PriorSetting) -> None:
        super().__init__()
        if setting.latent_dim < 2:
            raise InputError(f"model.prior: flow couples half the latent coordinates to the "
                             f"other half, so it needs latent_dim >= 2, got {setting.latent_dim}")
        self.latent_dim = setting.latent_dim
        parity = torch.arange(setting.latent_dim) % 2
        self.couplings = nn.ModuleList(
            AffineCoupling((parity == layer % 2).float(), self.hidden)
            for layer in range(self.layers))

    def describe(self) -> str:
        return f"flow, {self.layers} couplings"

    def log_prob(self, z: Tensor) -> Tensor:
        log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for coupling in self.couplings:
            z, step = coupling(z)
            log_det = log_det + step
        return log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1) + log_det

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        u = _draw_noise(n, self.latent_dim, generator).to(self.device)
        for coupling in reversed(self.couplings):
            u = coupling.inverse(u)
        return u


def prior_class(name: str | None) -> type[Prior]:
    """The class ``model.prior`` names: registered, or a ``"package.module:Class"`` plug-in.

    Raises:
        InputError: an unknown name, an unimportable plug-in or one that is no :class:`Prior`.
    """
    name = DEFAULT_PRIOR if name is None else name
    if ":" in name:
        cls = import_attribute(name, "model.prior")
        if not (isinstance(cls, type) and issubclass(cls, Prior)):
            raise InputError(f"model.prior: {name!r} is not a latentbench.models.Prior "
                             f"subclass")
        return cls
    return PRIORS.get(name)


def check_prior_spec(name: str | None, components: int | None) -> None:
    """Refuse ``model.prior_components`` for a prior without components.

    Raises:
        InputError: unknown prior, or components for one that has none.
    """
    cls = prior_class(name)
    if components is not None and cls.default_components is None:
        takers = [n for n, c in PRIORS.items() if c.default_components is not None]
        raise InputError(f"model.prior_components: prior {name or DEFAULT_PRIOR!r} has no "
                         f"components; priors that do: {', '.join(takers)}")


def build_prior(name: str | None, components: int | None, setting: PriorSetting) -> Prior:
    """The prior ``model.prior = name`` with ``model.prior_components = components``.

    Args:
        name: a registered prior or ``"package.module:Class"``; ``None`` means ``normal``.
        components: K, or ``None`` for the prior's default.
        setting: the model's latent size, image shape and encoder (``components`` replaced).

    Raises:
        InputError: see :func:`check_prior_spec`, and a prior the model cannot host.
    """
    check_prior_spec(name, components)
    cls = prior_class(name)
    count = cls.default_components if components is None else components
    prior = cls.build(PriorSetting(setting.latent_dim, count, setting.image_shape,
                                   setting.encode))
    prior.registry_name = DEFAULT_PRIOR if name is None else name
    return prior


def prior_label(name: str | None, components: int | None) -> str | None:
    """How results name a model's prior without building it: ``None`` for ``normal`` (the
    label of every model before priors existed), else ``"mog, K=10"``, ``"flow"``, or the
    plug-in's name."""
    if name in (None, DEFAULT_PRIOR):
        return None
    if ":" in name:
        return name
    cls = PRIORS.get(name)
    count = cls.default_components if components is None else components
    return name if count is None else f"{name}, K={count}"


def prior_of(model: nn.Module) -> Prior:
    """The model's prior: its ``prior`` attribute, else N(0, I) (a model from before priors
    were components, a pythae model: their KL and IWAE weights assume it)."""
    prior = getattr(model, "prior", None)
    if isinstance(prior, Prior):
        return prior
    return StandardNormal(PriorSetting(int(model.latent_dim)))


def describe_prior(model: nn.Module) -> str:
    """Which prior a model's metrics used, as their details record it: the prior's
    :meth:`Prior.describe`, ``"normal"`` for a Gaussian-posterior model without a prior
    component (its KL assumes N(0, I)), else ``"none (<how it samples>)"``."""
    prior = getattr(model, "prior", None)
    if isinstance(prior, Prior):
        return prior.describe()
    if "variational" in getattr(model, "capabilities", ()):
        return DEFAULT_PRIOR
    return f"none ({getattr(model, 'sampling', 'no sampling distribution')})"
