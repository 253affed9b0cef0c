"""AnnealedVAE (Burgess et al.'s controlled capacity): the C_t schedule and the penalty
(property tests), the loss, training through the real trainer with the step counter
checkpointed, and the new model fields."""

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentbench.benchmarks.config import TrainSpec, config_from_tables
from latentbench.benchmarks.train import train
from latentbench.models import ModelSpec, build_model, kl_normal
from latentbench.models.annealed_vae import (
    DEFAULT_CAPACITY,
    DEFAULT_CAPACITY_STEPS,
    DEFAULT_GAMMA,
    AnnealedVAE,
    annealed_capacity,
    capacity_penalty,
)
from latentbench.models.registry import InputError
from latentbench.reports.schema import RunFiles

SHAPE = (1, 8, 8)
TINY = {"latent_dim": 3, "width": 4, "hidden": 16}

capacities = st.floats(0.0, 200.0)
horizons = st.integers(1, 200_000)
steps = st.integers(0, 400_000)


# --- the capacity schedule -------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(capacities, horizons, steps, steps)
def test_capacity_starts_at_zero_rises_monotonically_and_is_capped(c_max, horizon, s1, s2):
    lo, hi = sorted((s1, s2))
    assert annealed_capacity(c_max, horizon, 0) == 0.0
    assert 0.0 <= annealed_capacity(c_max, horizon, lo) <= annealed_capacity(c_max, horizon, hi)
    assert annealed_capacity(c_max, horizon, hi) <= c_max
    assert annealed_capacity(c_max, horizon, horizon + lo) == c_max


@settings(max_examples=200, deadline=None)
@given(capacities, horizons, st.data())
def test_capacity_is_linear_in_the_step_up_to_the_horizon(c_max, horizon, data):
    a, b = sorted(data.draw(st.lists(st.integers(0, horizon), min_size=2, max_size=2)))
    slope = c_max / horizon
    assert annealed_capacity(c_max, horizon, a) == pytest.approx(slope * a, rel=1e-12, abs=1e-12)
    assert (annealed_capacity(c_max, horizon, b) - annealed_capacity(c_max, horizon, a)
            == pytest.approx(slope * (b - a), rel=1e-9, abs=1e-9))


def test_capacity_checks_its_arguments():
    with pytest.raises(InputError, match="capacity_steps: must be a positive integer"):
        annealed_capacity(25.0, 0, 3)
    with pytest.raises(InputError, match="capacity: must be a number >= 0"):
        annealed_capacity(-1.0, 10, 3)
    with pytest.raises(InputError, match="step: must be an integer >= 0"):
        annealed_capacity(1.0, 10, -1)


# --- the penalty: minimal at KL = C, scaled by γ ----------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 200.0), st.floats(0.0, 200.0), st.floats(0.0, 2000.0),
       st.floats(0.0, 50.0))
def test_the_penalty_is_minimal_where_kl_meets_the_capacity(kl, capacity, gamma, scale):
    kl_t = torch.tensor(kl, dtype=torch.float64)
    at_target = capacity_penalty(torch.tensor(capacity, dtype=torch.float64), capacity, gamma)
    assert at_target.item() == 0.0
    assert capacity_penalty(kl_t, capacity, gamma).item() >= 0.0
    assert capacity_penalty(kl_t, capacity, gamma).item() == pytest.approx(
        gamma * abs(kl - capacity), rel=1e-12, abs=1e-9)
    # γ scales it: the penalty of k·γ is k times that of γ.
    assert capacity_penalty(kl_t, capacity, scale * gamma).item() == pytest.approx(
        scale * capacity_penalty(kl_t, capacity, gamma).item(), rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, 100.0), st.floats(0.01, 100.0), st.floats(0.1, 2000.0),
       st.sampled_from([-1.0, 1.0]))
def test_the_penalty_pulls_the_kl_towards_the_capacity_with_slope_gamma(capacity, gap, gamma,
                                                                        side):
    kl = torch.tensor(capacity + side * gap, dtype=torch.float64, requires_grad=True)
    capacity_penalty(kl, capacity, gamma).backward()
    assert kl.grad.item() == pytest.approx(side * gamma, rel=1e-12)


# --- the model's loss ------------------------------------------------------------------------

def tiny(seed=0, **fields) -> AnnealedVAE:
    torch.manual_seed(seed)
    return build_model(ModelSpec(name="annealed-vae", **TINY, **fields), SHAPE)


def images(n=96):
    base = torch.zeros(n, *SHAPE)
    base[::2, :, 1:4, 1:4] = 1.0
    base[1::2, :, 4:7, 4:7] = 1.0
    return base


def test_defaults_are_disentanglement_lib_s():
    model = tiny()
    assert (DEFAULT_GAMMA, DEFAULT_CAPACITY, DEFAULT_CAPACITY_STEPS) == (1000.0, 25.0, 100_000)
    assert (model.gamma, model.capacity, model.capacity_steps) == (1000.0, 25.0, 100_000)


def test_the_loss_is_recon_plus_gamma_times_the_distance_of_the_batch_kl_from_c_t():
    model = tiny(gamma=7.0, capacity=3.0, capacity_steps=4)
    x = images(16)
    for step in range(7):
        torch.manual_seed(step)
        terms = model.loss(x)
        c_t = min(3.0, 3.0 * step / 4)
        parts = terms.parts
        assert parts["capacity"].item() == pytest.approx(c_t)
        with torch.no_grad():
            posterior = model.encode(x)
        assert parts["kl"].item() == pytest.approx(
            kl_normal(posterior.mean, posterior.logvar).mean().item(), rel=1e-6)
        # |mean KL − C|, not the mean of per-image distances (disentanglement_lib's form).
        assert terms.loss.item() == pytest.approx(
            (parts["recon"] + 7.0 * (parts["kl"] - c_t).abs()).item(), rel=1e-6)
    assert model.step == 7
    model.eval()
    model.loss(x)
    assert model.step == 7  # eval-mode losses take no step


