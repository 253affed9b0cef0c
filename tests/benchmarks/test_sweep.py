"""Executors end to end: the local process pool and Dask run tiny suites in real processes and
give the same results as one in-process worker; failures are recorded; a killed sweep resumes.
And what a run's progress lines say: its headline scores and its slowest metrics."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from latentbench.benchmarks.run import RunOutcome
from latentbench.benchmarks.sweep import _summary, _timing_summary
from latentbench.reports.schema import EvalTimings

SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")

# Tiny runs, and tiny evaluations of every metric: the PPL, IWAE, KID and interpolation
# sample counts cut from their defaults (1,024 pairs, k = 100, 100 subsets, 16 pairs) to
# what a wiring test needs, ~3 s less evaluation a run.
TINY = """
[suite]
name = "tiny"

[data]
dataset = "mnist5k"
n_train = {n_train}
n_test = 64

[model]
latent_dim = 4
width = 4
hidden = 16

[train]
epochs = {epochs}
batch_size = 32

[eval]
samples = 4
grid_images = 4
ppl_pairs = 64
iwae_k = 8
kid_subsets = 10
interp_pairs = 4

[grid]
model = [{{ name = "ae" }}, {{ name = "vae", beta = 2.0 }}{extra}]
"""

# A plug-in model that builds (so preflight passes) but raises once it trains, in the worker.
BOOM = '''
from latentbench.models.vae import VAE


class Boom(VAE):
    def train_step(self, images, optimizers):
        raise RuntimeError("boom in the worker")
'''

# A plug-in model whose worker process dies (as under the OOM killer) the first time it trains.
CRASH_ONCE = '''
import os
from pathlib import Path

from latentbench.models.vae import VAE

MARK = Path(__file__).with_name("crashed")


class CrashOnce(VAE):
    def train_step(self, images, optimizers):
        if not MARK.exists():
            MARK.touch()
            os._exit(9)
        return super().train_step(images, optimizers)
'''


#: The metrics of the suites that compare executors: a few, with a sampled one (FID on model
#: samples) among them; every metric costs each run's evaluation, in each process, and what
#: these tests check is where the runs execute, not what they score.
EXECUTOR_METRICS = ("recon_mse", "rate", "fid")


def write_suite(folder: Path, n_train=128, epochs=1, extra="", metrics=None) -> Path:
    """TINY with ``extra`` models, scored on ``metrics`` (None: every one that applies)."""
    path = folder / "tiny.toml"
    text = TINY.format(n_train=n_train, epochs=epochs, extra=extra)
    if metrics is not None:
        names = ", ".join(f'"{name}"' for name in metrics)
        text = text.replace("grid_images = 4\n", f"grid_images = 4\nmetrics = [{names}]\n")
    path.write_text(text)
    return path


def command(*args):
    return [SCRIPT, "run", *args, "--device", "cpu", "--no-progress"]


def latentbench(*args, pythonpath=None, env=None):
    env = {**(os.environ if env is None else env), "PYTHONWARNINGS": "ignore"}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(command(*args), capture_output=True, text=True, env=env, timeout=300)


def metrics(out: Path) -> pd.DataFrame:
    """The results of finished runs, comparable across executors (suite name aside)."""
    frame = pd.read_csv(out / "results.csv")
    frame = frame[frame.status == "done"].drop(columns=["suite", "reason"])
    # A failed run's blank sample count makes the column float when read back, and its blank
    # direction makes that column object (as a target metric's blank direction does).
    frame["samples"] = frame["samples"].astype("int64")
    frame["higher_is_better"] = frame["higher_is_better"].astype(object)
    return frame.sort_values(["run_id", "metric"]).reset_index(drop=True)


# Background jobs (tests/conftest.py): the commands of the tests that only read their results
# run on the other core while other tests run.


def one_worker_run(folder, env):
    """The tiny suite run by one in-process worker: what every executor must reproduce."""
    suite = write_suite(folder, metrics=EXECUTOR_METRICS)
    result = latentbench(str(suite), "--out", str(folder / "out"), env=env)
    assert result.returncode == 0, result.stderr
    return metrics(folder / "out")


def pool_run_with_a_run_that_raises(folder, env):
    """The tiny suite and a plug-in that raises, on a pool of two worker processes."""
    (folder / "boom.py").write_text(BOOM)
    suite = write_suite(folder, extra=', { name = "boom:Boom" }', metrics=EXECUTOR_METRICS)
    out = folder / "out"
    return latentbench(str(suite), "--out", str(out), "--workers", "2", pythonpath=folder,
                       env=env), out


def runs_of_a_dying_worker(folder, env):
    """The tiny suite and a plug-in whose worker dies the first time, twice on a pool."""
    (folder / "crash.py").write_text(CRASH_ONCE)
    suite = write_suite(folder, extra=', { name = "crash:CrashOnce" }',
                        metrics=EXECUTOR_METRICS)
    out = folder / "out"
    first = latentbench(str(suite), "--out", str(out), "--workers", "2", pythonpath=folder,
                        env=env)
    first_results = pd.read_csv(out / "results.csv") if (out / "results.csv").exists() else None
    lost = [] if first_results is None else list(
        first_results[first_results.model == "crash:CrashOnce"].run_id)
    status_after_first = {run_id: (out / "runs" / run_id / "status").exists() for run_id in lost}
    again = latentbench(str(suite), "--out", str(out), "--workers", "2", pythonpath=folder,
                        env=env)
    return first, first_results, status_after_first, again, out


BACKGROUND_JOBS = {"reference": one_worker_run, "pool_run": pool_run_with_a_run_that_raises,
                   "dying_worker_runs": runs_of_a_dying_worker}





def test_a_pool_of_two_processes_matches_one_worker_and_records_a_run_that_raises(
        pool_run, reference):
    result, out = pool_run
    assert result.returncode == 1, result.stderr
    assert "[3/3]" in result.stdout and "1 failed" in result.stdout
    pd.testing.assert_frame_equal(metrics(out), reference)  # same numbers on CPU
    results = pd.read_csv(out / "results.csv").query("model != 'real-data'")
    failed = results[results.status == "failed"]
    assert list(failed.model) == ["boom:Boom"]
    assert failed.reason.iloc[0] == "RuntimeError: boom in the worker"
    status = (out / "runs" / failed.run_id.iloc[0] / "status").read_text()
    assert status == "failed: RuntimeError: boom in the worker\n"
    assert list(results.drop_duplicates("run_id").model) == ["ae", "vae", "boom:Boom"]


def test_dask_scheduler_runs_the_suite_on_its_workers(tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        out = tmp_path / "out"
        result = latentbench(str(write_suite(tmp_path, metrics=EXECUTOR_METRICS)), "--out",
                             str(out), "--executor", "dask", "--scheduler",
                             cluster.scheduler_address)
        assert result.returncode == 0, result.stderr
    pd.testing.assert_frame_equal(metrics(out), reference)


# Slow: two commands, the second starting a Dask cluster (~50 s on 2 cores). The default run
# keeps Dask (test_dask_scheduler_runs_the_suite_on_its_workers) and killed commands that
# resume (test_cli.py, test_crash_resume.py).
@pytest.mark.slow
def test_a_killed_sweep_resumes_finished_runs_untouched_on_another_executor(tmp_path):
    pytest.importorskip("distributed")
    extra = ', { name = "vae", beta = 4.0 }, { name = "vae", beta = 8.0 }'
    # Six epochs of 16 steps: the second run's training (~0.5 s) and evaluation are the window
    # in which the kill, right after the first run's status appears, must land.
    suite, out = write_suite(tmp_path, n_train=512, epochs=6, extra=extra), tmp_path / "out"
    process = subprocess.Popen(command(str(suite), "--out", str(out)), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("runs/*/status")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and any process it started
    process.wait()
    finished = {p.parent: p.stat().st_mtime_ns for p in out.glob("runs/*/model.pt")
                if (p.parent / "status").exists()}
    assert len(finished) == 1, "no run, or every run, finished before the kill"

    result = latentbench(str(suite), "--out", str(out), "--executor", "dask", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "done before" in result.stdout and "[4/4]" in result.stdout
    assert {d: (d / "model.pt").stat().st_mtime_ns for d in finished} == finished
    results = pd.read_csv(out / "results.csv").query("model != 'real-data'")
    assert results.run_id.nunique() == 4 and (results.status == "done").all()
    assert list(results.drop_duplicates("run_id").beta.fillna(0)) == [0, 2, 4, 8]  # suite order


@pytest.mark.parametrize("args, message", [
    (["--executor", "threads"], "--executor: unknown executor 'threads'; choose one of: dask"),
    (["--workers", "0"], "--workers: must be a positive integer, got 0"),
    (["--executor", "dask", "--scheduler", ""], "--scheduler: give the scheduler's address"),
    (["--scheduler", "tcp://localhost:8786"], "--scheduler: only the dask executor"),
])
def test_unusable_executor_options_exit_2_with_one_line(tmp_path, args, message, capsys):
    # In this process: main() is the script's entry point (test_cli_errors.py runs input
    # errors through the script itself too).
    from latentbench.benchmarks.cli import main

    out = tmp_path / "out"
    assert main(["run", str(write_suite(tmp_path)), "--out", str(out), *args,
                 "--device", "cpu", "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"latentbench: error: {message}")
    assert not (out / "runs").exists()


def test_dask_executor_without_dask_installed_names_the_extra(monkeypatch):
    from latentbench.benchmarks.executors import ExecutorOptions, open_executor
    from latentbench.models.registry import InputError

    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import` sees when it is absent
    needs = r"--executor: dask needs `pip install latentbench\[dask\]`"
    with pytest.raises(InputError, match=needs):
        open_executor("dask", ExecutorOptions(workers=2))


def test_a_run_whose_worker_died_is_retried_by_the_next_command(dying_worker_runs):
    first, results, status_after_first, again, out = dying_worker_runs
    assert first.returncode == 1 and results is not None, first.stderr
    lost = results[results.model == "crash:CrashOnce"]
    assert (lost.status == "failed").all() and "worker lost" in lost.reason.iloc[0]
    # No status: the run is not marked as broken, so the same command tries it again.
    assert not status_after_first[lost.run_id.iloc[0]]
    assert again.returncode == 0, again.stderr
    assert (pd.read_csv(out / "results.csv").status == "done").all()


def test_a_run_line_shows_the_headline_scores_and_the_slowest_metrics():
    metrics = {"active_units": 3.0, "fid[lenet-mnist]": 41.25, "iwae_nll": 101.5,
               "neg_elbo": 104.0, "psnr": 18.0, "recon_mse": 0.0123}
    timings = EvalTimings(total=10.0, metrics={"iwae_nll": 3.0, "fid[lenet-mnist]": 0.5,
                                               "psnr": 0.01, "ppl[lenet-mnist]": 2.0},
                          passes={"test_pass": 4.0, "samples": 0.25})
    outcome = RunOutcome("abc", "done", metrics=metrics, timings=timings)
    # Headline slots in order, -ELBO before the IWAE bound, whatever the dict's order.
    assert _summary(outcome) == "recon_mse 0.0123, fid[lenet-mnist] 41.25, neg_elbo 104, +3 more"
    assert _timing_summary(outcome) == ("slowest metrics: iwae_nll 3.00 s, ppl[lenet-mnist] "
                                        "2.00 s, fid[lenet-mnist] 0.50 s; shared passes 4.25 s "
                                        "(test_pass 4.00 s); evaluation 10.00 s")
    iwae_only = RunOutcome("abc", "done", metrics={"iwae_nll": 99.0, "rate": 2.0})
    assert _summary(iwae_only) == "iwae_nll 99, +1 more"
    assert _timing_summary(iwae_only) is None  # read back from a format-3 metrics.json
    assert _summary(RunOutcome("abc", "done", metrics={"rate": 2.0})) == "1 metric"
    assert _summary(RunOutcome("abc", "failed", "boom")) == "FAILED: boom"
