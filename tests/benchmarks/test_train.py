"""The training loop: it learns, is deterministic on the CPU, resumes exactly, and guards NaN."""

from pathlib import Path

import pytest
import torch

from latentbench.benchmarks.config import RunConfig, TrainSpec
from latentbench.benchmarks.train import diverged, train
from latentbench.models import ModelSpec, build_model
from latentbench.reports.schema import RunFiles

SHAPE = (1, 8, 8)
SPEC = ModelSpec(name="vae", latent_dim=3, width=4, hidden=16)


CHECKPOINT = RunFiles.CHECKPOINT


def images(n=96):
    # Two blob types, so there is something to learn.
    base = torch.zeros(n, *SHAPE)
    base[::2, :, 1:4, 1:4] = 1.0
    base[1::2, :, 4:7, 4:7] = 1.0
    return base


def fresh(seed=0):
    torch.manual_seed(seed)
    return build_model(SPEC, SHAPE)


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values()
                      if isinstance(p, torch.Tensor)])


def every_epoch(epochs: int, **settings) -> TrainSpec:
    """Batches of 16 with a checkpoint after every epoch, however short."""
    return TrainSpec(epochs=epochs, batch_size=16, checkpoint_seconds=0, **settings)


def test_training_lowers_the_loss(tmp_path: Path):
    outcome = train(fresh(), images(), every_epoch(6, lr=3e-3), 0, tmp_path / CHECKPOINT,
                    progress=False)
    losses = [h["loss"] for h in outcome.history]
    assert not outcome.failed and len(losses) == 6 and losses[-1] < 0.8 * losses[0]
    assert (tmp_path / CHECKPOINT).exists()


def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path):
    spec = every_epoch(2)
    runs = []
    for i, seed in enumerate((0, 0, 1)):
        model = fresh(seed)
        train(model, images(), spec, seed, tmp_path / str(i) / CHECKPOINT, progress=False)
        runs.append(weights(model))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_resuming_after_an_interruption_reproduces_the_uninterrupted_run(tmp_path: Path):
    straight = fresh()
    train(straight, images(), every_epoch(3), 0, tmp_path / "a" / CHECKPOINT,
          progress=False)
    # Two epochs (a checkpoint after the first; the last is the run's model.pt), then "start the
    # same run again" with three: a new process would rebuild the model from the seed and find
    # the checkpoint. Scramble the global RNG in between, as a new process would.
    train(fresh(), images(), every_epoch(2), 0, tmp_path / "b" / CHECKPOINT,
          progress=False)
    torch.manual_seed(12345)
    resumed = fresh()
    outcome = train(resumed, images(), every_epoch(3), 0, tmp_path / "b" / CHECKPOINT,
                    progress=False)
    assert outcome.resumed_from_epoch == 1 and len(outcome.history) == 3
    assert torch.equal(weights(straight), weights(resumed))


def test_a_non_finite_loss_fails_the_run_without_raising(tmp_path: Path):
    data = images()
    data[5] = float("nan")
    outcome = train(fresh(), data, every_epoch(2), 0, tmp_path / CHECKPOINT,
                    progress=False)
    assert outcome.failed and "non-finite loss" in outcome.reason and "epoch 1" in outcome.reason


def test_an_unreadable_checkpoint_is_ignored_and_the_run_retrains_from_scratch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    straight = fresh()
    train(straight, images(), every_epoch(3), 0, tmp_path / "a" / CHECKPOINT, progress=False)
    train(fresh(), images(), every_epoch(2), 0, tmp_path / "b" / CHECKPOINT, progress=False)
    checkpoint = tmp_path / "b" / CHECKPOINT
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])  # a disk error, not a kill: truncated
    torch.manual_seed(12345)
    retrained = fresh()
    outcome = train(retrained, images(), every_epoch(3), 0, tmp_path / "b" / CHECKPOINT,
                    progress=False)
    assert not outcome.failed and outcome.resumed_from_epoch == 0 and len(outcome.history) == 3
    assert torch.equal(weights(straight), weights(retrained))
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert "unreadable checkpoint" in line and "training from scratch" in line


