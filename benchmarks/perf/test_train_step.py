"""pytest-benchmark: one optimiser step of each registered decoder, AE and VAE, batch 128.

CPU CI runs this file once with ``--benchmark-disable`` (a smoke test); on a runner, compare a
saved baseline with ``pytest benchmarks/perf --benchmark-enable --benchmark-compare``.
"""

import pytest
import torch

from latentbench.models import DECODERS, ModelSpec, build_model


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("name", ["ae", "vae"])
def test_train_step(benchmark, name, decoder):
    torch.manual_seed(0)
    model = build_model(ModelSpec(name=name, decoder=decoder), (1, 28, 28))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = torch.rand(128, 1, 28, 28)

    def step():
        terms = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        return terms.loss.item()

    assert torch.isfinite(torch.tensor(benchmark(step)))
