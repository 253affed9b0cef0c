"""pytest-benchmark: feature extraction with ``lenet-mnist``, the extractor of the MNIST-family
FID/KID/PRDC, on a batch of 512 digits (8 with ``--benchmark-disable``).

Each call ends with a device sync, so a CUDA case times its kernels. ``extra_info["img_s"]`` is
the images per second at the median call.
"""

import pytest
import torch

from latentbench.metrics.timing import synchronize

try:
    from latentbench.metrics.features import FeatureOptions, load_extractor
except ImportError as err:  # the feature extractors are not in this checkout yet
    pytest.skip(f"latentbench.metrics.features is not importable ({err}); nothing to time",
                allow_module_level=True)

SHAPE = (1, 28, 28)
BATCH = 512
SMOKE_BATCH = 8


def test_lenet_mnist_features(benchmark, device):
    extractor = load_extractor("lenet-mnist", FeatureOptions()).to(device)
    n = BATCH if benchmark.enabled else SMOKE_BATCH
    images = torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(0)).to(device)

    def extract():
        features = extractor(images)
        synchronize(device)
        return features

    features = benchmark(extract)
    assert features.shape == (n, extractor.dim) and torch.isfinite(features).all()
    benchmark.extra_info.update({"batch": n, "dim": extractor.dim, "device": str(device)})
    if benchmark.enabled:
        benchmark.extra_info["img_s"] = round(n / benchmark.stats.stats.median, 1)