def test_a_foreign_checkpoint_is_ignored(tmp_path: Path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / CHECKPOINT)  # another version's layout
    outcome = train(fresh(), images(), every_epoch(1), 0, tmp_path / CHECKPOINT, progress=False)
    assert not outcome.failed and outcome.resumed_from_epoch == 0


def test_an_exploding_loss_fails_the_run_with_its_epoch_and_step(tmp_path: Path):
    # Adam at lr 10 throws an AE's weights far out: its loss passes 1e12 in the first epoch but
    # stays finite, so only the magnitude bound catches it.
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="ae", latent_dim=3, width=4, hidden=16), SHAPE)
    outcome = train(model, images(), every_epoch(3, lr=10.0), 0, tmp_path / CHECKPOINT,
                    progress=False)
    assert outcome.failed and outcome.reason.startswith("exploding loss")
    assert "in epoch 1, by step 6 of 6" in outcome.reason


@pytest.mark.parametrize("loss, fires", [
    (float("nan"), True), (float("inf"), True), (-float("inf"), True), (2e12, True),
    (-2e12, True), (1e4, False), (-1e4, False), (0.0, False)])
def test_the_divergence_rule(loss: float, fires: bool):
    assert (diverged(loss) is not None) == fires


def test_the_beta_schedule_resumes_where_it_stopped(tmp_path: Path):
    spec = ModelSpec(name="vae", latent_dim=3, width=4, hidden=16, beta=2.0,
                     beta_schedule="warmup", warmup_steps=10)
    torch.manual_seed(0)
    model = build_model(spec, SHAPE)
    train(model, images(), every_epoch(2), 0, tmp_path / CHECKPOINT, progress=False)
    torch.manual_seed(0)
    resumed = build_model(spec, SHAPE)
    outcome = train(resumed, images(), every_epoch(3), 0, tmp_path / CHECKPOINT,
                    progress=False)
    # 96 images / 16 = 6 steps an epoch: epoch 1 averages β over steps 0–5, epoch 2 over 6–11;
    # the run resumed after epoch 1 (its checkpoint) and took steps 6–17.
    assert outcome.resumed_from_epoch == 1 and resumed.step == 18
    assert outcome.history[0]["beta"] == pytest.approx(2.0 * sum(range(6)) / 10 / 6)
    assert outcome.history[1]["beta"] == pytest.approx(2.0 * (6 + 7 + 8 + 9 + 10 + 10) / 10 / 6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_matches_the_cpu_loss_curve_roughly(tmp_path: Path):
    results = {}
    for device in ("cpu", "cuda"):
        model = fresh().to(device)
        outcome = train(model, images(), every_epoch(3), 0,
                        tmp_path / device / CHECKPOINT, progress=False)
        assert not outcome.failed and model.device.type == device
        results[device] = [h["loss"] for h in outcome.history]
    assert results["cuda"][-1] == pytest.approx(results["cpu"][-1], rel=0.05)


def test_checkpoints_wait_for_their_interval(tmp_path: Path):
    # Epochs of a few milliseconds with an hour between checkpoints: none is written, and a
    # second start trains from scratch to the same weights.
    spec = TrainSpec(epochs=3, batch_size=16, checkpoint_seconds=3600)
    first = fresh()
    train(first, images(), TrainSpec(epochs=2, batch_size=16, checkpoint_seconds=3600), 0,
          tmp_path / CHECKPOINT, progress=False)
    assert not (tmp_path / CHECKPOINT).exists()
    again = fresh()
    outcome = train(again, images(), spec, 0, tmp_path / CHECKPOINT, progress=False)
    assert outcome.resumed_from_epoch == 0
    # The interval is not part of the run id, while a setting that changes training is.
    assert RunConfig(train=TrainSpec(checkpoint_seconds=0)).run_id == RunConfig().run_id
    assert RunConfig(train=TrainSpec(epochs=3)).run_id != RunConfig().run_id
