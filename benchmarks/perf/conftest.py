"""Shared fixtures of the pytest-benchmark files: the device a case runs on.

Hypothesis draws the same examples on every run here too: tests/conftest.py's profile, loaded
again for a run of this folder alone (``pytest benchmarks/perf``), which does not read that
conftest. In the default run both load it, and tests/conftest.py's collection hook refuses any
property test, of either folder, whose settings undo it.
"""

import pytest
import torch
from hypothesis import settings

settings.register_profile("latentbench", derandomize=True, database=None)
settings.load_profile("latentbench")


@pytest.fixture(params=[
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]),
])
def device(request) -> torch.device:
    """Each case once on the CPU and once on CUDA; the CUDA case is marked ``gpu`` (deselected
    by the default run, ``-m gpu`` selects it) and skips where torch sees no CUDA device."""
    return torch.device(request.param)

