"""pytest-benchmark: every disentanglement metric of one representation at disentanglement_lib's
sample counts, and DCI's LightGBM importances against its scikit-learn reference.

The representation is that of a partly disentangled VAE on dSprites' factor grid (shape 3,
scale 6, orientation 40, x 32, y 32): d = 10 codes, five of them one standardised factor each
plus noise (one pair mixed), five pure noise. Sample counts are disentanglement_lib's
(Locatello et al. 2019): MIG, modularity and the Gaussian total correlation on 10,000 points,
DCI and SAP on 10,000 training and 5,000 test points, and the FactorVAE and β-VAE scores with
10,000 training and 5,000 eval votes of 64 drawn from the pool of all 15,000 points (the pool
the evaluation encodes once).

Gate (only with ``--benchmark-enable``): all seven metrics within :data:`BUDGET_S` seconds
together, each metric's seconds in ``extra_info``. The second test times DCI with
``importance="gbt-sklearn"`` (disentanglement_lib's GradientBoostingClassifier) and with the
default LightGBM on the same subset of :data:`REFERENCE_POINTS` and records both, their ratio
and how far the scores differ; no gate there, the reference at full size takes minutes. With
``--benchmark-disable`` (the default run) both run a small smoke version with no timing
assertion.

Measured on 2 shared CPU cores (torch threads 2, so DCI fits two factors at once): all seven in
9.3 s, DCI 7.7 s of it, SAP 1.0 s, the rest below 0.25 s each. DCI at 1,000 + 500 points:
LightGBM 2.9 s, scikit-learn 20.8 s (7×); at the full 10,000 + 5,000, measured once outside this
file, 8.0 s against 384 s (48×), D, C and I within 0.018 of each other.
"""

import time

import numpy as np
import torch

from latentbench.metrics.dci import dci
from latentbench.metrics.factor_info import mig, modularity
from latentbench.metrics.factor_votes import betavae_score, factorvae_score
from latentbench.metrics.sap import sap
from latentbench.metrics.total_correlation import gaussian_total_correlation

SIZES = (3, 6, 40, 32, 32)
#: The smoke run's grid: DCI's time goes with the number of classes (a tree per class per
#: round), 113 for dSprites, 21 here.
SMOKE_SIZES = (3, 6, 4, 4, 4)
TRAIN, TEST, VOTES, EVAL_VOTES, BATCH = 10_000, 5_000, 10_000, 5_000, 64
SMOKE_TRAIN, SMOKE_TEST, SMOKE_VOTES, SMOKE_EVAL_VOTES, SMOKE_BATCH = 600, 300, 200, 100, 8
#: Seconds all seven metrics may take together at full size: one evaluation's budget for them.
BUDGET_S = 60.0
#: Training and test points of the scikit-learn comparison: ~40 s for the reference on one core.
REFERENCE_POINTS = (1_000, 500)
SMOKE_REFERENCE_POINTS = (100, 50)


def representation(n: int, seed: int = 0, sizes: tuple[int, ...] = SIZES
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform draws of a five-factor grid (dSprites') and their codes ``[n, 10]``."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    signal = (factors - factors.mean(0)) / factors.std(0)
    signal[:, 3:5] = signal[:, 3:5] @ np.array([[0.8, 0.6], [-0.6, 0.8]])  # x and y mixed
    codes = np.c_[signal + 0.3 * rng.standard_normal(signal.shape),
                  rng.standard_normal((n, 5))]
    return codes, factors


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def test_disentanglement_metrics_fit_the_budget(benchmark):
    full = benchmark.enabled
    n_train, n_test = (TRAIN, TEST) if full else (SMOKE_TRAIN, SMOKE_TEST)
    votes = (VOTES, EVAL_VOTES, BATCH) if full else (SMOKE_VOTES, SMOKE_EVAL_VOTES, SMOKE_BATCH)
    codes, factors = representation(n_train + n_test, sizes=SIZES if full else SMOKE_SIZES)
    fit = slice(0, n_train)
    held_out = slice(n_train, None)
    metrics = {
        "mig": lambda: mig(codes[fit], factors[fit]).score,
        "modularity": lambda: modularity(codes[fit], factors[fit]).score,
        "gaussian_tc": lambda: gaussian_total_correlation(codes[fit]).score,
        "dci": lambda: dci(codes[fit], factors[fit], codes[held_out],
                           factors[held_out]).disentanglement,
        "sap": lambda: sap(codes[fit], factors[fit], codes[held_out], factors[held_out]).score,
        "factorvae": lambda: factorvae_score(codes, factors, n_train=votes[0], n_eval=votes[1],
                                             batch_size=votes[2]).score,
        "betavae": lambda: betavae_score(codes, factors, n_train=votes[0], n_eval=votes[1],
                                         batch_size=votes[2]).score,
    }

    def run_all() -> dict[str, tuple[float, float]]:
        return {name: timed(run) for name, run in metrics.items()}

    results = benchmark.pedantic(run_all, rounds=1, warmup_rounds=0)
    total = sum(seconds for seconds, _ in results.values())
    benchmark.extra_info.update({
        "points": n_train + n_test, "votes": votes[:2], "threads": torch.get_num_threads(),
        "total_s": round(total, 2),
        **{f"{name}_s": round(seconds, 3) for name, (seconds, _) in results.items()},
        **{name: round(float(value), 4) for name, (_, value) in results.items()}})
    for name, (_, value) in results.items():
        assert np.isfinite(value), name
    # The representation has one code per factor: the scores that see that are well above chance.
    assert results["factorvae"][1] > 0.5 and results["dci"][1] > 0.3
    if full:
        assert total <= BUDGET_S, benchmark.extra_info


def test_dci_lightgbm_against_the_scikit_learn_reference(benchmark):
    n_train, n_test = REFERENCE_POINTS if benchmark.enabled else SMOKE_REFERENCE_POINTS
    codes, factors = representation(n_train + n_test, seed=1)
    if not benchmark.enabled:
        factors = factors[:, :2]  # shape and scale: a few seconds of the reference at most
    args = (codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:])
    ours_s, ours = benchmark.pedantic(lambda: timed(lambda: dci(*args)), rounds=1,
                                      warmup_rounds=0)
    reference_s, reference = timed(lambda: dci(*args, importance="gbt-sklearn"))
    benchmark.extra_info.update({
        "train_points": n_train, "test_points": n_test, "threads": torch.get_num_threads(),
        "lightgbm_s": round(ours_s, 2), "sklearn_s": round(reference_s, 2),
        "speedup": round(reference_s / ours_s, 1),
        "importance_max_diff": round(float(np.abs(ours.importance
                                                  - reference.importance).max()), 4),
        **{f"{field}_diff": round(getattr(ours, field) - getattr(reference, field), 4)
           for field in ("disentanglement", "completeness", "informativeness")}})
    assert ours.importance.shape == reference.importance.shape == (10, factors.shape[1])
