"""Shared fixtures of the pytest-benchmark files: the device a case runs on."""

import pytest
import torch


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

