"""β-TCVAE: the minibatch-weighted-sampling decomposition of the KL (property tests), the loss it
makes, training through the real trainer with N checkpointed, and the new model fields."""

import itertools
import math
from pathlib import Path
from statistics import NormalDist

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal

from latentbench.benchmarks.config import RunConfig, TrainSpec, config_from_tables
from latentbench.benchmarks.suite import expand_suite, load_suite
from latentbench.benchmarks.train import train
from latentbench.models import ModelSpec, build_model, kl_normal, reparameterize
from latentbench.models.btcvae import DEFAULT_BETA, BetaTCVAE, mws_estimate
from latentbench.models.registry import InputError
from latentbench.reports.schema import RunFiles

SHAPE = (1, 8, 8)
TINY = {"latent_dim": 3, "width": 4, "hidden": 16}

# The Monte Carlo test compares an estimate with its expectation within z standard errors, once
# per example; z is Bonferroni-sized for its m examples so that the fixed (derandomised) draws
# pass all of them but with probability < 1e-6: z = Φ⁻¹(1 − 1e-6 / (2m)).
MC_EXAMPLES = 25
MC_Z = NormalDist().inv_cdf(1 - 1e-6 / (2 * MC_EXAMPLES))  # ≈ 5.5


def draw(seed: int, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return reparameterize(mu, logvar, torch.Generator().manual_seed(seed))


@st.composite
def batch(draw_, max_m=6, max_d=4):
    """A float64 batch of posteriors (μ, log σ²) ``[M, D]``, a noise seed and N ≥ M."""
    m, d = draw_(st.integers(1, max_m)), draw_(st.integers(1, max_d))
    values = st.lists(st.floats(-3.0, 3.0), min_size=m * d, max_size=m * d)
    mu = torch.tensor(draw_(values), dtype=torch.float64).reshape(m, d)
    logvar = torch.tensor(draw_(st.lists(st.floats(-4.0, 2.0), min_size=m * d,
                                         max_size=m * d)), dtype=torch.float64).reshape(m, d)
    return mu, logvar, draw_(st.integers(0, 2**31 - 1)), draw_(st.integers(m, 10**6))


# --- the estimator against the paper's formula, written out as loops -------------------------

def paper_mws(z, mu, logvar, n):
    """Chen et al. 2018, §4.1, one sum at a time in Python floats: log q(z_i|x_j) summed over
    dims; log q(z_i) ≈ log Σ_j q(z_i|x_j) − log(NM); log Π_d q(z_id) ≈ Σ_d [log Σ_j
    q(z_id|x_j) − log(NM)]; log p(z_i) under N(0, I). Returns per-sample lists of the four."""
    z, mu, logvar = z.tolist(), mu.tolist(), logvar.tolist()
    m, d = len(z), len(z[0])

    def log_q(value, mean, log_variance):
        return -0.5 * (math.log(2 * math.pi) + log_variance
                       + (value - mean) ** 2 / math.exp(log_variance))

    def log_sum_exp(values):
        top = max(values)
        return top + math.log(math.fsum(math.exp(v - top) for v in values))

    log_nm = math.log(n * m)
    out = {"log_qz_x": [], "log_qz": [], "log_prod_qz": [], "log_pz": []}
    for i in range(m):
        joint = [math.fsum(log_q(z[i][k], mu[j][k], logvar[j][k]) for k in range(d))
                 for j in range(m)]
        out["log_qz_x"].append(joint[i])
        out["log_qz"].append(log_sum_exp(joint) - log_nm)
        out["log_prod_qz"].append(math.fsum(
            log_sum_exp([log_q(z[i][k], mu[j][k], logvar[j][k]) for j in range(m)]) - log_nm
            for k in range(d)))
        out["log_pz"].append(math.fsum(log_q(z[i][k], 0.0, 0.0) for k in range(d)))
    return out


@settings(max_examples=60, deadline=None)
@given(batch())
def test_mws_equals_the_papers_formula_computed_by_loops(example):
    mu, logvar, seed, n = example
    z = draw(seed, mu, logvar)
    estimate = mws_estimate(z, mu, logvar, n)
    for name, values in paper_mws(z, mu, logvar, n).items():
        assert getattr(estimate, name).tolist() == pytest.approx(values, rel=1e-10, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(batch())
def test_mi_tc_and_dim_kl_add_up_to_the_monte_carlo_kl(example):
    # The decomposition telescopes: (log q(z|x) − log q(z)) + (log q(z) − Σ log q(z_d))
    # + (Σ log q(z_d) − log p(z)) = log q(z|x) − log p(z), here checked against the densities
    # of torch.distributions, to float64 rounding.
    mu, logvar, seed, n = example
    z = draw(seed, mu, logvar)
    estimate = mws_estimate(z, mu, logvar, n)
    mc_kl = (Normal(mu, torch.exp(0.5 * logvar)).log_prob(z)
             - Normal(0.0, 1.0).log_prob(z)).sum(dim=1)
    total = estimate.mi + estimate.tc + estimate.dim_kl
    assert total.tolist() == pytest.approx(mc_kl.tolist(), rel=1e-10, abs=1e-9)
    assert total.mean().item() == pytest.approx(mc_kl.mean().item(), rel=1e-10, abs=1e-9)


@settings(max_examples=MC_EXAMPLES, deadline=None)
@given(batch(max_m=4), st.integers(0, 2**31 - 1))
def test_the_monte_carlo_kl_agrees_with_the_analytic_kl(example, seed):
    # 256 codes from the drawn posteriors (tiled): the batch mean of log q(z|x) − log p(z)
    # estimates the mean analytic KL. Per image and dim, with z = μ + σε, that difference is
    # ½(μ² + 2μσε + (σ² − 1)ε² − log σ²), of variance μ²σ² + ½(σ² − 1)² (ε and ε² are
    # uncorrelated): the standard error is exact, not estimated from the draws.
    mu, logvar, _, n = example
    reps = math.ceil(256 / len(mu))
    mu, logvar = mu.repeat(reps, 1)[:256], logvar.repeat(reps, 1)[:256]
    estimate = mws_estimate(draw(seed, mu, logvar), mu, logvar, n)
    mc_kl = (estimate.mi + estimate.tc + estimate.dim_kl).mean().item()
    var = logvar.exp()
    std_error = math.sqrt((mu.square() * var + 0.5 * (var - 1).square()).sum().item()) / 256
    assert abs(mc_kl - kl_normal(mu, logvar).mean().item()) <= MC_Z * std_error


# --- total correlation: zero for a factorial batch, maximal for copies ----------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(2, 3), st.integers(2, 3), st.data())
def test_tc_of_a_factorial_batch_is_exactly_its_mws_offset(dims, levels, data):
    # A batch on a full grid, each dimension's (μ, log σ²) a function of its own grid coordinate
    # only: its aggregate posterior q_B(z) = (1/M) Σ_j q(z|x_j) factorises exactly, so its total
    # correlation is 0 at every code. MWS counts log q(z) with −log(NM) and Σ_d log q(z_d) with
    # −D log(NM), so its TC is that 0 plus (D − 1) log N (mws_estimate's docstring).
    values = st.lists(st.tuples(st.floats(-3.0, 3.0), st.floats(-3.0, 1.0)),
                      min_size=levels, max_size=levels)
    per_dim = [data.draw(values) for _ in range(dims)]
    rows = [[per_dim[k][c] for k, c in enumerate(cell)]
            for cell in itertools.product(range(levels), repeat=dims)]
    mu = torch.tensor([[m for m, _ in row] for row in rows], dtype=torch.float64)
    logvar = torch.tensor([[v for _, v in row] for row in rows], dtype=torch.float64)
    n = data.draw(st.integers(len(rows), 10**6))
    z = draw(data.draw(st.integers(0, 2**31 - 1)), mu, logvar)
    tc = mws_estimate(z, mu, logvar, n).tc
    assert tc.tolist() == pytest.approx([(dims - 1) * math.log(n)] * len(rows), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 4), st.integers(2, 8), st.floats(40.0, 100.0), st.integers(1, 10**6),
       st.integers(0, 2**31 - 1))
def test_tc_of_perfectly_correlated_codes_is_the_largest_possible(dims, m, spacing, extra, seed):
    # Every dimension a copy of one code, the M posteriors (σ = 1) ≥ 40σ apart: each code lies
    # in its own cluster in the joint and in every marginal, so q_B(z) = q(z|x_i)/M and
    # q_B(z_d) = q(z_d|x_i)/M up to terms below e^-500, and the batch TC is (D − 1) log M, the
    # most M equally weighted components allow; MWS adds (D − 1) log N. |ε| < 14 on every draw
    # is what "≥ 40σ apart" needs (a normal draw past 14σ has probability < 1e-44).
    n = m + extra
    mu = (spacing * torch.arange(m, dtype=torch.float64))[:, None].expand(m, dims)
    logvar = torch.zeros(m, dims, dtype=torch.float64)
    z = draw(seed, mu, logvar)
    assert (z - mu).abs().max() < 14
    tc = mws_estimate(z, mu, logvar, n).tc
    expected = (dims - 1) * (math.log(m) + math.log(n))
    assert tc.tolist() == pytest.approx([expected] * m, abs=1e-9)


def test_mws_checks_its_inputs_and_promotes_half_precision():
    with pytest.raises(ValueError, match=r"\[M, D\] shape"):
        mws_estimate(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4), 10)
    with pytest.raises(InputError, match="n_data: must be a positive integer"):
        mws_estimate(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), 0)
    half = mws_estimate(*(torch.zeros(2, 3, dtype=torch.float16),) * 3, 10)
    assert half.tc.dtype == torch.float32


