"""pytest-benchmark: decoding speed per FLOP of each registered decoder, against ``transposed``.

The decoders differ in FLOPs (``unpool-max`` and ``upsample-bilinear`` run their 3×3
convolution on the upsampled map, about twice the multiply-adds of ``transposed``; the fused
``unpool-nearest`` and ``unpool-zeros`` stages do a transposed convolution's), so images per
second alone would rank them by their FLOPs. This file asks instead whether each runs as fast as
its FLOPs allow, taking ``transposed`` (one ConvTranspose2d per stage, nothing but convolutions)
as the yardstick:

    ratio = (img/s × MFLOP/img of transposed) / (img/s × MFLOP/img of the decoder)

the achieved FLOP/s of transposed over that of the decoder; 1 runs as efficiently, above 1 is
slower per FLOP. The goal is ratio ≤ :data:`MAX_RATIO` for every decoder at each batch.

FLOPs per image are :func:`latentbench.metrics.timing.count_flops` of one ``decode`` (matrix
products and convolutions, 2 per multiply-add), as ``latentbench bench`` counts them. The
decoder and transposed are timed in the same test, their calls interleaved, so that a change in
the machine's load (a shared runner) hits both alike; each call ends with a device sync. The
``benchmark`` fixture times the decoder alone as well, for pytest-benchmark's own statistics.

With ``--benchmark-disable`` (the default run) each case decodes a batch of 8 once, counts its
FLOPs and checks the output: a smoke test, with no timing and no assertion on a speed. Enabled
(``pytest benchmarks/perf/test_decoder_flops.py --benchmark-enable -p no:randomly``) it records
``img_s``, ``transposed_img_s``, ``mflop_per_img`` and ``ratio`` in ``extra_info`` and asserts
the bound.
"""

import statistics
import time
from collections.abc import Callable

import pytest
import torch

from latentbench.metrics.timing import count_flops, synchronize
from latentbench.models import DECODERS, LatentModel, ModelSpec, build_model

SHAPE = (1, 28, 28)
BATCHES = [128, 1000]
SMOKE_BATCH = 8
#: Interleaved timed calls of each of the two decoders (after one untimed call each).
ROUNDS = 9
#: The goal: no decoder more than this many times slower per FLOP than transposed.
MAX_RATIO = 1.5
REFERENCE = "transposed"


def vae(decoder: str, device: torch.device) -> LatentModel:
    torch.manual_seed(0)
    return build_model(ModelSpec(name="vae", decoder=decoder), SHAPE).to(device).eval()


def decoding(model: LatentModel, codes: torch.Tensor) -> Callable[[], torch.Tensor]:
    """One no-grad ``decode`` of ``codes`` (z ~ N(0, I): unpool-max takes its no-switches path,
    as when sampling), ending with a device sync."""

    @torch.no_grad()
    def decode() -> torch.Tensor:
        logits = model.decode(codes)
        synchronize(codes.device)
        return logits

    return decode


def mflop_per_image(decode: Callable[[], torch.Tensor], n: int) -> float:
    return count_flops(decode) / n / 1e6


def interleaved_img_s(calls: dict[str, Callable[[], object]], n: int) -> dict[str, float]:
    """Images per second at the median of :data:`ROUNDS` calls of each, the calls alternating."""
    for call in calls.values():
        call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    return {name: n / statistics.median(times) for name, times in seconds.items()}


#: Decoders known to miss the bound, and why (kept visible as xfail, not hidden).
KNOWN_SLOW = {("upsample-bilinear", "cpu"): (
    "torch's CPU bilinear kernel round-trips through channels-last and no exact faster "
    "formulation was found; at batch 1000 fresh mmap'd pages dominate (glibc "
    "MALLOC_MMAP_MAX_=0 brings it to ~1.3x)")}


@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"batch{b}")
@pytest.mark.parametrize("decoder", list(DECODERS))
def test_decode_per_mflop(benchmark, device, decoder, batch):
    n = batch if benchmark.enabled else SMOKE_BATCH
    codes = torch.randn(n, 16, generator=torch.Generator().manual_seed(0)).to(device)
    decode = decoding(vae(decoder, device), codes)
    reference = decoding(vae(REFERENCE, device), codes)
    mflop, reference_mflop = mflop_per_image(decode, n), mflop_per_image(reference, n)
    assert mflop > 0 and reference_mflop > 0

    assert benchmark(decode).shape == (n, *SHAPE)
    benchmark.extra_info.update({"batch": n, "device": str(device),
                                 "threads": torch.get_num_threads(),
                                 "mflop_per_img": round(mflop, 3),
                                 "transposed_mflop_per_img": round(reference_mflop, 3)})
    if not benchmark.enabled:
        return
    img_s = interleaved_img_s({"decoder": decode, "reference": reference}, n)
    ratio = (img_s["reference"] * reference_mflop) / (img_s["decoder"] * mflop)
    benchmark.extra_info.update({"img_s": round(img_s["decoder"], 1),
                                 "transposed_img_s": round(img_s["reference"], 1),
                                 "ratio": round(ratio, 3)})
    if ratio > MAX_RATIO and (decoder, device.type) in KNOWN_SLOW:
        pytest.xfail(f"{decoder} at batch {n}: {ratio:.2f}x per FLOP; {KNOWN_SLOW[decoder, 'cpu']}")
    assert ratio <= MAX_RATIO, (
        f"{decoder} at batch {n}: {img_s['decoder']:.0f} img/s × {mflop:.2f} MFLOP is {ratio:.2f}× "
        f"slower per FLOP than transposed ({img_s['reference']:.0f} img/s × "
        f"{reference_mflop:.2f} MFLOP); the goal is ≤ {MAX_RATIO}")