def test_the_penalty_is_of_the_batch_mean_kl_not_a_mean_of_per_image_penalties():
    # With C_t set to the batch's mean KL the penalty vanishes, although the two blob types'
    # KLs differ and straddle it (a mean of |KL_i − C| would not vanish).
    model = tiny(gamma=1000.0, capacity_steps=1).double()
    x = images(16).double()
    with torch.no_grad():
        posterior = model.encode(x)
    per_image = kl_normal(posterior.mean, posterior.logvar)
    model.capacity, model.step = per_image.mean().item(), 1
    assert (per_image - model.capacity).abs().mean().item() > 1e-4
    terms = model.loss(x)
    assert (terms.loss - terms.parts["recon"]).item() == pytest.approx(0.0, abs=1e-9)


# --- training through the real trainer -------------------------------------------------------

def weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values()
                      if isinstance(p, torch.Tensor)])


def every_epoch(epochs: int) -> TrainSpec:
    return TrainSpec(epochs=epochs, batch_size=16, checkpoint_seconds=0, lr=3e-3)


def test_trains_through_the_trainer_and_resumes_the_capacity_schedule(tmp_path: Path):
    fields = {"gamma": 5.0, "capacity": 4.0, "capacity_steps": 10}
    straight = tiny(**fields)
    outcome = train(straight, images(), every_epoch(3), 0, tmp_path / "a" / RunFiles.CHECKPOINT,
                    progress=False)
    assert not outcome.failed and straight.step == 18
    for epoch in outcome.history:
        assert {"loss", "recon", "kl", "capacity"} <= epoch.keys()
        assert all(math.isfinite(v) for v in epoch.values())
    # 6 steps an epoch: epoch 1 averages C_t over steps 0–5, epoch 2 over 6–11 (capped at 4
    # from step 10).
    assert outcome.history[0]["capacity"] == pytest.approx(4.0 * sum(range(6)) / 10 / 6)
    assert outcome.history[1]["capacity"] == pytest.approx(
        4.0 * (6 + 7 + 8 + 9 + 10 + 10) / 10 / 6)
    checkpoint = tmp_path / "b" / RunFiles.CHECKPOINT
    train(tiny(**fields), images(), every_epoch(2), 0, checkpoint, progress=False)
    assert torch.load(checkpoint, weights_only=True)["model"]["_extra_state"] == {"step": 6}
    torch.manual_seed(12345)
    resumed = tiny(**fields)
    outcome = train(resumed, images(), every_epoch(3), 0, checkpoint, progress=False)
    assert outcome.resumed_from_epoch == 1 and resumed.step == 18
    assert outcome.history[1]["capacity"] == pytest.approx(
        4.0 * (6 + 7 + 8 + 9 + 10 + 10) / 10 / 6)
    assert torch.equal(weights(straight), weights(resumed))


# --- the new model fields --------------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("capacity", -1.0, "must be a number >= 0, got -1.0"),
    ("capacity", float("nan"), "must be a number >= 0, got nan"),
    ("capacity", float("inf"), "must be a number >= 0, got inf"),
    ("capacity", True, "must be a number >= 0, got True"),
    ("gamma", -1000.0, "must be a number >= 0, got -1000.0"),
    ("capacity_steps", 0, "must be a positive integer, got 0"),
    ("capacity_steps", -5, "must be a positive integer, got -5"),
    ("capacity_steps", 1.5, "must be a positive integer, got 1.5"),
    ("capacity_steps", True, "must be a positive integer, got True"),
])
def test_bad_values_are_refused_naming_the_field(field, value, message):
    with pytest.raises(InputError, match=f"^model.{field}: {message}$"):
        ModelSpec(name="annealed-vae", **{field: value})


@pytest.mark.parametrize("name, field", [
    ("vae", "capacity"), ("vae", "capacity_steps"), ("ae", "capacity"), ("ae", "gamma"),
    ("dcgan", "capacity_steps"), ("annealed-vae", "alpha")])
def test_a_field_the_model_does_not_take_is_refused(name, field):
    spec = ModelSpec(name=name, **TINY, **{field: 2 if field == "capacity_steps" else 1.0})
    with pytest.raises(InputError, match=f"^model.{field}: model '{name}' does not take it; "
                                         f"models that do: .*"):
        build_model(spec, SHAPE)


@pytest.mark.parametrize("fields, message", [
    ({"beta": 4.0}, "^model.beta: annealed-vae has no beta"),
    ({"beta_schedule": "warmup"}, "^model.beta_schedule: annealed-vae has no beta to schedule"),
])
def test_beta_and_its_schedule_are_refused(fields, message):
    with pytest.raises(InputError, match=message):
        build_model(ModelSpec(name="annealed-vae", **TINY, **fields), SHAPE)


def test_settings_come_from_a_suite_table():
    config = config_from_tables("s", {"model": {"name": "annealed-vae", "gamma": 100,
                                                "capacity": 5, "capacity_steps": 2000}})
    assert (config.model.gamma, config.model.capacity, config.model.capacity_steps) == (
        100.0, 5.0, 2000)
    model = build_model(config.model, SHAPE)
    assert (model.gamma, model.capacity, model.capacity_steps) == (100.0, 5.0, 2000)
    with pytest.raises(InputError, match="^model.capacity_steps: expected int, got 1.5$"):
        config_from_tables("s", {"model": {"name": "annealed-vae", "capacity_steps": 1.5}})
    assert config.run_id != config_from_tables("s", {"model": {"name": "annealed-vae"}}).run_id
