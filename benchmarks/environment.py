"""What a benchmark ran on: ``environment.json`` for the report's "Environment" section.

Numbers are only comparable between runs on the same software and hardware, so every run
directory records the device, the Python/torch versions and the git commit of the code.
"""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

__all__ = ["environment_info"]


def _git_commit() -> str | None:
    """The commit of the source tree (``-dirty`` if it has uncommitted changes), if in git."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=source, capture_output=True, text=True, timeout=5,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None  # an installed wheel, or no git: say nothing rather than guess
    return commit + ("-dirty" if dirty else "") if commit else None


def environment_info(device: torch.device) -> dict[str, Any]:
    """Device, library versions, platform and git commit, as a JSON-ready dict.

    Args:
        device: The device the runs use.
    """
    try:
        latentbench_version = version("latentbench")
    except PackageNotFoundError:
        latentbench_version = None
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    return {
        "device": str(device),
        "device_name": name,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "platform": platform.platform(),
        "latentbench": latentbench_version,
        "git_commit": _git_commit(),
    }
