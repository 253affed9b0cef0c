"""β-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in Variational
Autoencoders"): the VAE's KL split into index-code mutual information, total correlation and
dimension-wise KL, each with its own weight and each estimated on the minibatch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from latentbench.models.gaussian import kl_normal, log_normal, reparameterize
from latentbench.models.protocol import LossTerms, ModelSpec
from latentbench.models.registry import check_int
from latentbench.models.vae import VAE
from latentbench.models.zoo import MODELS

#: Chen et al.'s settings for dSprites: α = γ = 1 (only the total correlation reweighted) and
#: β = 6, the value their code's README trains with (``vae_quant.py --dataset shapes --beta 6
#: --tcvae``).
DEFAULT_ALPHA = 1.0
DEFAULT_BETA = 6.0
DEFAULT_GAMMA = 1.0

@dataclass(frozen=True)
class MWSEstimate:
    r"""Per-sample log-densities of a batch's codes, with the decomposition of the KL they give.

    Attributes:
        log_qz_x: :math:`\log q(z_i \mid x_i)`, shape ``[M]``.
        log_qz: the estimate of :math:`\log q(z_i)`, shape ``[M]``.
        log_prod_qz: the estimate of :math:`\sum_d \log q(z_{id})`, shape ``[M]``.
        log_pz: :math:`\log p(z_i)` under the prior N(0, I), shape ``[M]``.
    """

    log_qz_x: Tensor
    log_qz: Tensor
    log_prod_qz: Tensor
    log_pz: Tensor

    @property
    def mi(self) -> Tensor:
        """Index-code mutual information, per sample: log q(z|x) − log q(z)."""
        return self.log_qz_x - self.log_qz

    @property
    def tc(self) -> Tensor:
        """Total correlation, per sample: log q(z) − Σ_d log q(z_d)."""
        return self.log_qz - self.log_prod_qz

    @property
    def dim_kl(self) -> Tensor:
        """Dimension-wise KL, per sample: Σ_d log q(z_d) − log p(z)."""
        return self.log_prod_qz - self.log_pz


def mws_estimate(z: Tensor, mu: Tensor, logvar: Tensor, n_data: int) -> MWSEstimate:
    r"""Minibatch-weighted sampling (MWS, Chen et al. 2018, section 4.1) of the log-densities
    that decompose the KL.

    For codes :math:`z_i \sim q(z \mid x_i)` of a batch of :math:`M` images drawn from a data set
    of :math:`N`:

    .. math::
        \log q(z_i) &\approx \operatorname{logsumexp}_j \log q(z_i \mid x_j) - \log(NM), \\
        \log \textstyle\prod_d q(z_{id}) &\approx \sum_d \big[\operatorname{logsumexp}_j
            \log q(z_{id} \mid x_j) - \log(NM)\big],

    from which (averaged over the batch)

    .. math::
        \mathrm{MI} = \overline{\log q(z \mid x) - \log q(z)},\quad
        \mathrm{TC} = \overline{\log q(z) - \textstyle\sum_d \log q(z_d)},\quad
        \mathrm{dimKL} = \overline{\textstyle\sum_d \log q(z_d) - \log p(z)},

    and :math:`\mathrm{MI} + \mathrm{TC} + \mathrm{dimKL} = \overline{\log q(z \mid x)
    - \log p(z)}`, a one-sample Monte-Carlo estimate of KL(q(z|x) ‖ p(z)), whatever the
    estimate of :math:`q(z)`.

    :math:`N` enters only through the constant :math:`-\log N` of each log-density, so no
    gradient depends on it; it does set the values. Against the batch's own aggregate posterior
    :math:`q_B(z) = \frac1M \sum_j q(z \mid x_j)`, the MWS terms are exactly
    :math:`\mathrm{MI}_B + \log N`, :math:`\mathrm{TC}_B + (D - 1)\log N` and
    :math:`\mathrm{dimKL}_B - D \log N`: the logged TC of a model with independent codes is
    about :math:`(D - 1)\log N`, not 0 (the offset disentanglement_lib's
    ``total_correlation`` drops, and which Chen et al.'s and pythae's MWS code keep).

    Args:
        z: the codes, ``[M, D]``, one drawn from each posterior.
        mu: posterior means, ``[M, D]``.
        logvar: posterior log-variances, ``[M, D]``.
        n_data: :math:`N`, the size of the data set the batch is drawn from.

    Returns:
        The per-sample log-densities (:class:`MWSEstimate`), in at least float32 (a half-
        precision batch is promoted: the logsumexp over the batch needs the range).

    Raises:
        ValueError: the shapes differ or are not ``[M, D]``.
        InputError: ``n_data`` is not a positive integer.
    """
    if not (z.shape == mu.shape == logvar.shape) or z.dim() != 2:
        raise ValueError(f"z, mu and logvar must share one [M, D] shape, got {tuple(z.shape)}, "
                         f"{tuple(mu.shape)} and {tuple(logvar.shape)}")
    n_data = check_int(n_data, "n_data", minimum=1)
    dtype = torch.promote_types(z.dtype, torch.float32)
    z, mu, logvar = z.to(dtype), mu.to(dtype), logvar.to(dtype)
    # pairs[i, j, d] = log q(z_id | x_j): every code under every posterior of the batch.
    pairs = log_normal(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    log_nm = math.log(n_data) + math.log(len(z))
    return MWSEstimate(
        log_qz_x=pairs.diagonal(dim1=0, dim2=1).sum(dim=0),  # the [D, M] diagonal, j = i
        log_qz=torch.logsumexp(pairs.sum(dim=2), dim=1) - log_nm,
        log_prod_qz=(torch.logsumexp(pairs, dim=1) - log_nm).sum(dim=1),
        log_pz=log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1),
    )


@MODELS.register("btcvae")
class BetaTCVAE(VAE):
    r"""β-TCVAE: the VAE with its KL decomposed and the total correlation weighted apart.

    .. math::
        \mathcal L(x) = \underbrace{-\log p(x \mid z)}_{\text{recon}}
                        + \alpha\,\mathrm{MI} + \beta_t\,\mathrm{TC} + \gamma\,\mathrm{dimKL}

    with the three terms of :func:`mws_estimate` on the batch (one code per image,
    :math:`z = \mu + \sigma\odot\varepsilon`), reconstruction summed over pixels and everything
    averaged over the batch. With α = β = γ = 1 this is the VAE's loss with a Monte-Carlo KL.
    Defaults α = γ = 1, β = 6 (Chen et al.'s dSprites setting); ``model.alpha``,
    ``model.beta`` and ``model.gamma`` override them. :math:`\beta_t` follows
    ``model.beta_schedule`` (a warm-up of the TC weight alone is Chen et al.'s
    ``--beta-anneal``).

    The estimate needs :math:`N`, the training-set size, which the trainer hands over through
    :meth:`prepare_training`; it is extra state (checkpointed, like the step counter). A
    training-mode :meth:`loss` without it raises. In eval mode, :meth:`loss` uses that
    :math:`N` when it is known (values on the training loss's scale) and otherwise takes the
    batch as the data set, :math:`N = M` (as pythae does when given no data-set size).

    Logged parts: ``recon``; ``kl``, the analytic KL (as the VAE logs it, comparable across the
    family); ``mi``, ``tc``, ``dim_kl`` (MWS values, offset by multiples of log N, see
    :func:`mws_estimate`); ``beta``, the TC weight of the step.
    """

    summary = "beta-TCVAE: loss = recon + alpha * MI + beta * TC + gamma * dim-KL (MWS)"
    spec_fields = frozenset({"alpha", "gamma"})
    default_beta = DEFAULT_BETA

    def __init__(self, spec: ModelSpec, image_shape: tuple[int, int, int]) -> None:
        super().__init__(spec, image_shape)
        self.alpha = DEFAULT_ALPHA if spec.alpha is None else float(spec.alpha)
        self.gamma = DEFAULT_GAMMA if spec.gamma is None else float(spec.gamma)
        self.n_data: int | None = None

    def get_extra_state(self) -> dict[str, int | None]:
        return {**super().get_extra_state(), "n_data": self.n_data}

    def set_extra_state(self, state: dict[str, int | None]) -> None:
        super().set_extra_state(state)
        n_data = state.get("n_data")
        self.n_data = None if n_data is None else int(n_data)

    def prepare_training(self, n_train: int) -> None:
        """Store ``n_train``, the :math:`N` of the minibatch-weighted sampling."""
        self.n_data = check_int(n_train, "n_train", minimum=1)

    def loss(self, x: Tensor) -> LossTerms:
        """The β-TCVAE objective on batch ``x`` (see the class docstring).

        Raises:
            RuntimeError: in training mode before :meth:`prepare_training` gave :math:`N`.
        """
        n_data = self.n_data
        if n_data is None:
            if self.training:
                raise RuntimeError("btcvae: the training-set size N of the minibatch-weighted "
                                   "sampling is unknown; call model.prepare_training(N) before "
                                   "training (benchmarks.train.train does)")
            n_data = len(x)
        posterior = self.encode(x)
        z = reparameterize(posterior.mean, posterior.logvar)
        recon = self.reconstruction_nll(self.decode_posterior(z, posterior), x).mean()
        kl = kl_normal(posterior.mean, posterior.logvar).mean()
        estimate = mws_estimate(z, posterior.mean, posterior.logvar, n_data)
        mi, tc, dim_kl = estimate.mi.mean(), estimate.tc.mean(), estimate.dim_kl.mean()
        beta = self.current_beta()
        if self.training:
            self.step += 1
        loss = recon + self.alpha * mi + beta * tc + self.gamma * dim_kl
        return LossTerms(loss=loss, parts={"recon": recon, "kl": kl, "mi": mi, "tc": tc,
                                           "dim_kl": dim_kl, "beta": recon.new_tensor(beta)})

