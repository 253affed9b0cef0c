"""Files a model is read from: content digests in the run id, path resolution, strict weights."""

import dataclasses

import pytest
import torch

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.model_files import (
    content_sha256,
    file_digests,
    load_weights,
    resolve_model_paths,
)
from latentbench.models import InputError, ModelSpec, build_model

SPEC = ModelSpec(name="vae", latent_dim=4, width=8, hidden=16)
SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def state():
    torch.manual_seed(0)
    return build_model(SPEC, SHAPE).state_dict()


def test_run_id_holds_the_weights_content_not_their_path(tmp_path, state):
    first, moved, other = tmp_path / "a.pt", tmp_path / "sub" / "b.pt", tmp_path / "c.pt"
    moved.parent.mkdir()
    torch.save(state, first)
    moved.write_bytes(first.read_bytes())
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()
                if isinstance(v, torch.Tensor)} | {k: v for k, v in state.items()
                                                   if not isinstance(v, torch.Tensor)}, other)

    def run_id(path):
        return RunConfig(model=dataclasses.replace(SPEC, weights=str(path))).run_id

    assert run_id(first) == run_id(moved)  # same bytes, another folder: the same run
    assert run_id(first) != run_id(other)  # a new file: a new run
    assert run_id(first) != RunConfig(model=SPEC).run_id
    assert file_digests(dataclasses.replace(SPEC, weights=str(first))) == {
        "model.weights": content_sha256(first, "model.weights")}


def test_run_ids_without_weights_are_unchanged():
    # Pinned before weights existed: a run configured then keeps its finished folder.
    assert RunConfig().run_id == RunConfig(model=ModelSpec(weights=None)).run_id
    assert "weights" not in RunConfig().to_dict()["model"] or \
        RunConfig().to_dict()["model"]["weights"] is None


def test_a_folder_digest_changes_with_any_file_in_it(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"1")
    (tmp_path / "model_config.json").write_text("{}")
    before = content_sha256(tmp_path, "x")
    (tmp_path / ".hidden").write_text("ignored")
    assert content_sha256(tmp_path, "x") == before
    (tmp_path / "model_config.json").write_text('{"a": 1}')
    assert content_sha256(tmp_path, "x") != before
    with pytest.raises(InputError, match="model.weights: no file or folder"):
        content_sha256(tmp_path / "missing.pt", "model.weights")


def test_relative_paths_resolve_against_the_given_folder(tmp_path):
    spec = resolve_model_paths(dataclasses.replace(SPEC, weights="w/vae.pt"), tmp_path)
    assert spec.weights == str(tmp_path / "w" / "vae.pt")
    samples = resolve_model_paths(ModelSpec(name="samples", options={"path": "s.npy"}), tmp_path)
    assert samples.options == {"path": str(tmp_path / "s.npy")}
    assert resolve_model_paths(SPEC, tmp_path) is SPEC


def test_weights_load_exactly(tmp_path, state):
    path = tmp_path / "w.pt"
    torch.save({"state_dict": state}, path)  # a training script's checkpoint layout
    torch.manual_seed(1)
    model = build_model(SPEC, SHAPE)
    load_weights(model, str(path))
    for key, value in model.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("change, message", [
    (lambda s: {k: v for k, v in s.items() if k != "encoder.stages.0.conv.weight"},
     "lacks key 'encoder.stages.0.conv.weight'"),
    (lambda s: {**s, "extra.weight": torch.zeros(1)}, "has key 'extra.weight'"),
    (lambda s: {**s, "encoder.stages.0.conv.bias": torch.zeros(3)},
     r"key 'encoder.stages.0.conv.bias' has shape \[3\]"),
    (lambda s: [1, 2], "does not hold a state_dict"),
])
def test_a_mismatch_names_the_first_bad_key(tmp_path, state, change, message):
    path = tmp_path / "w.pt"
    torch.save(change(dict(state)), path)
    with pytest.raises(InputError, match=f"^model.weights: .*{message}"):
        load_weights(build_model(SPEC, SHAPE), str(path))


def test_a_damaged_or_pickled_file_is_refused(tmp_path):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="model.weights: cannot load"):
        load_weights(build_model(SPEC, SHAPE), str(damaged))
    pickled = tmp_path / "pickled.pt"
    torch.save({"fn": print}, pickled)  # code, which weights_only=True does not run
    with pytest.raises(InputError, match="model.weights: cannot load"):
        load_weights(build_model(SPEC, SHAPE), str(pickled))
    with pytest.raises(InputError, match="model.weights: no file"):
        load_weights(build_model(SPEC, SHAPE), str(tmp_path / "missing.pt"))
