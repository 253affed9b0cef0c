"""The evaluation plan: feature-space metrics once per extractor, absent where they do not
apply, errors recorded per metric without losing the others; the evaluation's timings."""

import pytest
import torch

from latentbench.benchmarks.config import EvalSpec
from latentbench.benchmarks.evaluate import evaluate, plan_metrics
from latentbench.metrics import METRICS
from latentbench.metrics.features import FeatureOptions, load_extractor
from latentbench.models import build_model
from latentbench.models.protocol import ModelSpec
from latentbench.models.registry import InputError

EVERYTHING = frozenset({"encode", "variational", "sample"})


@pytest.fixture()
def vae():
    """A tiny untrained VAE and 64 random images: real passes, in well under a second."""
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="vae", latent_dim=4, width=8, hidden=16), (1, 28, 28))
    return model, torch.rand(64, 1, 28, 28)


def keys(spec, capabilities=EVERYTHING, dataset="mnist5k", extractors=("lenet-mnist",)):
    return [p.key for p in plan_metrics(spec, capabilities, dataset, extractors)]


def test_feature_metrics_expand_over_extractors_and_keep_named_ones():
    spec = EvalSpec(metrics=("recon_mse", "fid", "kid[mine]"), features=("a", "b"))
    assert keys(spec) == ["recon_mse", "fid[a]", "fid[b]", "kid[mine]"]
    assert keys(EvalSpec(metrics=("fid", "fid[lenet-mnist]"))) == ["fid[lenet-mnist]"]


def test_defaults_skip_metrics_that_do_not_apply():
    planned = keys(EvalSpec(), capabilities=frozenset({"sample"}))
    assert "fid[lenet-mnist]" in planned and "checkerboard" in planned
    assert not {"recon_mse", "rate", "psnr"} & set(planned)
    # Off-by-default metrics (timings) only when named.
    off = [name for name, metric in METRICS.items() if not metric.default]
    assert not set(off) & set(keys(EvalSpec()))


@pytest.mark.parametrize("bad, message", [
    ("recon_mse[lenet-mnist]", "not computed in a feature space"),
    ("fid[", "not a metric name"),
    ("no_such_metric", "unknown metric"),
])
def test_bad_metric_keys_are_input_errors(bad, message):
    with pytest.raises(InputError, match=message):
        keys(EvalSpec(metrics=(bad,)))


def test_a_failing_metric_is_recorded_and_the_others_kept(vae):
    model, images = vae

    def no_extractor(name):
        raise FileNotFoundError(f"no weights for {name}")

    result = evaluate(model, images, images, EvalSpec(metrics=("recon_mse", "fid")), seed=0,
                      default_extractors=("x",), load_extractor=no_extractor)
    assert set(result.values) == {"recon_mse"} and result.samples["recon_mse"] == 64
    assert "no weights for x" in result.errors["fid[x]"]
    assert set(result.timings.metrics) == {"recon_mse", "fid[x]"}  # a failure took time too


def test_timings_name_every_metric_and_shared_pass_and_add_up_to_the_total(vae):
    model, images = vae
    metrics = ("recon_mse", "psnr", "neg_elbo", "fid", "precision", "recall")
    result = evaluate(model, images, images, EvalSpec(metrics=metrics), seed=0,
                      default_extractors=("lenet-mnist",),
                      load_extractor=lambda name: load_extractor(name, FeatureOptions()))
    timings = result.timings
    assert set(timings.metrics) == set(result.values) == {
        "recon_mse", "psnr", "neg_elbo", "fid[lenet-mnist]", "precision[lenet-mnist]",
        "recall[lenet-mnist]"}
    # Each pass once, although several metrics read it: the test pass (MSE, PSNR, -ELBO), the
    # features (FID, PRDC), the PRDC result (precision, recall).
    assert {"test_pass", "samples", "extractor[lenet-mnist]", "feature_set[lenet-mnist, test]",
            "feature_set[lenet-mnist, samples]"} <= set(timings.passes)
    assert len([name for name in timings.passes if name.startswith("prdc[lenet-mnist, ")]) == 1
    parts = [*timings.metrics.values(), *timings.passes.values()]
    assert min(parts) >= 0
    # The parts are disjoint stretches of the total, timed with one clock, so they never
    # exceed it; the rest is the driver's bookkeeping, small next to the passes however
    # loaded the machine (a loose bound: no absolute time is asserted).
    assert sum(parts) <= timings.total * (1 + 1e-9)
    assert timings.total - sum(parts) <= 0.5 * timings.total


def test_scores_that_read_the_prior_record_which_prior():
    """rate, the latent coverage and the sample scores say which prior they used; the
    reconstruction, which never reads it, does not."""
    torch.manual_seed(0)
    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    names = ("recon_mse", "rate", "prior_holes")
    for prior, told in ((None, "normal"), ("mog", "mog, K=10"), ("flow", "flow, 4 couplings")):
        model = build_model(ModelSpec(name="vae", latent_dim=2, width=4, hidden=8, prior=prior),
                            (1, 8, 8))
        result = evaluate(model, images, images, EvalSpec(metrics=names), seed=0)
        assert set(result.values) == set(names)
        assert {key: result.details[key].get("prior") for key in names} == {
            "recon_mse": None, "rate": told, "prior_holes": told}
    assert METRICS.get("fid").uses_prior and not METRICS.get("psnr").uses_prior
