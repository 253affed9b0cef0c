"""pytest-benchmark: one optimiser step of each registered decoder, AE and VAE, batch 128.

CPU CI runs this file once with ``--benchmark-disable`` on a batch of 8 (a smoke test); on a
runner, compare a saved baseline with ``pytest benchmarks/perf --benchmark-enable
--benchmark-compare`` (README, "Performance regressions"). The step returns ``loss.item()``,
which waits for the device, so a CUDA case times its kernels.
"""

import pytest
import torch

from latentbench.models import DECODERS, ModelSpec, build_model

BATCH = 128
SMOKE_BATCH = 8


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("name", ["ae", "vae"])
def test_train_step(benchmark, device, name, decoder):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name=name, decoder=decoder), (1, 28, 28)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = BATCH if benchmark.enabled else SMOKE_BATCH
    batch = torch.rand(n, 1, 28, 28).to(device)

    def step():
        terms = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        return terms.loss.item()

    assert torch.isfinite(torch.tensor(benchmark(step)))
    benchmark.extra_info.update({"batch": n, "device": str(device)})
    if benchmark.enabled:
        benchmark.extra_info["img_s"] = round(n / benchmark.stats.stats.median, 1)