# --- the model's loss ------------------------------------------------------------------------

def tiny(seed=0, **fields) -> BetaTCVAE:
    torch.manual_seed(seed)
    return build_model(ModelSpec(name="btcvae", **TINY, **fields), SHAPE)


def images(n=96):
    # Two blob types, so there is something to learn (as in tests/benchmarks/test_train.py).
    base = torch.zeros(n, *SHAPE)
    base[::2, :, 1:4, 1:4] = 1.0
    base[1::2, :, 4:7, 4:7] = 1.0
    return base


def loss_and_codes(model, x, seed):
    """The model's loss terms on ``x`` and the posterior and codes it drew (the loss draws its
    one ε from the global RNG, after encoding: the same seed draws it again)."""
    torch.manual_seed(seed)
    terms = model.loss(x)
    torch.manual_seed(seed)
    posterior = model.encode(x)
    return terms, posterior, reparameterize(posterior.mean, posterior.logvar)


def test_with_unit_weights_the_loss_is_recon_plus_the_monte_carlo_kl():
    model = tiny(alpha=1.0, beta=1.0, gamma=1.0).double()
    model.prepare_training(500)
    x = torch.rand(12, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    terms, posterior, z = loss_and_codes(model, x, seed=3)
    std = torch.exp(0.5 * posterior.logvar)
    mc_kl = (Normal(posterior.mean, std).log_prob(z)
             - Normal(0.0, 1.0).log_prob(z)).sum(dim=1).mean()
    recon = model.reconstruction_nll(model.decode(z), x).mean()
    assert terms.parts["recon"].item() == pytest.approx(recon.item(), rel=1e-12)
    assert terms.loss.item() == pytest.approx((recon + mc_kl).item(), rel=1e-12, abs=1e-10)
    assert terms.parts["kl"].item() == pytest.approx(
        kl_normal(posterior.mean, posterior.logvar).mean().item(), rel=1e-12)


def test_the_loss_weighs_each_logged_term_and_schedules_only_the_tc_weight():
    model = tiny(alpha=0.5, beta=3.0, gamma=2.0, beta_schedule="warmup", warmup_steps=4)
    model.prepare_training(200)
    x = images(16)
    for step in range(6):
        terms, posterior, z = loss_and_codes(model, x, seed=step)
        parts = terms.parts
        beta = 3.0 * min(1.0, step / 4)
        assert parts["beta"].item() == pytest.approx(beta)
        assert terms.loss.item() == pytest.approx(
            (parts["recon"] + 0.5 * parts["mi"] + beta * parts["tc"]
             + 2.0 * parts["dim_kl"]).item(), rel=1e-6)
        estimate = mws_estimate(z, posterior.mean, posterior.logvar, 200)
        assert parts["tc"].item() == pytest.approx(estimate.tc.mean().item(), rel=1e-5,
                                                   abs=1e-4)
    assert model.step == 6


def test_defaults_are_chen_et_al_s_dsprites_setting():
    model = tiny()
    assert (model.alpha, model.beta, model.gamma) == (1.0, DEFAULT_BETA, 1.0) == (1.0, 6.0, 1.0)
    assert model.n_data is None and model.step == 0


def test_training_needs_n_and_evaluation_falls_back_to_the_batch():
    model = tiny()
    x = images(10)
    with pytest.raises(RuntimeError, match=r"N .* unknown; call model.prepare_training"):
        model.loss(x)
    model.eval()
    terms, posterior, z = loss_and_codes(model, x, seed=0)
    as_batch = mws_estimate(z, posterior.mean, posterior.logvar, len(x))
    assert terms.parts["mi"].item() == pytest.approx(as_batch.mi.mean().item(), rel=1e-5)
    model.prepare_training(1000)  # once N is known, evaluation uses it too
    terms, posterior, z = loss_and_codes(model, x, seed=0)
    known = mws_estimate(z, posterior.mean, posterior.logvar, 1000)
    assert terms.parts["tc"].item() == pytest.approx(known.tc.mean().item(), rel=1e-5)
    assert model.step == 0  # eval-mode losses take no step
    with pytest.raises(InputError, match="n_train: must be a positive integer"):
        model.prepare_training(0)


# --- training through the real trainer -------------------------------------------------------

def weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values()
                      if isinstance(p, torch.Tensor)])


