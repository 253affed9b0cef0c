"""What a benchmark ran on: the one description of the device and software.

Numbers are only comparable between runs on the same software and hardware, so both outputs
that carry numbers say what produced them, from the same function:

- :func:`device_description`: the device and software (name, torch, CUDA and cuDNN versions,
  threads, usable CPUs, the CPU peak estimate), the ``environment`` of ``latentbench bench
  --json`` and the header of its table;
- :func:`environment_info`: that description plus the latentbench version and the git commit
  of the code, each run's ``environment.json`` (the report's "Environment" section).

So every key of the bench ``environment`` is in ``environment.json``, with the same value for
the same device.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from latentbench.metrics.peak_memory import MIB

__all__ = [
    "CpuPeak",
    "cpu_name",
    "cpu_peak_flops",
    "device_description",
    "environment_info",
    "usable_cpus",
]


# --- the CPU ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuPeak:
    """An upper-bound estimate of the CPU's float32 peak: cores × clock × FLOPs per cycle.

    Attributes:
        flop_s: the estimate, FLOP/s.
        cores: logical CPUs counted (the torch threads, at most the CPUs this process may use).
        ghz: the highest clock /proc/cpuinfo or sysfs states.
        flops_per_cycle: per core, from the vector flags: 64 with ``avx512f`` (two 512-bit FMA
            units × 16 lanes × 2), 32 with ``avx2`` and ``fma``, 16 with ``avx``, 8 otherwise.
            CPUs with one FMA unit reach half; SMT siblings share their core's units. Both make
            this an over-estimate, which is the safe side for "achieved is below the peak".
        basis: the product spelt out, for the table and the JSON.
    """

    flop_s: float
    cores: int
    ghz: float
    flops_per_cycle: int

    @property
    def basis(self) -> str:
        cores = f"{self.cores} core{'s' if self.cores != 1 else ''}"
        return (f"{cores} × {self.ghz:.2f} GHz × {self.flops_per_cycle} FP32 "
                f"FLOP/cycle = {self.flop_s / 1e9:.0f} GFLOP/s")


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            return cpuinfo.read()
    except OSError:
        return ""


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _max_clock_ghz() -> float | None:
    """The highest clock the kernel's cpufreq driver states for CPU 0, where there is one."""
    with contextlib.suppress(OSError, ValueError):
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding="ascii") as f:
            return int(f.read()) / 1e6  # kHz
    return None


def cpu_peak_flops(threads: int | None = None) -> CpuPeak | None:
    """Estimate the float32 peak of ``threads`` cores (default: torch's thread count) from
    /proc/cpuinfo (see :class:`CpuPeak`); ``None`` where the clock or flags are not stated
    (not Linux, or an architecture whose cpuinfo lacks them)."""
    info = _cpuinfo()
    clocks = [float(m) / 1e3 for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", info, re.MULTILINE)]
    clocks += [float(m) for m in re.findall(r"@\s*([\d.]+)\s*GHz", info)]
    sysfs = _max_clock_ghz()
    if sysfs is not None:
        clocks.append(sysfs)
    flags_line = re.search(r"^flags\s*:(.*)$", info, re.MULTILINE)
    if not clocks or flags_line is None:
        return None
    flags = set(flags_line.group(1).split())
    if "avx512f" in flags:
        per_cycle = 64
    elif {"avx2", "fma"} <= flags:
        per_cycle = 32
    elif "avx" in flags:
        per_cycle = 16
    else:
        per_cycle = 8
    cores = min(threads or torch.get_num_threads(), usable_cpus())
    ghz = max(clocks)
    return CpuPeak(cores * ghz * 1e9 * per_cycle, cores, ghz, per_cycle)


def cpu_name() -> str:
    """The CPU's model string from /proc/cpuinfo, else what :mod:`platform` knows."""
    match = re.search(r"^model name\s*:\s*(.+)$", _cpuinfo(), re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


# --- the description -------------------------------------------------------------------------


def device_description(device: torch.device) -> dict[str, Any]:
    """The device and software a measurement ran on, as a JSON-ready dict.

    Keys: ``device`` (``"cpu"``, ``"cuda:0"``), ``device_name`` (the GPU's name, or the CPU's
    model string), ``python``, ``torch``, ``cuda`` and ``cudnn`` (the versions used on a CUDA
    device; ``None`` on the CPU), ``platform``, ``threads`` (torch's), ``cpus`` (usable by this
    process), ``cpu_name``, ``peak_flop_s`` and ``peak_basis`` (the CPU peak estimate of
    :func:`cpu_peak_flops` on the CPU, ``None`` on CUDA or where it cannot be read); on CUDA
    also ``compute_capability`` and ``device_memory_mb``.

    Args:
        device: the device measured on.
    """
    cuda = device.type == "cuda"
    description: dict[str, Any] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu_name(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        # In use, not merely built in: a CPU measurement of a CUDA build used neither (the
        # build shows in the torch version, "2.4.0+cu121").
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": (torch.backends.cudnn.version()
                  if cuda and torch.backends.cudnn.is_available() else None),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cpus": usable_cpus(),
        "cpu_name": cpu_name(),
        "peak_flop_s": None,
        "peak_basis": None,
    }
    if cuda:
        properties = torch.cuda.get_device_properties(device)
        description["compute_capability"] = f"{properties.major}.{properties.minor}"
        description["device_memory_mb"] = round(properties.total_memory / MIB)
    else:
        peak = cpu_peak_flops()
        if peak is not None:
            description["peak_flop_s"], description["peak_basis"] = peak.flop_s, peak.basis
    return description


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
    """:func:`device_description` plus ``latentbench`` (the installed version) and
    ``git_commit`` (``-dirty`` with uncommitted changes; ``None`` outside git), as a JSON-ready
    dict: a run's ``environment.json``.

    Args:
        device: The device the runs use.
    """
    try:
        latentbench_version = version("latentbench")
    except PackageNotFoundError:
        latentbench_version = None
    return {**device_description(device), "latentbench": latentbench_version,
            "git_commit": _git_commit()}
