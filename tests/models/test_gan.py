"""The DCGAN baseline: built from the decoder and encoder stages, shapes, the two-player step
(each optimiser moves only its own player), the losses against their formulas, no encoder-based
metrics, and training through the harness (checkpoint with both optimisers, exact resume, NaN)."""

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentbench.benchmarks.config import EvalSpec, TrainSpec
from latentbench.benchmarks.evaluate import plan_metrics
from latentbench.benchmarks.train import train
from latentbench.metrics import METRICS
from latentbench.models import DECODERS, ENCODERS, ModelSpec, build_model
from latentbench.models.gan import DCGAN
from latentbench.models.registry import InputError
from latentbench.reports.schema import RunFiles

TINY = (1, 8, 8)
#: Two epochs with a checkpoint after every epoch, however short.
NO_WAIT = TrainSpec(epochs=2, batch_size=16, checkpoint_seconds=0)


CHECKPOINT = RunFiles.CHECKPOINT


def spec(**overrides) -> ModelSpec:
    return ModelSpec(**{"name": "dcgan", "latent_dim": 4, "width": 4, "hidden": 16,
                        **overrides})


def fresh(seed: int = 0, shape=TINY, **overrides) -> DCGAN:
    torch.manual_seed(seed)
    model = build_model(spec(**overrides), shape)
    assert isinstance(model, DCGAN)
    return model


def params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: nn.Module) -> list[bool]:
    """Per parameter tensor: did it move at all?"""
    return [not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True)]


def weights_moved(before: list[torch.Tensor], module: nn.Module) -> bool:
    """Did every weight matrix and kernel move? Biases are left out: some have an exactly zero
    gradient by design (the critic's output bias under the hinge loss when every margin is
    active; a bias before batch norm)."""
    return all(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True)
               if p.ndim > 1)


def blobs(n: int = 64) -> torch.Tensor:
    base = torch.zeros(n, *TINY)
    base[::2, :, 1:4, 1:4] = 1.0
    base[1::2, :, 4:7, 4:7] = 1.0
    return base


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_the_generator_is_built_from_the_chosen_decoder_stage(decoder):
    model = fresh(decoder=decoder)
    stage = DECODERS.get(decoder)
    assert isinstance(model.generator.first, stage) and isinstance(model.generator.last, stage)
    # DCGAN's generator is batch-normalised; the discriminator is the conv encoder with LeakyReLU.
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.generator.modules())
    assert all(isinstance(s, ENCODERS.get("conv")) for s in model.discriminator.stages)
    leaky = [m for m in model.discriminator.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 3 and all(m.negative_slope == 0.2 for m in leaky)
    assert not any(isinstance(m, nn.ReLU) for m in model.discriminator.modules())
    assert ("unpool-max" in model.sampling) == (decoder == "unpool-max")
    assert model.sample(3).shape == (3, *TINY)


def test_the_discriminator_takes_the_chosen_encoder_stage():
    model = fresh(encoder="maxpool")
    assert all(isinstance(s, ENCODERS.get("maxpool")) for s in model.discriminator.stages)
    assert model.critic(torch.rand(2, *TINY)).shape == (2, 1)  # switches are dropped


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)], ids=["28x28x1", "32x32x3"])
def test_shapes(shape):
    model = fresh(shape=shape)
    assert model.decode(torch.randn(5, 4)).shape == (5, *shape)
    assert model.critic(torch.rand(5, *shape)).shape == (5, 1)
    model.eval()
    samples = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (6, *shape) and 0 <= samples.min() and samples.max() <= 1
    again = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)


def test_a_gan_takes_no_beta_or_options_and_has_no_encoder():
    with pytest.raises(InputError, match="model.beta"):
        build_model(spec(beta=1.0), TINY)
    with pytest.raises(InputError, match="model.options"):
        build_model(spec(options={"x": 1}), TINY)
    with pytest.raises(InputError, match="divisible by 4"):
        build_model(spec(), (1, 10, 10))
    model = fresh()
    assert model.capabilities == {"sample", "decode"}
    with pytest.raises(NotImplementedError):
        model.encode(torch.rand(2, *TINY))


def test_no_metric_that_needs_an_encoder_is_selected():
    model = fresh()
    chosen = {p.metric.name for p in plan_metrics(EvalSpec(), model.capabilities, "mnist5k",
                                                  ("lenet-mnist",))}
    needs_encoder = {m.name for _, m in METRICS.items() if m.needs - {"sample", "decode"}}
    assert {"recon_mse", "recon_bce", "psnr", "distortion", "rate"} <= needs_encoder
    assert not chosen & needs_encoder
    assert chosen == {m.name for _, m in METRICS.items()
                      if m.needs <= {"sample", "decode"} and m.default and m.datasets is None}


def inert(module: nn.Module) -> torch.optim.Optimizer:
    """An optimiser whose step leaves ``module``'s weights exactly as they are."""
    return torch.optim.SGD(module.parameters(), lr=0.0)


