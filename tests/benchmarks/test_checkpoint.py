"""The background checkpoint writer: snapshots are taken at save time, errors reach the caller."""

import pytest
import torch

from latentbench.benchmarks.checkpoint import CheckpointWriter


def test_the_written_file_holds_the_state_as_it_was_when_saved(tmp_path):
    weights = torch.zeros(1000)
    writer = CheckpointWriter(tmp_path / "ckpt.pt")
    writer.save({"w": weights, "history": [1]})
    weights += 1.0  # training goes on while the write is in flight
    writer.wait()
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert torch.equal(state["w"], torch.zeros(1000)) and state["history"] == [1]
    writer.save({"w": weights})
    writer.wait()
    assert torch.equal(torch.load(tmp_path / "ckpt.pt", weights_only=True)["w"], weights)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary files left


def test_a_failed_write_raises_on_wait(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    writer = CheckpointWriter(tmp_path / "file" / "ckpt.pt")
    writer.save({"w": torch.zeros(1)})
    with pytest.raises(OSError):
        writer.wait()
    writer.wait()  # reported once