def every_epoch(epochs: int) -> TrainSpec:
    return TrainSpec(epochs=epochs, batch_size=16, checkpoint_seconds=0, lr=3e-3)


def test_trains_through_the_trainer_and_resumes_with_n_and_the_step(tmp_path: Path):
    straight = tiny()
    outcome = train(straight, images(), every_epoch(3), 0, tmp_path / "a" / RunFiles.CHECKPOINT,
                    progress=False)
    assert not outcome.failed and straight.n_data == 96 and straight.step == 18
    for epoch in outcome.history:
        assert {"loss", "recon", "kl", "mi", "tc", "dim_kl", "beta"} <= epoch.keys()
        assert all(math.isfinite(v) for v in epoch.values())
    # Stop after two epochs (a checkpoint after the first), then start the same run again.
    checkpoint = tmp_path / "b" / RunFiles.CHECKPOINT
    train(tiny(), images(), every_epoch(2), 0, checkpoint, progress=False)
    saved = torch.load(checkpoint, weights_only=True)["model"]["_extra_state"]
    assert saved == {"step": 6, "n_data": 96}
    torch.manual_seed(12345)
    resumed = tiny()
    outcome = train(resumed, images(), every_epoch(3), 0, checkpoint, progress=False)
    assert outcome.resumed_from_epoch == 1 and resumed.step == 18 and resumed.n_data == 96
    assert torch.equal(weights(straight), weights(resumed))
    # A model restored from the state alone (no trainer, no hook) can train on.
    restored = tiny(seed=1)
    restored.load_state_dict(straight.state_dict())
    assert restored.n_data == 96 and restored.step == 18
    assert math.isfinite(restored.loss(images(16)).loss.item())


