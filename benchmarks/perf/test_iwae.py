"""pytest-benchmark: ``iwae_estimate`` against the implementation it replaced, in the same run,
on the quick suite's VAEs (latent_dim 16, width 32, hidden 256, 1 × 28 × 28), per decoder.

Both get the same model, images (one evaluation batch of 256) and seed, so they decode the same
importance samples: the values must agree to 1e-6 (relative) and the new one must take fewer
seconds per (image, sample). The decoder is nearly all the work of both; what the new one saves
is the reference's 4,096-row decoder calls, memory-bound on the CPU (see
:data:`~latentbench.metrics.iwae.CPU_DECODE_PIXELS`), and its per-call tiling of the images
and posterior. ``extra_info`` holds both times per (image, sample) in µs and their ratio.

Gates (only with ``--benchmark-enable``, which runs k = 32: 8,192 decodes per call; the default
CI run checks agreement on 16 images × k = 4): :data:`MIN_SPEEDUP` per decoder on the CPU. On a
GPU runner ``pytest benchmarks/perf/test_iwae.py --benchmark-enable -m "gpu or not gpu"``
times CUDA too (no gate there: the reference's 4,096 rows are already a full GPU batch for
these decoders, so the memory-sized batch gains little).
"""

import statistics
import time

import pytest
import torch

from latentbench.metrics.iwae import iwae_estimate
from latentbench.metrics.timing import synchronize
from latentbench.models import ModelSpec, build_model

SHAPE = (1, 28, 28)
DECODERS = ("transposed", "unpool-nearest")
IMAGES, K = 256, 32  # one evaluation batch; the reference decodes it in 2 calls of 4,096 rows
SMOKE_IMAGES, SMOKE_K = 16, 4
REPEATS = 3
#: Measured on 2 shared CPU cores (medians of 3, one thread): 1.5× and 2.2×.
MIN_SPEEDUP = {"transposed": 1.2, "unpool-nearest": 1.5}


def seconds(fn, device: torch.device) -> float:
    started = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - started


@pytest.mark.parametrize("decoder", DECODERS)
def test_iwae_is_the_reference_and_faster(benchmark, device, decoder, reference_iwae_bound):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", decoder=decoder), SHAPE).to(device).eval()
    n, k = (IMAGES, K) if benchmark.enabled else (SMOKE_IMAGES, SMOKE_K)
    images = torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(1)).round()
    images = images.to(device)

    def new() -> torch.Tensor:
        return iwae_estimate(model, images, k, torch.Generator().manual_seed(2)).bound

    def reference() -> torch.Tensor:
        return reference_iwae_bound(model, images, k, torch.Generator().manual_seed(2))

    repeats = REPEATS if benchmark.enabled else 1
    bound = benchmark.pedantic(new, rounds=repeats, warmup_rounds=1 if benchmark.enabled else 0)
    # Timed again next to the reference, alternating, so both see the same machine load; the
    # medians of the calls.
    times = [(seconds(reference, device), seconds(new, device)) for _ in range(repeats)]
    reference_s, new_s = (statistics.median(t) for t in zip(*times, strict=True))
    expected = reference()
    assert torch.allclose(bound, expected, rtol=1e-6, atol=0)
    per = 1e6 / (n * k)
    speedup = reference_s / new_s
    benchmark.extra_info.update({
        "images": n, "k": k, "device": str(device), "threads": torch.get_num_threads(),
        "new_us_per_sample": round(new_s * per, 1),
        "reference_us_per_sample": round(reference_s * per, 1),
        "speedup": round(speedup, 2)})
    if benchmark.enabled and device.type == "cpu":
        assert speedup >= MIN_SPEEDUP[decoder], benchmark.extra_info
