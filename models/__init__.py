"""Models: the protocol, the registries, AE, VAE/β-VAE, β-TCVAE, AnnealedVAE, the priors and
the Gaussian math.

Importing this package registers every built-in model, encoder, decoder and likelihood.
"""

from latentbench.models import annealed_vae, autoencoder, btcvae, gan, pythae_model, sample_set, vae
from latentbench.models.custom import ModuleVAE
from latentbench.models.decoders import DECODERS
from latentbench.models.encoders import ENCODERS
from latentbench.models.gaussian import kl_normal, reparameterize
from latentbench.models.generator import GeneratorModel, ImageSequence
from latentbench.models.likelihoods import LIKELIHOODS
from latentbench.models.priors import PRIORS, Prior, PriorSetting
from latentbench.models.protocol import LatentModel, LossTerms, ModelSpec, Posterior
from latentbench.models.registry import InputError, Registry
from latentbench.models.zoo import MODELS, build_model

__all__ = [
    "DECODERS",
    "ENCODERS",
    "LIKELIHOODS",
    "MODELS",
    "PRIORS",
    "GeneratorModel",
    "ImageSequence",
    "InputError",
    "LatentModel",
    "LossTerms",
    "ModelSpec",
    "ModuleVAE",
    "Posterior",
    "Prior",
    "PriorSetting",
    "Registry",
    "annealed_vae",
    "autoencoder",
    "btcvae",
    "build_model",
    "gan",
    "kl_normal",
    "pythae_model",
    "reparameterize",
    "sample_set",
    "vae",
]
