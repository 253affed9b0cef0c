"""The VAE's β schedules (property tests) and the learned-σ Gaussian likelihood."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentbench.models import ModelSpec, build_model
from latentbench.models.vae import scheduled_beta

beta = st.floats(0.0, 20.0)
steps = st.integers(1, 5000)


@settings(max_examples=200, deadline=None)
@given(beta, steps, st.integers(0, 20000), st.integers(0, 20000))
def test_warmup_rises_monotonically_from_zero_to_beta(b, warmup, s1, s2):
    spec = ModelSpec(beta_schedule="warmup", warmup_steps=warmup)
    lo, hi = sorted((s1, s2))
    assert scheduled_beta(spec, b, 0) == 0.0
    assert 0.0 <= scheduled_beta(spec, b, lo) <= scheduled_beta(spec, b, hi) <= b
    assert scheduled_beta(spec, b, warmup + hi) == b


@settings(max_examples=200, deadline=None)
@given(beta, steps, st.floats(0.05, 1.0), st.integers(0, 20000), st.integers(0, 5))
def test_cyclical_repeats_every_cycle_and_ramps_over_the_ratio(b, cycle, ratio, step, k):
    spec = ModelSpec(beta_schedule="cyclical", cycle_steps=cycle, cycle_ratio=ratio)
    value = scheduled_beta(spec, b, step)
    assert 0.0 <= value <= b
    assert scheduled_beta(spec, b, step + k * cycle) == pytest.approx(value)
    assert scheduled_beta(spec, b, k * cycle) == 0.0  # each cycle starts from zero
    ramp = math.ceil(ratio * cycle)
    if ramp < cycle:  # a ramp over the whole cycle reaches β only as the next cycle restarts
        assert scheduled_beta(spec, b, k * cycle + ramp) == pytest.approx(b)


@given(beta, st.integers(0, 10**6))
def test_constant_is_constant(b, step):
    assert scheduled_beta(ModelSpec(), b, step) == b


def test_bad_schedule_settings_are_rejected():
    from latentbench.models.registry import InputError

    with pytest.raises(InputError, match="model.beta_schedule: must be one of constant"):
        ModelSpec(beta_schedule="linear")
    with pytest.raises(InputError, match="model.cycle_ratio"):
        ModelSpec(cycle_ratio=0.0)


def test_the_learned_sigma_is_trained_and_optimal_at_the_mean_squared_error():
    torch.manual_seed(0)
    spec = ModelSpec(name="vae", likelihood="gaussian-learned", latent_dim=3, width=4, hidden=16)
    model = build_model(spec, (1, 8, 8))
    log_sigma = model.likelihood.log_sigma
    assert any(p is log_sigma for p in model.parameters())
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        logits = model.decode(model.encode(x).mean)
    mse = (x - torch.sigmoid(logits)).square().mean()
    # d/dlogσ of Σ_p (x − x̂)²/2σ² + log σ is zero at σ² = mean squared error per pixel.
    with torch.no_grad():
        log_sigma.fill_(0.5 * math.log(mse.item()))
    model.reconstruction_nll(logits, x).sum().backward()
    assert abs(log_sigma.grad.item()) < 1e-3 * x.numel()


def test_the_default_optimiser_trains_to_the_single_tensor_adams_weights_bit_for_bit():
    # configure_optimizers takes Adam's multi-tensor (foreach) update for speed; on the CPU it
    # must leave every parameter exactly where the plain per-tensor update does.
    torch.manual_seed(0)
    models = [build_model(ModelSpec(name="vae", latent_dim=4, width=4, hidden=16), (1, 12, 12))
              for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    optimisers = [models[0].configure_optimizers(1e-2),
                  {"model": torch.optim.Adam(models[1].parameters(), lr=1e-2, foreach=False)}]
    assert optimisers[0]["model"].defaults["foreach"]
    batch = torch.rand(8, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    for model, optimiser in zip(models, optimisers, strict=True):
        torch.manual_seed(2)  # the same posterior draws
        for _ in range(5):
            model.train_step(batch, optimiser)
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(p, q)
