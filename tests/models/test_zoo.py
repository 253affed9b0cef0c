"""The model registry and the model specs: names, errors, capabilities, the loss convention."""

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from latentbench.models import MODELS, ModelSpec, build_model, kl_normal
from latentbench.models.registry import InputError

SHAPE = (1, 12, 12)


def small(**overrides):
    return ModelSpec(**{"latent_dim": 4, "width": 4, "hidden": 16, **overrides})


def test_registry_lists_the_models_and_rejects_unknown_names():
    assert {"ae", "vae"} <= set(MODELS)
    for field, spec in [("model.name", small(name="vea")), ("model.decoder", small(decoder="x")),
                        ("model.encoder", small(encoder="x")),
                        ("model.likelihood", small(likelihood="poisson"))]:
        with pytest.raises(InputError, match=field.replace(".", r"\.") + ".*choose one of"):
            build_model(spec, SHAPE)


@pytest.mark.parametrize("overrides, field", [({"latent_dim": 0}, "latent_dim"),
                                              ({"beta": -1.0}, "beta"), ({"sigma": 0.0}, "sigma"),
                                              ({"width": 2.5}, "width")])
def test_spec_rejects_bad_values(overrides, field):
    with pytest.raises(InputError, match=f"model.{field}"):
        small(**overrides)


def test_the_autoencoder_takes_no_beta():
    with pytest.raises(InputError, match="model.beta"):
        build_model(small(name="ae", beta=2.0), SHAPE)


def test_capabilities():
    assert build_model(small(name="ae"), SHAPE).capabilities == {"encode", "sample", "decode"}
    assert build_model(small(name="vae"), SHAPE).capabilities == {"encode", "variational",
                                                                  "sample", "decode"}


def _terms(beta, x, seed=0):
    torch.manual_seed(1)
    model = build_model(small(name="vae", beta=beta), SHAPE)
    torch.manual_seed(seed)
    return model, model.loss(x)


def test_beta_scales_the_kl_term_and_nothing_else():
    x = torch.rand(6, *SHAPE).round()
    _, one = _terms(1.0, x)
    _, four = _terms(4.0, x)
    assert torch.equal(one.recon, four.recon) and torch.equal(one.kl, four.kl)
    assert torch.allclose(four.loss - one.loss, 3.0 * one.kl, atol=1e-4)  # fp32 at ~100


def test_at_beta_zero_the_vae_optimises_reconstruction_alone():
    x = torch.rand(6, *SHAPE).round()
    model, terms = _terms(0.0, x)
    grads_loss = torch.autograd.grad(terms.loss, list(model.parameters()), allow_unused=True)
    model_b, terms_b = _terms(0.0, x)
    grads_recon = torch.autograd.grad(terms_b.recon, list(model_b.parameters()), allow_unused=True)
    for a, b in zip(grads_loss, grads_recon, strict=True):
        assert (a is None and b is None) or torch.equal(a, b)


def test_loss_convention_against_torch_distributions():
    """recon = −log p(x|z) summed over pixels, KL over latent dims, both averaged over the batch."""
    x = torch.rand(5, *SHAPE).round()
    torch.manual_seed(1)
    model = build_model(small(name="vae"), SHAPE)
    posterior = model.encode(x)
    torch.manual_seed(3)
    terms = model.loss(x)
    torch.manual_seed(3)
    z = posterior.mean + torch.exp(0.5 * posterior.logvar) * torch.randn_like(posterior.mean)
    log_px = Bernoulli(logits=model.decode(z)).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(terms.recon, -log_px.mean(), rtol=1e-5)
    assert torch.allclose(terms.kl, kl_normal(posterior.mean, posterior.logvar).mean())
    assert torch.allclose(terms.loss, terms.recon + terms.kl)


def test_gaussian_likelihood_matches_torch_normal():
    x = torch.rand(4, *SHAPE)
    torch.manual_seed(1)
    model = build_model(small(name="ae", likelihood="gaussian", sigma=0.3), SHAPE)
    logits = model.decode(model.encode(x).mean)
    expected = -Normal(torch.sigmoid(logits), 0.3).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(model.reconstruction_nll(logits, x), expected, rtol=1e-5)


def test_autoencoder_samples_follow_the_fitted_code_distribution():
    torch.manual_seed(0)
    model = build_model(small(name="ae"), SHAPE)
    images = torch.rand(500, *SHAPE)
    model.calibrate(images, batch_size=128)
    with torch.no_grad():
        codes = model.encode(images).mean
    assert torch.allclose(model.code_mean.float(), codes.mean(0), atol=1e-5)
    assert "code_mean" in model.state_dict() and "code_scale_tril" in model.state_dict()
    samples = model.sample(16, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (16, *SHAPE) and 0 <= samples.min() and samples.max() <= 1


@pytest.mark.parametrize("spec, message", [
    (dict(name="btcvae", prior="mog"), "model.prior: model 'btcvae' does not take it"),
    (dict(name="ae", prior="flow"), "model.prior: model 'ae' does not take it"),
    (dict(name="vae", prior="flow", prior_components=3), "model.prior_components: prior 'flow'"),
    (dict(name="vae", prior_components=3), "model.prior_components: prior 'normal'"),
    (dict(name="vae", prior="vampp"), "unknown prior 'vampp' .*did you mean 'vamp'"),
    (dict(name="vae", prior="flow", latent_dim=1), "model.prior: flow .* latent_dim >= 2"),
    (dict(name="vae", prior="mog", prior_components=0), "model.prior_components: must be"),
    (dict(name="vae", prior="os:path"), "model.prior: 'os:path' is not a latentbench"),
])
def test_a_prior_a_model_cannot_take_is_an_input_error(spec, message):
    with pytest.raises(InputError, match=message):
        build_model(ModelSpec(**spec), (1, 28, 28))


def test_the_normal_prior_adds_nothing_to_the_state_dict():
    """Weights saved before priors were components load into today's VAE: N(0, I) has no
    parameters or buffers, and a learned prior's are the model's own (trained with it)."""
    torch.manual_seed(0)
    normal = build_model(ModelSpec(name="vae", latent_dim=4), (1, 28, 28))
    assert not [key for key in normal.state_dict() if key.startswith("prior")]
    vamp = build_model(ModelSpec(name="vae", latent_dim=4, prior="vamp"), (1, 28, 28))
    assert [key for key, _ in vamp.named_parameters() if key.startswith("prior")] == [
        "prior.pseudo_inputs"]
    assert vamp.prior.pseudo_inputs.shape == (50, 1, 28, 28)
