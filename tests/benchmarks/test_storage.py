"""Atomic writes: a failed write keeps the previous file, leaves no temporary behind and names
the target; a full disk becomes the one-line DiskFullError; a killed writer's strays are removed."""

from __future__ import annotations

import errno
from concurrent.futures import Future
from pathlib import Path

import pytest

from latentbench.benchmarks.config import config_from_tables
from latentbench.benchmarks.storage import DiskFullError, reports_full_disk
from latentbench.benchmarks.sweep import _outcome
from latentbench.reports.atomic import remove_stray_temporaries, write_atomic, write_text_atomic


def no_space(handle) -> None:
    handle.write(b"half of it")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_keeps_the_old_file_and_names_the_target(tmp_path: Path):
    target = tmp_path / "results.csv"
    write_text_atomic(target, "old\n")
    with pytest.raises(OSError) as caught:
        write_atomic(target, no_space)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert target.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [target]


def test_a_full_disk_in_a_command_is_one_line_of_input_error(tmp_path: Path):
    @reports_full_disk
    def command() -> int:
        write_atomic(tmp_path / "status", no_space)
        return 0

    with pytest.raises(DiskFullError, match=r"^no space left on device while writing .*status; "
                                            r"free space and run the same command again$"):
        command()

    @reports_full_disk
    def other() -> int:
        raise PermissionError(errno.EACCES, "Permission denied", "x")

    with pytest.raises(PermissionError):  # not a full disk: not turned into input error
        other()


def test_a_run_that_hit_a_full_disk_is_not_marked_failed(tmp_path: Path):
    config = config_from_tables("t", {"data": {"dataset": "mnist5k"}})
    future: Future = Future()
    future.set_exception(OSError(errno.EDQUOT, "Disk quota exceeded", "model.pt"))
    with pytest.raises(OSError):
        _outcome(future, config, tmp_path)
    assert not (tmp_path / "runs" / config.run_id / "status").exists()


def test_stray_temporaries_are_removed_and_nothing_else(tmp_path: Path):
    (tmp_path / ".status.abc123.tmp").write_text("half")
    (tmp_path / "status").write_text("done\n")
    (tmp_path / "notes.tmp").write_text("a user's file, not ours")
    remove_stray_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp", "status"]
