"""pytest-benchmark: precision / recall / density / coverage on 50,000 real and 50,000 fake
64-d features within 4 GiB.

The reference ``prdc.compute_prdc`` would hold three 50,000² distance matrices (10 GB each even
in float32); ours keeps one block of rows at a time. The metric runs in a fresh subprocess, so
that its peak resident memory is its own and not an earlier test's high-water mark: the child
builds the features, warms torch up on a tiny call (library start-up is not the metric's), reads
its resident set size, runs ``prdc`` once and reports the growth of the peak
(``ru_maxrss``) over that baseline, with the time of the call alone.

With ``--benchmark-enable`` it runs at 50,000 per set and fails when the peak grows by 4 GiB or
more. With ``--benchmark-disable`` (the default CI run) it runs at 2,000 per set and checks the
child's numbers against the reference instead. The benchmark's own timing includes the child's
interpreter start and data generation; ``extra_info["prdc_s"]`` is the metric's time. The child
inherits the environment, so its torch thread count (in ``extra_info``) is the run's: one under
the full test run, whose ``tests/conftest.py`` sets ``OMP_NUM_THREADS=1``.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from prdc import compute_prdc

N_FULL = 50_000
N_SMOKE = 2_000
D = 64
K = 5
SEED = 0
MAX_EXTRA_BYTES = 4 * 2**30

CHILD = r"""
import json, os, resource, sys, time

import numpy as np
import torch

from latentbench.metrics.prdc import prdc


def resident_bytes():
    # The current resident set on Linux; elsewhere the peak so far, which over-states the
    # baseline only by the data generation's transient copies.
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_bytes()


def peak_bytes():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


n, d, k, seed = map(int, sys.argv[1:5])
rng = np.random.default_rng(seed)
real = rng.standard_normal((n, d), dtype=np.float32)
fake = rng.standard_normal((n, d), dtype=np.float32)
fake *= 1.1
fake += 0.1
prdc(real[:50], fake[:50], k)  # load torch's kernels and thread pools before the baseline
baseline = resident_bytes()
started = time.perf_counter()
scores = prdc(real, fake, k)
seconds = time.perf_counter() - started
print(json.dumps({"scores": scores, "seconds": seconds, "threads": torch.get_num_threads(),
                  "baseline_bytes": baseline,
                  "peak_bytes": peak_bytes(), "input_bytes": real.nbytes + fake.nbytes}))
"""


def features(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The child's features, rebuilt here for the reference check."""
    rng = np.random.default_rng(SEED)
    real = rng.standard_normal((n, D), dtype=np.float32)
    fake = rng.standard_normal((n, D), dtype=np.float32)
    fake *= 1.1
    fake += 0.1
    return real, fake


def run_child(n: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(n), str(D), str(K), str(SEED)],
                          capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_prdc_fits_50k_per_set_in_4_gib(benchmark):
    n = N_FULL if benchmark.enabled else N_SMOKE
    result = benchmark.pedantic(run_child, args=(n,), rounds=1, iterations=1)
    extra = result["peak_bytes"] - result["baseline_bytes"]
    benchmark.extra_info.update({
        "n_per_set": n, "d": D, "k": K, "prdc_s": round(result["seconds"], 2),
        "torch_threads": result["threads"],
        "peak_extra_mib": round(extra / 2**20, 1),
        "peak_rss_mib": round(result["peak_bytes"] / 2**20, 1),
        "input_mib": round(result["input_bytes"] / 2**20, 1),
        **{key: round(value, 4) for key, value in result["scores"].items()},
    })
    print(f"\nprdc at {n:,} × {D} per set: {result['seconds']:.1f} s on {result['threads']} "
          f"thread(s), peak memory +{extra / 2**20:.0f} MiB over "
          f"{result['baseline_bytes'] / 2**20:.0f} MiB")
    scores = result["scores"]
    assert all(0.0 <= scores[key] <= 1.0 for key in ("precision", "recall", "coverage"))
    if benchmark.enabled:
        assert extra < MAX_EXTRA_BYTES, f"peak grew by {extra / 2**30:.2f} GiB, limit 4 GiB"
    else:
        reference = compute_prdc(*features(n), K)
        for key, value in reference.items():
            assert scores[key] == pytest.approx(float(value), abs=1e-12), key
