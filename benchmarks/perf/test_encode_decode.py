"""pytest-benchmark: encoding and decoding a batch of 128 with the VAE of each registered decoder.

The encoder depends on the decoder too (``unpool-max`` needs the max-pooling encoder), so both
directions run per decoder. Each call ends with a device sync (:func:`synchronize`), so a CUDA
case times its kernels, not their launch. CPU CI runs this file once with
``--benchmark-disable`` on a batch of 8 (a smoke test); on a GPU runner
``pytest benchmarks/perf --benchmark-enable -m "gpu or not gpu"`` times both devices.
``extra_info["img_s"]`` is the images per second at the median call.
"""

import pytest
import torch

from latentbench.metrics.timing import synchronize
from latentbench.models import DECODERS, LatentModel, ModelSpec, build_model

SHAPE = (1, 28, 28)
BATCH = 128
SMOKE_BATCH = 8


def setup_model(device: torch.device, decoder: str, enabled: bool) -> tuple[LatentModel, int]:
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", decoder=decoder), SHAPE).to(device).eval()
    return model, BATCH if enabled else SMOKE_BATCH


def record(benchmark, n: int, device: torch.device) -> None:
    benchmark.extra_info.update({"batch": n, "device": str(device),
                                 "threads": torch.get_num_threads()})
    if benchmark.enabled:
        benchmark.extra_info["img_s"] = round(n / benchmark.stats.stats.median, 1)


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_encode(benchmark, device, decoder):
    model, n = setup_model(device, decoder, benchmark.enabled)
    images = torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(0)).to(device)

    @torch.no_grad()
    def encode():
        posterior = model.encode(images)
        synchronize(device)
        return posterior

    posterior = benchmark(encode)
    assert posterior.mean.shape == (n, model.latent_dim)
    record(benchmark, n, device)


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_decode(benchmark, device, decoder):
    model, n = setup_model(device, decoder, benchmark.enabled)
    codes = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(0))
    codes = codes.to(device)

    @torch.no_grad()
    def decode():
        logits = model.decode(codes)
        synchronize(device)
        return logits

    assert benchmark(decode).shape == (n, *SHAPE)
    record(benchmark, n, device)
