"""The ``latentbench`` console script end to end, in real subprocesses, on tiny suites; and
its start-up: the commands that need no torch do not import it."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from latentbench.benchmarks.cli import COMMANDS, main
from latentbench.benchmarks.config import config_from_tables
from latentbench.metrics import METRICS
from latentbench.models import ModelSpec, build_model
from latentbench.reports.schema import RESULTS_COLUMNS

SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")

# Tiny runs, and tiny evaluations of every metric: the PPL, IWAE, KID and interpolation
# sample counts cut from their defaults (1,024 pairs, k = 100, 100 subsets, 16 pairs) to
# what a wiring test needs, ~3 s less evaluation a run.
TINY = """
[suite]
name = "tiny"
description = "two tiny models"

[data]
dataset = "mnist5k"
n_train = 128
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
model = [{{ name = "ae" }}, {{ name = "vae", beta = 2.0 }}]
"""


def latentbench(*args, cwd=None, env=None):
    env = {**(os.environ if env is None else env), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def write_suite(tmp_path, epochs=1, text=TINY, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(text.format(epochs=epochs))
    return path


# A diverging learning rate for the second VAE of TINY, the first lr = 1e-3.
DIVERGING = TINY.replace("batch_size = 32", "batch_size = 32\nlr = 1e30").replace(
    '[{{ name = "ae" }}, ', "[")
DIVERGING = DIVERGING.replace("[grid]", '[grid]\n"train.lr" = [1e30, 1e-3]').replace(
    "batch_size = 32\nlr = 1e30", "batch_size = 32")
GAN = TINY.replace('model = [{{ name = "ae" }}, {{ name = "vae", beta = 2.0 }}]',
                   'model = [{{ name = "dcgan" }}]\n'
                   '"model.decoder" = ["transposed", "unpool-nearest"]')
#: name -> (suite text, extra arguments of ``run``): the suites whose one run several tests below
#: only read (a test that changes a folder changes a copy).
SHARED_RUNS = {"tiny": (TINY, ("--device", "cpu")), "diverging": (DIVERGING, ()), "gan": (GAN, ())}


def shared_runs(root, env):
    """name -> (the finished ``latentbench run`` of :data:`SHARED_RUNS`, its suite file, its
    --out folder): a background job (tests/conftest.py)."""

    def run(name):
        text, args = SHARED_RUNS[name]
        suite, out = write_suite(root, text=text, name=f"{name}.toml"), root / name
        return latentbench("run", str(suite), "--out", str(out), *args, env=env), suite, out

    return {name: run(name) for name in SHARED_RUNS}


BACKGROUND_JOBS = {"runs": shared_runs}



def test_run_writes_run_dirs_results_and_report_then_resumes(runs, tmp_path):
    first, suite, out = runs["tiny"]
    assert first.returncode == 0, first.stderr
    everything = pd.read_csv(out / "results.csv")
    # The real-data reference leads the file: real training images scored like samples, with
    # the same sample count as the runs and no run folder of its own.
    reference = everything[everything.model == "real-data"]
    assert everything.model.iloc[0] == "real-data" and (reference.status == "done").all()
    assert {"fid[lenet-mnist]", "precision[lenet-mnist]", "checkerboard"} <= set(reference.metric)
    assert (reference.samples == 64).all()  # n_test, the runs' sample count
    assert not (out / "runs" / reference.run_id.iloc[0]).exists()
    results = everything[everything.model != "real-data"]
    assert {"run_id", "suite", "dataset", "model", "decoder", "beta", "latent_dim", "seed",
            "metric", "value", "higher_is_better", "status"} <= set(results.columns)
    assert (results.status == "done").all() and set(results.suite) == {"tiny"}
    by_model = results.groupby("model").metric.apply(set)
    assert {"recon_mse", "recon_bce", "distortion", "psnr", "ssim"} <= by_model["ae"]
    assert {"rate", "neg_elbo"} <= by_model["vae"] and "rate" not in by_model["ae"]
    assert results[results.model == "ae"].beta.isna().all()
    assert (results[results.model == "vae"].beta == 2.0).all()

    for run_id in results.run_id.unique():
        run_dir = out / "runs" / run_id
        assert (run_dir / "status").read_text().strip() == "done"
        config = json.loads((run_dir / "config.json").read_text())
        # config.json is the resolved config: it rebuilds the same run id.
        assert config["train"]["epochs"] == 1 and config["model"]["latent_dim"] == 4
        assert config_from_tables(config["suite"], config).run_id == run_id
        metrics = json.loads((run_dir / "metrics.json").read_text())
        rows = results[results.run_id == run_id]
        assert set(metrics["values"]) == set(rows.metric) and not metrics["errors"]
        assert set(metrics["timings"]["metrics"]) == set(rows.metric)
        assert "test_pass" in metrics["timings"]["passes"]
        assert dict(zip(rows.metric, rows.samples, strict=True)) == metrics["samples"]
        for image in ("reconstructions.png", "samples.png"):
            assert (run_dir / image).read_bytes().startswith(b"\x89PNG")
        assert not (run_dir / "checkpoint.pt").exists()
        state = torch.load(run_dir / "model.pt", weights_only=True)
        model = build_model(ModelSpec(**config["model"]), (1, 28, 28))
        model.load_state_dict(state)  # the state_dict is complete and loads strictly

    report = (out / "report.html").read_text()
    assert "tiny" in report and report.count("data:image/png;base64,") >= 4
    assert report.count("Evaluation time: ") == 2
    # Each run's line leads with its headline scores, and the line below it names its
    # slowest metrics.
    lines = first.stdout.splitlines()
    runs = [i for i, line in enumerate(lines) if line.startswith(("[1/2]", "[2/2]"))]
    assert len(runs) == 2 and all(": recon_mse " in lines[i] for i in runs)
    assert any(", neg_elbo " in lines[i] for i in runs)  # the VAE's
    assert all(lines[i + 1].startswith("    slowest metrics: ") for i in runs)

    out = shutil.copytree(out, tmp_path / "out")  # with the files' times: the shared one stays
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.pt")}
    again = latentbench("run", str(suite), "--out", str(out), "--device", "cpu")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.pt")} == mtimes
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), everything)


@pytest.mark.parametrize("edit, field", [
    (('decoder = "transposed"', 'decoder = "deconv"'), "model.decoder"),
    (("n_train = 128", "n_train = -3"), "data.n_train"),
    (("batch_size = 32", "batch_sise = 32"), "train.batch_sise"),
    (('dataset = "mnist5k"', 'dataset = "mnist"'), "data.root"),
])
def test_bad_input_exits_2_with_one_line_and_computes_nothing(tmp_path, edit, field, capsys):
    # In this process (test_cli_errors.py has such cases through the script, too).
    text = TINY.replace("[model]", '[model]\ndecoder = "transposed"').replace(*edit)
    out = tmp_path / "out"
    suite = write_suite(tmp_path, text=text)
    assert main(["run", str(suite), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"latentbench: error: {suite}: {field}")
    assert not (out / "runs").exists()


def test_unknown_suite_and_device_exit_2(tmp_path, capsys):
    assert main(["run", "no-such-suite", "--out", str(tmp_path)]) == 2
    assert "suite: unknown suite" in capsys.readouterr().err
    assert main(["run", "smoke", "--device", "tpu", "--out", str(tmp_path)]) == 2
    assert "--device" in capsys.readouterr().err


def test_a_diverging_run_fails_alone_and_the_suite_exits_1(runs):
    result, _, out = runs["diverging"]
    assert result.returncode == 1, result.stderr
    results = pd.read_csv(out / "results.csv")
    failed = results[results.status == "failed"]
    assert len(failed) == 1 and "non-finite loss" in failed.reason.iloc[0]
    assert (results[results.status == "done"].metric == "rate").any()
    status = (out / "runs" / failed.run_id.iloc[0] / "status").read_text()
    assert status.startswith("failed: non-finite loss")
    assert "failed" in (out / "report.html").read_text().lower()


def check_a_killed_run(folder, env):
    """A run killed after its first checkpoint resumes from it and ends as an uninterrupted run
    does. Only recon_mse: the test compares weights and losses, and the evaluation of every
    metric cost each finished run seconds. The kill comes after the first of 8 epochs of 32
    steps: the 7 left (~1 s) are the window in which it must land."""
    text = TINY.replace('model = [{{ name = "ae" }}, {{ name = "vae", beta = 2.0 }}]',
                        'model = [{{ name = "vae" }}]').replace("n_train = 128", "n_train = 1024")
    text = text.replace("batch_size = 32", "batch_size = 32\ncheckpoint_seconds = 0")
    text = text.replace("grid_images = 4", 'grid_images = 4\nmetrics = ["recon_mse"]')
    suite = write_suite(folder, epochs=8, text=text)
    killed, straight = folder / "killed", folder / "straight"
    process = subprocess.Popen([SCRIPT, "run", str(suite), "--out", str(killed)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(killed.glob("runs/*/checkpoint.pt")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (run_dir,) = killed.glob("runs/*")
    assert not (run_dir / "status").exists(), "the run finished before it could be killed"
    resumed = latentbench("run", str(suite), "--out", str(killed), env=env)
    assert resumed.returncode == 0 and "resuming after epoch" in resumed.stdout
    uninterrupted = latentbench("run", str(suite), "--out", str(straight), env=env)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    a = torch.load(run_dir / "model.pt", weights_only=True)
    b = torch.load(straight / "runs" / run_dir.name / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k]
               for k in a)

    def losses(folder):
        history = json.loads((folder / "runs" / run_dir.name / "train.json").read_text())
        return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]

    assert losses(killed) == losses(straight) and len(losses(killed)) == 8


def killed_run(folder, env):
    """:func:`check_a_killed_run` as a background job (tests/conftest.py): the exception it
    raised, or None, for the test to raise."""
    try:
        check_a_killed_run(folder, env)
    except BaseException as error:
        return error
    return None


BACKGROUND_JOBS["killed_run_error"] = killed_run



def test_a_killed_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one(
        killed_run_error):
    if killed_run_error is not None:
        raise killed_run_error


@pytest.mark.parametrize("kind, expected", [
    ("models", ["ae", "vae"]), ("decoders", ["transposed", "unpool-nearest"]),
    ("metrics", ["recon_mse", "recon_bce", "rate", "distortion", "neg_elbo"]),
    ("datasets", ["mnist5k", "lines", "shapes", "mnist", "fashion-mnist", "cifar10"]),
    ("suites", ["smoke", "quick", "priors", "priors-binarised"]),
    ("priors", ["normal", "mog", "vamp", "flow"]),
])
def test_list(kind, expected, capsys):
    assert main(["list", kind]) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert set(expected) <= names


def test_report_command_rebuilds_the_report_and_rejects_an_empty_dir(runs, tmp_path, capsys):
    # In this process: every `run` above renders its report through the script, and
    # test_cli_errors.py runs `report` through it too.
    assert main(["report", str(tmp_path)]) == 2
    assert "results.csv" in capsys.readouterr().err
    out = shutil.copytree(runs["tiny"][2], tmp_path / "out")
    (out / "report.html").unlink()
    assert main(["report", str(out), "--format", "html,latex,markdown,csv"]) == 0
    printed = capsys.readouterr().out
    assert "tiny" in (out / "report.html").read_text()
    for table in ("table.tex", "table.md", "table.csv"):
        assert (out / table).is_file(), printed


def test_compare_through_the_script_passes_a_run_against_itself(runs):
    results = runs["tiny"][2] / "results.csv"
    result = latentbench("compare", str(results), str(results))
    assert result.returncode == 0, result.stdout + result.stderr


def _mean_image_mse(n_test):
    """MSE of the best constant reconstruction (the mean test image): what learning must beat."""
    from latentbench.benchmarks.data import DataSpec, load_dataset

    test = load_dataset(DataSpec(dataset="mnist5k", n_test=n_test)).test
    return (test - test.mean(0)).square().mean().item()


# Slow, both: the smoke suite alone took a tenth of the default run (~65 s on 2 cores). The
# default run keeps the wiring of `run` (the tiny suites above); shipped suites parse in
# test_suite.py.
@pytest.mark.slow
@pytest.mark.parametrize("suite", ["smoke", "quick"])
def test_shipped_suite_runs_and_its_models_learn(tmp_path, suite):
    out = tmp_path / suite
    result = latentbench("run", suite, "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    results = pd.read_csv(out / "results.csv").query("model != 'real-data'")
    n_test = 256 if suite == "smoke" else None
    mse = results[results.metric == "recon_mse"].value
    assert len(mse) == results.run_id.nunique() and (mse < 0.8 * _mean_image_mse(n_test)).all()
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 2 * results.run_id.nunique()


def test_a_gan_suite_has_no_encoder_metrics_but_its_runs_and_samples_are_reported(runs):
    result, _, out = runs["gan"]
    assert result.returncode == 0, result.stderr
    results = pd.read_csv(out / "results.csv").query("model != 'real-data'")
    # Absent, never zero: of the registered metrics only those of samples and decoded codes
    # apply.
    sample_based = {name for name, m in METRICS.items()
                    if m.needs <= {"sample", "decode"} and m.default and m.datasets is None}
    assert {key.split("[")[0] for key in results.metric} == sample_based
    assert "fid[lenet-mnist]" in set(results.metric) and (results.status == "done").all()
    assert results.run_id.nunique() == 2
    for run_id in results.run_id:
        assert not (out / "runs" / run_id / "reconstructions.png").exists()
        assert (out / "runs" / run_id / "samples.png").exists()
    report = (out / "report.html").read_text()
    assert "Decoders side by side" in report and "no encoder" in report


@pytest.mark.slow
@pytest.mark.parametrize("suite", ["decoders", "gan"])
def test_model_zoo_suites_complete(tmp_path, suite):
    result = latentbench("run", suite, "--out", str(tmp_path / suite), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "Decoders side by side" in (tmp_path / suite / "report.html").read_text()


def write_results_csv(path, recon_mse):
    """A results.csv of two seeds of one VAE, by hand with the schema's columns."""
    rows = [{"run_id": f"run{seed}", "suite": "tiny", "dataset": "mnist5k", "model": "vae",
             "decoder": "transposed", "beta": 1.0, "latent_dim": 16, "seed": seed,
             "metric": "recon_mse", "value": recon_mse + 0.001 * seed, "samples": 1000,
             "higher_is_better": False, "status": "done", "reason": ""} for seed in (0, 1)]
    pd.DataFrame(rows, columns=list(RESULTS_COLUMNS)).to_csv(path, index=False)
    return str(path)


