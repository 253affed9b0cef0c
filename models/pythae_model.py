"""``pythae``: a model trained with pythae (Chadebec et al. 2022), scored as it is.

``model.options.path`` names the folder pythae's ``model.save(dir)`` writes (or its trainer's
``final_model``): ``model_config.json`` and ``model.pt`` (plus ``encoder.pkl``/``decoder.pkl``
for custom networks). It is loaded with pythae's ``AutoModel.load_from_folder`` and wrapped in
the latentbench protocol:

- encode: pythae's encoder output ``embedding`` (the posterior mean, or the code of a
  deterministic model) and ``log_covariance`` (log σ² of a diagonal Gaussian posterior);
- decode: pythae's decoder output ``reconstruction``, pixel probabilities in [0, 1], turned
  into logits ``log p − log(1 − p)`` in float64 with both logs floored at −100 (the floor of
  ``F.binary_cross_entropy``, which pythae's ``bce`` loss uses), so that the Bernoulli
  likelihood here equals pythae's; a decoder whose output leaves [0, 1] is refused;
- likelihood: pythae's ``reconstruction_loss``: ``bce`` → ``bernoulli``; ``mse`` (pythae's
  ½‖x − x̂‖²) → ``gaussian`` with σ = 1, the density whose −log is that plus a constant;
- reconstructions and samples are pythae's decoder outputs themselves, not a round trip
  through the logits.

Supported: the pythae models whose posterior is a diagonal Gaussian under the prior N(0, I)
(:data:`VARIATIONAL`) and the deterministic autoencoders (:data:`DETERMINISTIC`, which sample,
like latentbench's ``ae``, from a Gaussian fitted to the training codes). Others — a VampPrior,
flows in the posterior, hyperspherical or hyperbolic latents, VQ codes, an MS-SSIM loss — would
make the rate, the ELBO or the likelihood wrong, and are refused with the list of these.
Installed by the optional extra ``latentbench[pythae]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from latentbench.models.autoencoder import fit_gaussian
from latentbench.models.custom import beta_vae_loss
from latentbench.models.likelihoods import LIKELIHOODS
from latentbench.models.protocol import LatentModel, LossTerms, ModelSpec, Posterior
from latentbench.models.registry import InputError
from latentbench.models.zoo import MODELS

__all__ = ["DETERMINISTIC", "VARIATIONAL", "PythaeModel", "probabilities_to_logits"]

#: pythae models with a diagonal Gaussian posterior and the prior N(0, I).
VARIATIONAL = ("VAE", "BetaVAE", "DisentangledBetaVAE", "BetaTCVAE", "FactorVAE", "IWAE",
               "MIWAE", "PIWAE", "CIWAE", "INFOVAE_MMD")
#: pythae autoencoders with a deterministic code.
DETERMINISTIC = ("AE", "RAE_L2", "RAE_GP", "WAE_MMD")
#: pythae's ``reconstruction_loss`` → the latentbench likelihood and its σ.
LIKELIHOOD_OF_LOSS = {"bce": ("bernoulli", 0.5**0.5), "mse": ("gaussian", 1.0)}
_FIELD = "model.options.path"
#: The floor of log p and log(1 − p): torch's binary_cross_entropy clamps its logs there.
LOG_FLOOR = -100.0


def probabilities_to_logits(p: Tensor) -> Tensor:
    """``log p − log(1 − p)`` for pixel probabilities ``p`` in [0, 1], computed in float64
    with each log floored at −100 (as ``F.binary_cross_entropy`` does) and returned in
    ``p``'s dtype: finite at 0 and 1, and ``sigmoid`` of it gives ``p`` back to float32
    rounding."""
    q = p.double()
    logits = torch.log(q).clamp(min=LOG_FLOOR) - torch.log1p(-q).clamp(min=LOG_FLOOR)
    return logits.to(p.dtype)


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "model_config.json"
    if not path.is_file():
        raise InputError(f"{_FIELD}: {folder} is not a folder written by pythae's model.save() "
                         f"(no model_config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{_FIELD}: cannot read {path} ({err})") from None
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise InputError(f"{_FIELD}: {path} has no model name")
    return config


def _reconstruction_loss(config: dict[str, Any]) -> str:
    """pythae's ``reconstruction_loss`` (its default ``mse``) if it has a likelihood here."""
    loss = config.get("reconstruction_loss", "mse")
    if loss not in LIKELIHOOD_OF_LOSS:
        raise InputError(f"{_FIELD}: pythae reconstruction_loss {loss!r} has no pixel "
                         f"likelihood here; supported: {', '.join(LIKELIHOOD_OF_LOSS)}")
    return loss


def _model_name(config: dict[str, Any]) -> str:
    return config["name"].removesuffix("Config")


