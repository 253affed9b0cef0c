"""Fixtures shared by tests/ and benchmarks/perf/ (neither folder's modules import the other's).

``reference_iwae_bound``: the IWAE implementation that
:func:`latentbench.metrics.iwae.iwae_estimate` replaced, kept as the oracle of its values
(tests/metrics/test_iwae.py) and as the in-run baseline of its speed
(benchmarks/perf/test_iwae.py). It decodes ``decode_batch // N`` draws of
all N images per call, tiling the images and posterior every call, and takes the noise in the
same generator calls, so that on the same seed both implementations decode the same samples.
"""

import math
from collections.abc import Callable

import pytest
import torch

from latentbench.models.protocol import LatentModel, Posterior


@torch.no_grad()
def _reference_iwae_bound(model: LatentModel, x: torch.Tensor, k: int,
                          generator: torch.Generator | None = None,
                          decode_batch: int = 4096) -> torch.Tensor:
    """Per image L_k = log (1/k) Σᵢ p(x, zᵢ)/q(zᵢ|x), zᵢ ~ q(z|x), in float64 on the CPU."""
    posterior = model.encode(x)
    mean, logvar = posterior.mean.double().cpu(), posterior.logvar.double().cpu()
    std, count = torch.exp(0.5 * logvar), len(x)
    per_call = max(1, decode_batch // count)
    total = torch.full((count,), -math.inf, dtype=torch.float64)
    log_2pi = math.log(2.0 * math.pi)

    def tile(t: torch.Tensor, copies: int) -> torch.Tensor:
        return t.repeat(copies, *([1] * (t.dim() - 1)))

    for start in range(0, k, per_call):
        copies = min(per_call, k - start)
        eps = torch.randn(copies, *mean.shape, dtype=torch.float64, generator=generator)
        z = mean + std * eps
        log_q = -0.5 * (eps.square() + logvar + log_2pi).sum(-1)
        log_prior = -0.5 * (z.square() + log_2pi).sum(-1)
        flat = z.flatten(0, 1).to(device=posterior.mean.device, dtype=posterior.mean.dtype)
        tiled = Posterior(mean=tile(posterior.mean, copies), logvar=tile(posterior.logvar, copies),
                          switches=None if posterior.switches is None else
                          tuple(tile(s, copies) for s in posterior.switches))
        nll = model.reconstruction_nll(model.decode_posterior(flat, tiled), tile(x, copies))
        log_weights = log_prior - log_q - nll.double().cpu().view(copies, count)
        total = torch.logaddexp(total, torch.logsumexp(log_weights, dim=0))
    return total - math.log(k)


@pytest.fixture(scope="session")
def reference_iwae_bound() -> Callable[..., torch.Tensor]:
    """``reference_iwae_bound(model, x, k, generator=None, decode_batch=4096)``: see the module."""
    return _reference_iwae_bound
