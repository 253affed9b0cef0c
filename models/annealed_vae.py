"""The controlled-capacity VAE of Burgess et al. 2018 ("Understanding disentangling in β-VAE"),
as disentanglement_lib's ``AnnealedVAE``: the KL is held near a target C_t that rises linearly
during training, instead of being weighed by β."""

from __future__ import annotations

from torch import Tensor

from latentbench.models.gaussian import reparameterize
from latentbench.models.protocol import LossTerms, ModelSpec
from latentbench.models.registry import InputError, check_int, check_number
from latentbench.models.vae import VAE
from latentbench.models.zoo import MODELS

#: disentanglement_lib's unsupervised study (``config/unsupervised_study_v1/sweep.py``) fixes
#: γ = 1000 and T = 100,000 steps (``iteration_threshold``) and sweeps C_max over {5, 10, 25,
#: 50, 75, 100} nats, of which the default C_max = 25 is one. All three belong to its
#: 300,000-step runs: in a run of a few thousand steps C_t stays near 0 under the default T,
#: and γ = 1000 holds the KL there (set ``model.capacity_steps`` to about the run's steps).
DEFAULT_GAMMA = 1000.0
DEFAULT_CAPACITY = 25.0
DEFAULT_CAPACITY_STEPS = 100_000


def annealed_capacity(capacity: float, steps: int, step: int) -> float:
    r"""The target KL at optimiser step ``step`` (0-based):
    :math:`C_t = \min\big(C_{\max},\; C_{\max}\, t / T\big)`.

    It starts at 0, rises linearly and stays at :math:`C_{\max}` from step :math:`T` on
    (disentanglement_lib's ``anneal``, evaluated at the global step before its update).

    Args:
        capacity: :math:`C_{\max}` in nats, ≥ 0.
        steps: :math:`T`, a positive integer.
        step: :math:`t`, a non-negative integer.

    Raises:
        InputError: an argument out of its range, naming it.
    """
    capacity = check_number(capacity, "capacity", minimum=0)
    steps = check_int(steps, "capacity_steps", minimum=1)
    step = check_int(step, "step", minimum=0)
    return min(capacity, capacity * step / steps)


def capacity_penalty(kl: Tensor, capacity: float, gamma: float) -> Tensor:
    r""":math:`\gamma\,|\mathrm{KL} - C|`, the regulariser of Burgess et al.'s eq. 8.

    ``kl`` is the batch's mean KL, as in disentanglement_lib (the penalty of the mean, not the
    mean of per-image penalties, which by Jensen's inequality is larger wherever the batch's
    KLs straddle C). Its minimum, 0, is at KL = C, with slope ±γ on either side.
    """
    return gamma * (kl - capacity).abs()


@MODELS.register("annealed-vae")
class AnnealedVAE(VAE):
    r"""Gaussian-posterior VAE whose KL is pulled to a linearly rising capacity.

    .. math::
        \mathcal L(x) = \underbrace{-\log p(x \mid z)}_{\text{recon}}
            + \gamma\,\big|\mathrm{KL}\big(q(z \mid x) \,\|\, \mathcal N(0, I)\big) - C_t\big|,
        \qquad C_t = \min\big(C_{\max},\; C_{\max}\, t / T\big)

    with the reconstruction summed over pixels and the analytic KL summed over latent
    dimensions, both averaged over the batch before the absolute value (disentanglement_lib's
    ``AnnealedVAE``). ``model.gamma`` (default 1000), ``model.capacity`` (C_max, default 25
    nats) and ``model.capacity_steps`` (T, default 100,000 optimiser steps) set it; see
    :data:`DEFAULT_GAMMA` for where the defaults come from. There is no β: ``model.beta`` and a
    β schedule are refused. The step counter t is the VAE's, checkpointed as extra state.

    Logged parts: ``recon``, ``kl``, ``capacity`` (C_t of the step).
    """

    summary = "AnnealedVAE (Burgess et al.): loss = recon + gamma * |KL - C|, C rising linearly"
    spec_fields = frozenset({"gamma", "capacity", "capacity_steps"})
    default_beta = None

    def __init__(self, spec: ModelSpec, image_shape: tuple[int, int, int]) -> None:
        super().__init__(spec, image_shape)
        self.gamma = DEFAULT_GAMMA if spec.gamma is None else float(spec.gamma)
        self.capacity = DEFAULT_CAPACITY if spec.capacity is None else float(spec.capacity)
        self.capacity_steps = (DEFAULT_CAPACITY_STEPS if spec.capacity_steps is None
                               else int(spec.capacity_steps))

    @classmethod
    def from_spec(cls, spec: ModelSpec, image_shape: tuple[int, int, int]) -> AnnealedVAE:
        """Build from a suite's model section.

        Raises:
            InputError: ``model.beta`` is set or ``model.beta_schedule`` is not ``constant``
                (the capacity takes the place of both).
        """
        if spec.beta is not None:
            raise InputError("model.beta: annealed-vae has no beta; its KL is held near the "
                             "capacity C_t by model.gamma")
        if spec.beta_schedule != "constant":
            raise InputError(f"model.beta_schedule: annealed-vae has no beta to schedule (its "
                             f"capacity rises over model.capacity_steps), got "
                             f"{spec.beta_schedule!r}")
        return cls(spec, image_shape)

    def current_capacity(self) -> float:
        """C_t of the next training step."""
        return annealed_capacity(self.capacity, self.capacity_steps, self.step)

    def loss(self, x: Tensor) -> LossTerms:
        posterior = self.encode(x)
        z = reparameterize(posterior.mean, posterior.logvar)
        recon = self.reconstruction_nll(self.decode_posterior(z, posterior), x).mean()
        kl = self.prior.kl(posterior.mean, posterior.logvar, z).mean()
        capacity = self.current_capacity()
        if self.training:
            self.step += 1
        return LossTerms(loss=recon + capacity_penalty(kl, capacity, self.gamma),
                         parts={"recon": recon, "kl": kl,
                                "capacity": recon.new_tensor(capacity)})