# --- the new model fields --------------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("alpha", -1.0, "must be a number >= 0, got -1.0"),
    ("alpha", float("nan"), "must be a number >= 0, got nan"),
    ("alpha", float("inf"), "must be a number >= 0, got inf"),
    ("alpha", True, "must be a number >= 0, got True"),
    ("alpha", "1", "must be a number >= 0, got '1'"),
    ("gamma", -0.5, "must be a number >= 0, got -0.5"),
    ("gamma", float("-inf"), "must be a number >= 0, got -inf"),
])
def test_bad_weights_are_refused_naming_the_field(field, value, message):
    with pytest.raises(InputError, match=f"^model.{field}: {message}$"):
        ModelSpec(name="btcvae", **{field: value})


@pytest.mark.parametrize("name, field", [
    ("vae", "alpha"), ("vae", "gamma"), ("ae", "alpha"), ("dcgan", "gamma"),
    ("btcvae", "capacity"), ("btcvae", "capacity_steps")])
def test_a_field_the_model_does_not_take_is_refused(name, field):
    spec = ModelSpec(name=name, **TINY, **{field: 2 if field == "capacity_steps" else 1.0})
    with pytest.raises(InputError, match=f"^model.{field}: model '{name}' does not take it; "
                                         f"models that do: .*"):
        build_model(spec, SHAPE)


def test_weights_come_from_a_suite_file_and_enter_the_run_id(tmp_path: Path):
    path = tmp_path / "tc.toml"
    path.write_text('[model]\nname = "btcvae"\nalpha = 1\ngamma = 0.5\n\n'
                    '[grid]\n"model.beta" = [1.0, 6.0]\n', encoding="utf-8")
    runs = load_suite(str(path)).runs
    assert [(r.model.alpha, r.model.gamma, r.model.beta) for r in runs] == [
        (1.0, 0.5, 1.0), (1.0, 0.5, 6.0)]
    assert isinstance(runs[0].model.alpha, float)
    model = build_model(runs[0].model, SHAPE)
    assert (model.alpha, model.beta, model.gamma) == (1.0, 1.0, 0.5)
    ids = {config_from_tables("s", {"model": {"name": "btcvae", **extra}}).run_id
           for extra in ({}, {"alpha": 1.0}, {"alpha": 2.0}, {"gamma": 1.0})}
    assert len(ids) == 4
    with pytest.raises(InputError, match="model.alpha: expected float, got True"):
        expand_suite({"model": {"name": "btcvae", "alpha": True}})


def test_run_ids_of_configs_without_the_new_fields_are_unchanged():
    # Ids computed before alpha, gamma, capacity and capacity_steps existed.
    assert RunConfig().run_id == "88905bc0e6dc"
    assert RunConfig(model=ModelSpec(name="vae", beta=4.0, beta_schedule="warmup", latent_dim=8),
                     seed=3).run_id == "6470b8b11d3e"


def test_both_models_are_listed_with_their_summary(capsys: pytest.CaptureFixture[str]):
    from latentbench.benchmarks.cli import main

    assert main(["list", "models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("btcvae ") and "beta-TCVAE" in line for line in lines)
    assert any(line.startswith("annealed-vae ") and "|KL - C|" in line for line in lines)