def test_help_list_suites_and_compare_on_csvs_import_no_torch(tmp_path):
    baseline = write_results_csv(tmp_path / "baseline.csv", 0.02)
    worse = write_results_csv(tmp_path / "worse.csv", 0.03)
    code = f"""
import contextlib, io, sys
from latentbench.benchmarks.cli import build_parser, main
build_parser()
codes = []
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    for argv in (["--help"], ["compare", "--help"]):
        try:
            main(argv)
        except SystemExit as exit:
            codes.append(exit.code)
    codes.append(main(["list", "suites"]))
    codes.append(main(["compare", {baseline!r}, {baseline!r}]))
    codes.append(main(["compare", {baseline!r}, {worse!r}]))
    codes.append(main(["compare", {baseline!r}, "missing.csv"]))
print(codes, "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    # Exit codes: help, help, list, a passed gate, a failed gate, unusable input; no torch.
    assert done.stdout.strip() == "[0, 0, 0, 0, 1, 2] False", done.stderr


class RecordingCommands:
    """Stands in for argparse's subparsers: records each command's one-line help."""

    def __init__(self):
        self.help = {}

    def add_parser(self, name, **settings):
        self.help[name] = settings.get("help")
        return argparse.ArgumentParser(prog=f"latentbench {name}")


def test_the_help_of_bench_and_compare_is_the_one_their_modules_give():
    from latentbench.benchmarks.bench import add_bench_command
    from latentbench.reports.compare import add_compare_command

    commands = RecordingCommands()
    add_bench_command(commands)
    add_compare_command(commands)
    assert commands.help == {name: COMMANDS[name][0] for name in ("bench", "compare")}


@pytest.mark.parametrize("argv, expected", [
    (["--help"], ["{run,eval,score,report,features,list,bench,compare}",
                  "regression gate: fail when"]),
    (["compare", "--help"], ["Compare two results.csv files", "--tolerances FILE", "--k K"]),
    (["bench", "--help"], ["--repeats REPEATS", "timed calls (default 10)", "(default 3)"]),
    (["run", "--help"], ["where runs execute: dask, local (default local"]),
    (["features", "train", "--help"], ["training epochs (default 15)", "(default 0)"]),
    (["list", "--help"], ["{datasets,decoders,encoders,features,likelihoods,metrics,models,"]),
])
def test_each_command_shows_its_arguments_when_asked(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps at the terminal width
    assert exit.value.code == 0 and all(" ".join(text.split()) in out for text in expected), out


def test_usage_errors_of_a_command_name_its_arguments(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["bench", "--repeats", "x"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and "usage: latentbench bench" in err and "--repeats" in err
    assert "argument --repeats: invalid int value: 'x'" in err