@MODELS.register("pythae")
class PythaeModel(LatentModel):
    """A pythae model loaded from its folder (``model.options.path``), scored as loaded.

    See the module docstring for the protocol mapping. ``train.epochs`` must be 0.

    Args:
        net: the loaded pythae model (a ``pythae.models.BaseAE``).
        config: its ``model_config.json``.

    Raises:
        InputError: the pythae package is missing, the folder is not pythae's, the model is not
            supported, its input size is not the dataset's, its reconstruction loss has no
            likelihood here, or its decoder's output leaves [0, 1].
    """

    summary = "a model trained with pythae, loaded from its folder (options.path)"
    trained_here = False
    file_options = ("path",)

    def __init__(self, net: nn.Module, config: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        self.model_name = _model_name(config)
        self.latent_dim = int(config["latent_dim"])
        self.variational = self.model_name in VARIATIONAL
        loss = _reconstruction_loss(config)
        self.pixel_likelihood, sigma = LIKELIHOOD_OF_LOSS[loss]
        self.likelihood = LIKELIHOODS.get(self.pixel_likelihood)(
            ModelSpec(likelihood=self.pixel_likelihood, sigma=sigma))
        self.beta = float(config.get("beta", 1.0))
        self.capabilities = frozenset({"encode", "sample", "decode"}
                                      | ({"variational"} if self.variational else set()))
        if self.variational:
            self.sampling = f"decoded from z ~ N(0, I) by the pythae {self.model_name}"
        else:
            self.sampling = (f"decoded from z drawn from a Gaussian fitted to the training codes "
                             f"(pythae {self.model_name}: no prior)")
            self.register_buffer("code_mean", torch.zeros(self.latent_dim))
            self.register_buffer("code_scale_tril", torch.eye(self.latent_dim))

    @classmethod
    def identity(cls, spec: ModelSpec) -> dict[str, Any]:
        """``model`` ``pythae:<its class>``, ``decoder`` ``pythae``, its latent size and β."""
        config = _read_config(Path(spec.options.get("path", "")))
        name = _model_name(config)
        beta = float(config.get("beta", 1.0)) if name in VARIATIONAL else None
        return {"model": f"pythae:{name}", "decoder": "pythae",
                "latent_dim": config.get("latent_dim"), "beta": beta}

    @classmethod
    def from_spec(cls, spec: ModelSpec, image_shape: tuple[int, int, int]) -> PythaeModel:
        unknown = sorted(set(spec.options) - {"path"})
        if unknown:
            raise InputError(f"model.options.{unknown[0]}: unknown option; allowed: path")
        if not isinstance(spec.options.get("path"), str):
            raise InputError(f"{_FIELD}: give the folder written by pythae's model.save()")
        folder = Path(spec.options["path"])
        config = _read_config(folder)
        name = _model_name(config)
        if name not in VARIATIONAL + DETERMINISTIC:
            raise InputError(f"{_FIELD}: pythae model {name!r} is not supported (its prior, "
                             f"posterior or loss does not fit the protocol); supported: "
                             f"{', '.join(VARIATIONAL + DETERMINISTIC)}")
        _reconstruction_loss(config)
        if tuple(config.get("input_dim") or ()) != tuple(image_shape):
            raise InputError(f"{_FIELD}: the pythae model takes inputs {config.get('input_dim')}"
                             f", the dataset's images are {list(image_shape)}")
        try:
            from pythae.models import AutoModel
        except ImportError:
            raise InputError("model.name: 'pythae' needs the pythae package: "
                             "pip install 'latentbench[pythae]'") from None
        try:
            net = AutoModel.load_from_folder(str(folder))
        except Exception as err:  # pythae raises FileNotFoundError, pickle and torch errors
            raise InputError(f"{_FIELD}: pythae cannot load {folder} ({type(err).__name__}: "
                             f"{' '.join(str(err).split())[:160]})") from None
        model = cls(net.eval(), config)
        with torch.no_grad():  # refuse a decoder that does not give probabilities, up front
            model.decode(torch.randn(8, model.latent_dim, generator=torch.Generator()
                                     .manual_seed(0)))
        return model

    def encode(self, x: Tensor) -> Posterior:
        """pythae's ``embedding`` and, for a variational model, ``log_covariance``."""
        out = self.net.encoder(x)
        return Posterior(mean=out["embedding"],
                         logvar=out["log_covariance"] if self.variational else None)

    def probabilities(self, z: Tensor) -> Tensor:
        """pythae's decoder output for codes ``z``: pixel probabilities ``[N, C, H, W]``.

        Raises:
            ValueError: the output leaves [0, 1] (a decoder without a final sigmoid).
        """
        p = self.net.decoder(z)["reconstruction"]
        low, high = p.min().item(), p.max().item()
        if low < 0 or high > 1:
            raise InputError(f"{_FIELD}: the pythae decoder's output lies in [{low:.3g}, "
                             f"{high:.3g}], not in [0, 1]: latentbench scores decoders of pixel "
                             f"probabilities (end the decoder with a sigmoid)")
        return p

    def decode(self, z: Tensor) -> Tensor:
        """Logits of pythae's pixel probabilities (:func:`probabilities_to_logits`)."""
        return probabilities_to_logits(self.probabilities(z))

    def reconstruct(self, x: Tensor) -> Tensor:
        """pythae's decoder output at the posterior mean (the code, for an autoencoder)."""
        return self.probabilities(self.encode(x).mean)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """N(0, I) for a variational model; the fitted Gaussian for an autoencoder."""
        eps = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        if self.variational:
            return eps
        return self.code_mean + eps @ self.code_scale_tril.T.to(eps.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """pythae's decoder output at :meth:`sample_latent` draws."""
        return self.probabilities(self.sample_latent(n, generator))

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """−log p(x|z) per image with pythae's reconstruction loss as the likelihood."""
        return self.likelihood(logits, x)

    def loss(self, x: Tensor) -> LossTerms:
        """recon + β·KL (the reconstruction alone for an autoencoder), for the cost metrics;
        latentbench does not train a pythae model."""
        return beta_vae_loss(self, x, self.beta)

    @torch.no_grad()
    def calibrate(self, train_images: Tensor, batch_size: int) -> None:
        """An autoencoder's sampling Gaussian, fitted to its training codes (as ``ae``)."""
        if self.variational:
            return
        codes = torch.cat([self.encode(batch.to(self.device)).mean
                           for batch in train_images.split(batch_size)])
        mean, scale_tril = fit_gaussian(codes)
        self.code_mean.copy_(mean)
        self.code_scale_tril.copy_(scale_tril)
