"""The registered disentanglement scores, through the evaluation driver on the real ``shapes``
factor grid: all present with their counts and seeds where the data has factors, absent where
it has none."""

import math

import pytest
import torch

from latentbench.benchmarks.config import EvalSpec
from latentbench.benchmarks.data.registry import DataSpec, load_dataset
from latentbench.benchmarks.evaluate import evaluate
from latentbench.metrics import METRICS
from latentbench.models import ModelSpec, build_model

SCORES = sorted(name for name, metric in METRICS.items() if metric.family == "disentanglement")
#: Scores with a standard error (binomial or bootstrap); the others vary over seeds only.
WITH_STD_ERROR = {"mig", "modularity", "dci_informativeness", "factorvae_score",
                  "betavae_score"}


@pytest.fixture(scope="module")
def shapes_evaluation():
    data = load_dataset(DataSpec(dataset="shapes", n_train=64, n_test=32))
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", latent_dim=3, width=4, hidden=16), (1, 64, 64))
    spec = EvalSpec(metrics=tuple(SCORES), factor_points=3000, factor_test_points=1500)
    return evaluate(model, data.test, data.train, spec, seed=5, dataset="shapes",
                    factors=data.factor_sampler)


def test_every_score_is_registered_with_its_direction():
    assert SCORES == ["betavae_score", "dci_completeness", "dci_disentanglement",
                      "dci_informativeness", "factorvae_score", "gaussian_total_correlation",
                      "mig", "modularity", "sap"]
    for name in SCORES:
        assert METRICS.get(name).needs == {"encode", "factors"}
        assert METRICS.get(name).higher_is_better is (name != "gaussian_total_correlation")


def test_on_data_with_factors_every_score_comes_with_its_counts_and_seed(shapes_evaluation):
    result = shapes_evaluation
    assert set(result.values) == set(SCORES), result.errors
    for name in SCORES:
        assert math.isfinite(result.values[name]), name
        details = result.details[name]
        assert details["points"] == 3000 and details["test_points"] == 1500, name
        assert details["seed"] == 5
        assert details["factor_names"] == ["shape", "scale", "orientation", "x", "y"]
        assert (name in result.std_errors) == (name in WITH_STD_ERROR), name
    for name in SCORES:
        if name != "gaussian_total_correlation":
            assert 0 <= result.values[name] <= 1, name
    # The classifier scores count their held-out votes or points; MIG its fitted points.
    assert result.samples["factorvae_score"] == 5_000 and result.samples["mig"] == 3000
    assert result.samples["dci_informativeness"] == 1500
    mig = result.details["mig"]
    assert len(mig["mi_matrix"]) == 3 and len(mig["mi_matrix"][0]) == 5
    assert len(mig["factor_entropy"]) == 5
    # one pool, encoded once, read by all nine scores; DCI's trees fitted once for its three
    assert sum(key.startswith("factor_codes") for key in result.timings.passes) == 1
    assert sum(key.startswith("dci[") for key in result.timings.passes) == 1


def test_without_factors_the_scores_are_absent_not_zero():
    data = load_dataset(DataSpec(dataset="mnist5k", n_train=32, n_test=16))
    model = build_model(ModelSpec(name="vae", latent_dim=3, width=4, hidden=16), (1, 28, 28))
    result = evaluate(model, data.test, data.train, EvalSpec(metrics=("mig", "rate")), seed=0,
                      dataset="mnist5k", factors=data.factor_sampler)
    assert data.factor_sampler is None
    assert set(result.values) == {"rate"} and not result.errors
