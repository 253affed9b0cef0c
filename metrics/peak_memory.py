"""Peak memory of a block of code: what it adds to the memory in use before it.

On CUDA: ``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats``,
minus the bytes allocated before. On the CPU: growth of the resident set (Linux: ``VmHWM``
after resetting it through ``/proc/self/clear_refs``, minus ``VmRSS`` before; elsewhere
``ru_maxrss``), an estimate: the allocator may reuse memory freed earlier in the process
(glibc's is trimmed first to limit that), and with ``torch.compile`` the compiler's own memory
counts.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import re
import resource
import sys
from dataclasses import dataclass

import torch

from latentbench.metrics.timing import synchronize

__all__ = ["MIB", "MemoryProbe"]

MIB = 2**20


def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            match = re.search(rf"^{field_name}:\s+(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_resident_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _trim_heap() -> None:
    """Return freed heap pages to the OS (glibc), so later growth shows in the resident set
    instead of reusing pages an earlier computation left behind."""
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    with contextlib.suppress(OSError, AttributeError):
        if name:
            ctypes.CDLL(name).malloc_trim(0)


def _ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


@dataclass
class MemoryProbe:
    """Peak memory growth of the code run inside ``with MemoryProbe(device) as probe:``.

    After the block, :attr:`peak_bytes` holds the growth (see the module docstring for how it
    is read on CUDA and on the CPU) and :attr:`method` says which way it was read.
    """

    device: torch.device
    peak_bytes: int = 0
    method: str = ""
    _baseline: int = 0
    _resettable: bool = False

    def __enter__(self) -> MemoryProbe:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated growth"
            return self
        _trim_heap()
        self._resettable = _reset_resident_peak()
        rss_kib = _proc_status_kib("VmRSS") if self._resettable else None
        if rss_kib is not None:
            self._baseline = rss_kib * 1024
            self.method = "resident-set growth (VmHWM - VmRSS)"
        else:
            self._baseline = _ru_maxrss_bytes()
            self.method = "resident-set growth (ru_maxrss; a lower bound)"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            hwm_kib = _proc_status_kib("VmHWM") if self._resettable else None
            peak = hwm_kib * 1024 if hwm_kib is not None else _ru_maxrss_bytes()
        self.peak_bytes = max(0, peak - self._baseline)
