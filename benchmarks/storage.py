"""Full disks and torch files on top of the one atomic writer (:mod:`latentbench.reports.atomic`).

A full disk is the user's to fix (free space, run the same command again) and nothing written
before it is lost, so it becomes one line and exit code 2 rather than a traceback; a torch
object is serialized in memory and written by the atomic writer like every other file.
"""

from __future__ import annotations

import errno
import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import torch

from latentbench.models.registry import InputError
from latentbench.reports.atomic import write_bytes_atomic

#: errno values that mean "the disk (or the user's quota) is full": the user can fix these.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

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


def save_torch_atomic(path: Path, obj: Any) -> None:
    """``torch.save(obj)`` to ``path``, atomically.

    Serialized in memory first: torch's zip writer turns a failed write on a full disk into a
    ``RuntimeError`` ("unexpected pos"), which would hide the ``ENOSPC`` from the user. The
    objects saved here (state_dicts, cached features) are megabytes at most.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getvalue())
