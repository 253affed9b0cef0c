"""Atomic file writes: a crash or kill never leaves a half-written result behind.

Each writer writes a temporary file in the target's folder and ``os.replace``s it onto the
target, which is atomic on POSIX and Windows when both are on one file system. A write that
fails (a full disk) leaves the previous version of the target in place; a kill leaves at most a
stray ``.NAME.*.tmp`` beside it, which no reader opens and :func:`remove_stray_temporaries`
deletes.
"""

from __future__ import annotations

import errno
import functools
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

import torch

from latentbench.models.registry import InputError

#: errno values that mean "the disk (or the user's quota) is full": the user can fix these.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
TEMPORARY_GLOB = ".*.tmp"

P = ParamSpec("P")
R = TypeVar("R")


class DiskFullError(InputError):
    """No space was left on the device while writing ``path``: exit code 2 with one line, since
    the fix (free space, run the same command again) is the user's and nothing was lost."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no space left on device while writing {path}; free space and run "
                         f"the same command again")
        self.path = path


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` says the disk or quota is full (also when re-raised from a worker)."""
    return isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS


def reports_full_disk(command: Callable[P, R]) -> Callable[P, R]:
    """Decorator: a full disk anywhere in ``command`` becomes a :class:`DiskFullError`."""
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except OSError as err:
            if not is_disk_full(err):
                raise
            raise DiskFullError(err.filename or "the output folder") from err
    return wrapper


def remove_stray_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed writer left in ``folder`` (not its subfolders).

    Call it only where no other process is writing: a run's own folder before the run starts.
    """
    for stray in folder.glob(TEMPORARY_GLOB):
        stray.unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then move it onto ``path``.

    Raises:
        OSError: the write failed; ``filename`` is ``path`` (not the temporary file), so that a
            full disk is reported against the file the user knows.
    """
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
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def save_torch_atomic(path: Path, obj: Any) -> None:
    """``torch.save(obj)`` to ``path``, atomically.

    Serialized in memory first: torch's zip writer turns a failed write on a full disk into a
    ``RuntimeError`` ("unexpected pos"), which would hide the ``ENOSPC`` from the user. The
    objects saved here (state_dicts, cached features) are megabytes at most.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getvalue())
