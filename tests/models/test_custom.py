"""ModuleVAE: a model from arbitrary encoder and decoder modules, under the loss convention."""

import math
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from latentbench.models import LIKELIHOODS, ModelSpec, ModuleVAE
from latentbench.models.registry import InputError

SHAPE = (1, 6, 6)
PIXELS = math.prod(SHAPE)
LATENT = 3


def modules(variational=True):
    torch.manual_seed(0)
    out = (2 if variational else 1) * LATENT
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, 16), nn.Tanh(), nn.Linear(16, out))
    decoder = nn.Sequential(nn.Linear(LATENT, 16), nn.Tanh(), nn.Linear(16, PIXELS),
                            nn.Unflatten(1, SHAPE))
    return encoder, decoder


def model(variational=True, **kwargs):
    return ModuleVAE(*modules(variational), LATENT, variational=variational, **kwargs)


def images(n=5):
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(1)).round()


def test_capabilities_follow_variational():
    assert model().capabilities == {"encode", "variational", "sample", "decode"}
    ae = model(variational=False)
    assert ae.capabilities == {"encode", "sample", "decode"}
    assert ModuleVAE.capabilities == frozenset()  # the class default is untouched
    assert ae.encode(images()).logvar is None and "prior" in ae.sampling


def test_loss_convention_against_torch_distributions():
    """recon = −log p(x|z) summed over pixels, KL summed over latent dims, both batch means."""
    vae, x = model(beta=2.5), images()
    posterior = vae.encode(x)
    torch.manual_seed(7)
    terms = vae.loss(x)
    torch.manual_seed(7)
    z = posterior.mean + torch.exp(0.5 * posterior.logvar) * torch.randn_like(posterior.mean)
    log_px = Bernoulli(logits=vae.decode(z)).log_prob(x).flatten(1).sum(1)
    q = Normal(posterior.mean, torch.exp(0.5 * posterior.logvar))
    kl = kl_divergence(q, Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(terms.recon, -log_px.mean(), rtol=1e-5)
    assert torch.allclose(terms.kl, kl.mean(), rtol=1e-5)
    assert torch.allclose(terms.loss, terms.recon + 2.5 * terms.kl, rtol=1e-6)


def test_beta_scales_the_kl_term_and_nothing_else():
    x = images()
    runs = {}
    for beta in (1.0, 4.0):
        torch.manual_seed(3)
        runs[beta] = model(beta=beta).loss(x)
    one, four = runs[1.0], runs[4.0]
    assert torch.equal(one.recon, four.recon) and torch.equal(one.kl, four.kl)
    assert torch.allclose(four.loss - one.loss, 3.0 * one.kl, rtol=1e-5)
    assert model().beta == 1.0  # beta=None is the plain VAE


def test_gaussian_likelihood_and_the_deterministic_loss():
    ae, x = model(variational=False, likelihood="gaussian", sigma=0.3), images()
    terms = ae.loss(x)
    mean = torch.sigmoid(ae.decode(ae.encode(x).mean))
    expected = -Normal(mean, 0.3).log_prob(x).flatten(1).sum(1).mean()
    assert torch.allclose(terms.loss, expected, rtol=1e-5)
    assert set(terms.parts) == {"recon"} and terms.kl is None


def test_the_learned_sigma_is_a_parameter():
    vae = model(likelihood="gaussian-learned")
    assert any(p is vae.likelihood.log_sigma for p in vae.parameters())


def test_it_trains_decodes_and_samples_in_range():
    vae, x = model(), images(32)
    optimizers = vae.configure_optimizers(3e-2)
    first = vae.train_step(x, optimizers).loss.item()
    for _ in range(10):
        last = vae.train_step(x, optimizers).loss.item()
    assert last < first
    samples = vae.sample(4, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (4, *SHAPE) and 0 <= samples.min() and samples.max() <= 1
    again = vae.sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)
    assert vae.reconstruct(x).shape == x.shape
    state = vae.state_dict()
    assert any(key.startswith("encoder.") for key in state)
    assert any(key.startswith("decoder.") for key in state)


@pytest.mark.parametrize("kwargs, message", [
    ({"likelihood": "poisson"}, "model.likelihood"),
    ({"beta": -1.0}, "model.beta"),
    ({"sigma": 0.0}, "model.sigma"),
    ({"variational": False, "beta": 2.0}, "model.beta"),
])
def test_bad_settings_are_input_errors(kwargs, message):
    variational = kwargs.pop("variational", True)
    with pytest.raises(InputError, match=message):
        ModuleVAE(*modules(variational), LATENT, variational=variational, **kwargs)


def test_non_modules_and_wrong_encoder_widths_are_rejected():
    with pytest.raises(TypeError, match="encoder"):
        ModuleVAE(lambda x: x, modules()[1], LATENT)
    wrong = ModuleVAE(*modules(variational=False), LATENT)  # a code where μ, log σ² belong
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        wrong.loss(images())


def test_the_base_class_builds_nothing_itself():
    with pytest.raises(InputError, match="model.name: ModuleVAE .* subclass"):
        ModuleVAE.from_spec(ModelSpec(), SHAPE)


def test_spec_settings_pass_the_model_section_on():
    spec = ModelSpec(latent_dim=5, beta=2.0, likelihood="gaussian", sigma=0.2)
    assert ModuleVAE.spec_settings(spec) == {"latent_dim": 5, "beta": 2.0,
                                             "likelihood": "gaussian", "sigma": 0.2}
    # The prior's keys only when set, so a plug-in __init__ from before priors still takes them.
    assert ModuleVAE.spec_settings(replace(spec, prior="mog"))["prior"] == "mog"
    with pytest.raises(InputError, match="model.beta_schedule"):
        ModuleVAE.spec_settings(ModelSpec(beta_schedule="warmup"))


def test_read_options_merges_defaults_and_rejects_typos_and_types():
    spec = ModelSpec(options={"hidden": 64, "dropout": 0})
    assert ModuleVAE.read_options(spec, hidden=256, dropout=0.1, act="relu") == {
        "hidden": 64, "dropout": 0.0, "act": "relu"}
    with pytest.raises(InputError, match="model.options.hiden: unknown option; allowed: hidden"):
        ModuleVAE.read_options(ModelSpec(options={"hiden": 64}), hidden=256)
    for bad in ("64", 64.0, True):
        with pytest.raises(InputError, match="model.options.hidden: expected int"):
            ModuleVAE.read_options(ModelSpec(options={"hidden": bad}), hidden=256)


def test_likelihoods_are_the_registered_ones():
    for name in LIKELIHOODS:
        vae = model(likelihood=name)
        assert isinstance(vae.likelihood, LIKELIHOODS.get(name))
