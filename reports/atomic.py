"""Atomic file writes, the one writer of every file latentbench leaves on disk.

Each writer writes a temporary file in the target's folder and ``os.replace``s it onto the
target, which is atomic on POSIX and Windows when both are on one file system. A write that
fails (a full disk) leaves the previous version of the target in place; a kill leaves at most a
stray ``.NAME.*.tmp`` beside it, which no reader opens and :func:`remove_stray_temporaries`
deletes.

``mkstemp`` creates its file with mode 0600, so a plain rename would leave results that only
their owner can read; on a shared cluster file system colleagues could not open a sweep's
``results.csv``. The temporary file is therefore given the mode a plain ``open`` would have
given it (0666 less the umask, 0644 under the usual 022) before it is moved into place.

It lives in ``reports`` because that package imports no other part of latentbench: the harness
(which writes runs) and the reports (which write report.html and tables) can both import it
without the reports importing the harness. It needs only the standard library.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "TEMPORARY_GLOB",
    "file_mode",
    "remove_stray_temporaries",
    "write_atomic",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

#: The names a killed writer can leave behind; nothing else in a run folder matches it.
TEMPORARY_GLOB = ".*.tmp"


def file_mode() -> int:
    """The permission bits ``open(path, "w")`` would give a new file: 0666 less the umask.

    Read fresh on each call (``os.umask`` can only be read by setting it), so that a caller that
    changes its umask gets files that follow it.
    """
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def remove_stray_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed writer left in ``folder`` (not its subfolders).

    Call it only where no other process is writing: a run's own folder before the run starts.
    """
    for stray in folder.glob(TEMPORARY_GLOB):
        stray.unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, then move it onto ``path``.

    The file ends up with the mode of :func:`file_mode`, readable by others under the usual
    umask.

    Returns:
        ``path``.

    Raises:
        OSError: the write failed; ``filename`` is ``path`` (not the temporary file), so that a
            full disk is reported against the file the user knows.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    return write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically; returns ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (NaN allowed) atomically; returns ``path``."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True)
                             + "\n")
