"""results.csv rows: one per run × metric; a run without metrics still has its row; what the
harness writes, the reports' reader reads back unchanged."""

import math
from pathlib import Path

import pandas as pd

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.results import results_frame, write_results
from latentbench.benchmarks.run import RunOutcome
from latentbench.models import ModelSpec
from latentbench.reports.schema import RESULTS_COLUMNS, read_results_csv


def three_runs() -> list[tuple[RunConfig, RunOutcome]]:
    vae = RunConfig(model=ModelSpec(name="vae", beta=4.0), seed=2)
    gan = RunConfig(model=ModelSpec(name="dcgan"))
    ae = RunConfig(model=ModelSpec(name="ae"))
    return [
        (vae, RunOutcome(vae.run_id, "done", metrics={"rate": 3.0, "recon_mse": 0.1},
                         samples={"rate": 1000, "recon_mse": 1000})),
        (gan, RunOutcome(gan.run_id, "done", metrics={})),
        (ae, RunOutcome(ae.run_id, "failed", reason="non-finite loss")),
    ]


def test_rows_per_metric_and_for_runs_without_any():
    frame = results_frame(three_runs())
    assert tuple(frame.columns) == RESULTS_COLUMNS
    assert frame.metric.fillna("").tolist() == ["rate", "recon_mse", "", ""]
    assert list(frame.status) == ["done", "done", "done", "failed"]
    assert frame.higher_is_better.tolist()[:2] == [False, False]
    assert frame.beta.iloc[0] == 4.0 and math.isnan(frame.beta.iloc[2])  # GAN: no β
    assert frame.reason.iloc[3] == "non-finite loss" and frame.seed.iloc[0] == 2


def test_the_reader_reads_back_what_the_writer_wrote(tmp_path: Path):
    written = write_results(tmp_path / "results.csv", three_runs())
    read = read_results_csv(tmp_path / "results.csv")
    pd.testing.assert_frame_equal(read, written)
    assert read.samples.tolist()[:2] == [1000, 1000] and read.samples.isna().tolist()[2:] == [
        True, True]
    assert read.higher_is_better.isna().tolist() == [False, False, True, True]


def test_a_prior_joins_the_model_name_and_normal_keeps_the_old_name_and_run_id():
    """``normal`` by name is the default: one run id and the plain name ``vae``, so every run
    and table from before priors existed stays as it was; another prior is named in the row."""
    plain = RunConfig(model=ModelSpec(name="vae"))
    named = RunConfig(model=ModelSpec(name="vae", prior="normal"))
    assert named.run_id == plain.run_id and named.model.prior is None
    runs = [(RunConfig(model=ModelSpec(name="vae", prior=prior, prior_components=k)),
             RunOutcome("x", "done", metrics={"rate": 1.0}))
            for prior, k in ((None, None), ("mog", None), ("vamp", 20), ("flow", None))]
    assert list(results_frame(runs)["model"]) == [
        "vae", "vae (prior mog, K=10)", "vae (prior vamp, K=20)", "vae (prior flow)"]
    assert len({config.run_id for config, _ in runs}) == 4
