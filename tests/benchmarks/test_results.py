"""results.csv rows: one per run × metric; a run without metrics still has its row."""

import math

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.results import results_frame
from latentbench.benchmarks.run import RunOutcome
from latentbench.models import ModelSpec


def test_rows_per_metric_and_for_runs_without_any():
    vae = RunConfig(model=ModelSpec(name="vae", beta=4.0), seed=2)
    gan = RunConfig(model=ModelSpec(name="dcgan"))
    ae = RunConfig(model=ModelSpec(name="ae"))
    frame = results_frame([
        (vae, RunOutcome(vae.run_id, "done", metrics={"rate": 3.0, "recon_mse": 0.1})),
        (gan, RunOutcome(gan.run_id, "done", metrics={})),
        (ae, RunOutcome(ae.run_id, "failed", reason="non-finite loss")),
    ])
    assert list(frame.metric) == ["rate", "recon_mse", "", ""]
    assert list(frame.status) == ["done", "done", "done", "failed"]
    assert frame.higher_is_better.tolist()[:2] == [False, False]
    assert frame.beta.iloc[0] == 4.0 and math.isnan(frame.beta.iloc[2])  # GAN: no β
    assert frame.reason.iloc[3] == "non-finite loss" and frame.seed.iloc[0] == 2
