"""The one atomic writer: files get the mode a plain open() would give them, follow the umask,
and a failed write keeps the old content and leaves no temporary file behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from latentbench.reports.atomic import file_mode, write_atomic, write_json_atomic


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_files_get_the_mode_open_would_give_them(tmp_path: Path, umask: int):
    previous = os.umask(umask)
    try:
        written = write_json_atomic(tmp_path / "a.json", {"x": 1})
        with open(tmp_path / "plain.txt", "w") as handle:  # the reference: a plain open()
            handle.write("x")
        assert file_mode() == 0o666 & ~umask
    finally:
        os.umask(previous)
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(
        (tmp_path / "plain.txt").stat().st_mode) == 0o666 & ~umask


def test_a_failed_write_keeps_the_old_file(tmp_path: Path):
    target = write_json_atomic(tmp_path / "b.json", {"old": True})

    def broken(handle) -> None:
        handle.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_atomic(target, broken)
    assert target.read_text() == '{\n  "old": true\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json"]