@pytest.mark.parametrize("gan_loss", ["non-saturating", "hinge"])
def test_one_step_moves_each_player_only_through_its_own_optimizer(gan_loss):
    x = blobs(16)
    model = fresh(gan_loss=gan_loss)
    g_before, d_before = params(model.generator), params(model.discriminator)
    optimizers = model.configure_optimizers(1e-3)
    assert set(optimizers) == {"generator", "discriminator"}
    assert all(g["betas"] == (0.5, 0.999) for opt in optimizers.values()
               for g in opt.param_groups)
    terms = model.train_step(x, optimizers)
    assert weights_moved(g_before, model.generator)
    assert weights_moved(d_before, model.discriminator)
    assert set(terms.parts) == {"d_loss", "g_loss"}
    assert torch.equal(terms.loss, terms.parts["d_loss"] + terms.parts["g_loss"])
    assert all(p.requires_grad for p in model.parameters())  # the freeze was undone

    # With one player's optimiser inert, that player's weights stay bit for bit: neither step
    # reaches the other player's weights.
    model = fresh(gan_loss=gan_loss)
    model.train_step(x, {"generator": inert(model.generator),
                         "discriminator": model.configure_optimizers(1e-3)["discriminator"]})
    assert not any(changed(g_before, model.generator))
    assert weights_moved(d_before, model.discriminator)

    model = fresh(gan_loss=gan_loss)
    model.train_step(x, {"generator": model.configure_optimizers(1e-3)["generator"],
                         "discriminator": inert(model.discriminator)})
    assert not any(changed(d_before, model.discriminator))
    assert weights_moved(g_before, model.generator)


def d_formula(real: torch.Tensor, fake: torch.Tensor, gan_loss: str) -> torch.Tensor:
    """The discriminator's loss written out from the papers, on its logits."""
    if gan_loss == "hinge":  # Lim & Ye 2017; Miyato et al. 2018
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    # Goodfellow et al. 2014: the binary cross-entropy of "real" vs "generated".
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def g_formula(fake: torch.Tensor, gan_loss: str) -> torch.Tensor:
    """The generator's loss: −E[D(G(z))] (hinge) or the non-saturating −E[log σ(D(G(z)))]."""
    return -fake.mean() if gan_loss == "hinge" else -F.logsigmoid(fake).mean()


@pytest.mark.parametrize("gan_loss", ["non-saturating", "hinge"])
def test_the_losses_match_their_formulas(gan_loss):
    model = fresh(gan_loss=gan_loss)
    x = blobs(16)
    torch.manual_seed(7)
    terms = model.loss(x)
    torch.manual_seed(7)
    with torch.no_grad():
        fake_scores = model.critic(torch.sigmoid(model.decode(torch.randn(16, 4))))
        d, g = d_formula(model.critic(x), fake_scores, gan_loss), g_formula(fake_scores, gan_loss)
    assert torch.allclose(terms.parts["d_loss"], d) and torch.allclose(terms.parts["g_loss"], g)
    assert torch.allclose(terms.loss, d + g)

    # train_step: d_loss is scored by the discriminator before its step on a first z; g_loss by
    # the updated discriminator on the generator (not yet updated) applied to a second, fresh z.
    before = copy.deepcopy(model)
    torch.manual_seed(11)
    terms = model.train_step(x, model.configure_optimizers(1e-3))
    torch.manual_seed(11)
    z1, z2 = torch.randn(16, 4), torch.randn(16, 4)
    with torch.no_grad():
        d = d_formula(before.critic(x), before.critic(torch.sigmoid(before.decode(z1))),
                      gan_loss)
        g = g_formula(model.critic(torch.sigmoid(before.decode(z2))), gan_loss)
    assert torch.allclose(terms.parts["d_loss"], d) and torch.allclose(terms.parts["g_loss"], g)


def test_the_harness_checkpoints_both_optimizers_and_resumes_exactly(tmp_path: Path):
    straight = fresh()
    train(straight, blobs(), replace(NO_WAIT, epochs=3), 0, tmp_path / "a" / CHECKPOINT,
          progress=False)
    # Two epochs, then "start the same run again" with three: a new process rebuilds the model
    # from the seed and resumes from whatever epoch the checkpoint holds.
    outcome = train(fresh(), blobs(), NO_WAIT, 0, tmp_path / "b" / CHECKPOINT,
                    progress=False)
    assert not outcome.failed and len(outcome.history) == 2
    assert {"d_loss", "g_loss"} <= set(outcome.history[0])
    state = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)
    assert set(state["optimizers"]) == {"generator", "discriminator"}
    assert all(opt["state"] for opt in state["optimizers"].values())  # Adam moments were saved
    checkpointed = len(state["history"])
    assert checkpointed >= 1

    torch.manual_seed(12345)  # a new process would start from another RNG state
    resumed = fresh()
    outcome = train(resumed, blobs(), replace(NO_WAIT, epochs=3), 0, tmp_path / "b" / CHECKPOINT,
                    progress=False)
    assert outcome.resumed_from_epoch == checkpointed and len(outcome.history) == 3
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_nan_in_the_data_fails_the_run_through_the_nan_guard(tmp_path: Path):
    data = blobs()
    data[5] = float("nan")
    outcome = train(fresh(), data, TrainSpec(epochs=2, batch_size=16), 0, tmp_path / CHECKPOINT,
                    progress=False)
    assert outcome.failed and "non-finite loss" in outcome.reason and "epoch 1" in outcome.reason
