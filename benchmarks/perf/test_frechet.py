"""pytest-benchmark: our Fréchet distance against pytorch-fid's and torchmetrics' on 2048-d
statistics (Inception pool3 size), in the same run.

Gates (only with ``--benchmark-enable``; the default CI run checks agreement at d = 256): ours
at least 7× faster than pytorch-fid's ``calculate_frechet_distance`` and 2.5× faster than
torchmetrics' ``_compute_fid`` (float64), with relative error at most 1e-9 against both.
"""

import time

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from torchmetrics.image.fid import _compute_fid

from latentbench.metrics import frechet_distance

REPEATS = 3
MIN_SPEEDUP = {"pytorch-fid": 7.0, "torchmetrics": 2.5}


def feature_statistics(d: int, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of n correlated d-dim features, like a network's activations."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((d, d)) / np.sqrt(d)
    x = np.maximum(rng.standard_normal((n, d)) @ mixing, 0.0)  # ReLU features: skewed, > 0
    return x.mean(0), np.cov(x, rowvar=False)


def median_seconds(fn, *args) -> tuple[float, float]:
    times, value = [], None
    for _ in range(REPEATS):
        started = time.perf_counter()
        value = float(fn(*args))
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2], value


# pytorch-fid passes sqrtm's `disp` argument, which SciPy 1.17 deprecates: the reference's own
# warning, not ours.
@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")
def test_frechet_distance_is_exact_and_faster_than_the_references(benchmark):
    d = 2048 if benchmark.enabled else 256
    mu1, s1 = feature_statistics(d, 0, 2 * d + 500)
    mu2, s2 = feature_statistics(d, 1, 2 * d + 500)
    tensors = [torch.from_numpy(a) for a in (mu1, s1, mu2, s2)]
    references = {
        "pytorch-fid": lambda: calculate_frechet_distance(mu1, s1, mu2, s2),
        "torchmetrics": lambda: _compute_fid(*tensors),
    }
    ours = benchmark.pedantic(frechet_distance, args=(mu1, s1, mu2, s2),
                              rounds=REPEATS if benchmark.enabled else 1)
    ours_seconds, _ = median_seconds(frechet_distance, mu1, s1, mu2, s2)
    benchmark.extra_info.update({"d": d, "ours_s": round(ours_seconds, 4), "value": ours})
    for name, run in references.items():
        seconds, value = median_seconds(run) if benchmark.enabled else (float("nan"), run())
        benchmark.extra_info[f"{name}_s"] = round(seconds, 4)
        benchmark.extra_info[f"speedup_over_{name}"] = round(seconds / ours_seconds, 2)
        assert ours == pytest.approx(float(value), rel=1e-9), name
        if benchmark.enabled:
            assert seconds / ours_seconds >= MIN_SPEEDUP[name], (
                f"{seconds / ours_seconds:.2f}× faster than {name}, needs {MIN_SPEEDUP[name]}×")
