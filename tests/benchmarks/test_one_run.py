"""``latentbench eval`` and ``latentbench score``: models trained elsewhere and sample files in
the same results folder, report and LaTeX table as a suite's runs.

The README's section "Score a model you trained elsewhere" is run as written, line by line, from
an empty folder outside the repo, through the real console script.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentbench.benchmarks.cli import main

REPO = Path(__file__).resolve().parents[2]
SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")
SECTION = "## Score a model you trained elsewhere"
FILE_BLOCK = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```', re.S | re.M)
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)

TINY_SUITE = """
[suite]
name = "tiny"
[data]
dataset = "mnist5k"
n_train = 256
n_test = 128
[model]
name = "vae"
latent_dim = 4
width = 8
hidden = 32
[train]
epochs = 1
batch_size = 64
[eval]
samples = 16
ppl_pairs = 32
iwae_k = 5
kid_subsets = 10
"""
TINY_SETTINGS = ["data.n_train=256", "data.n_test=128", "model.latent_dim=4", "model.width=8",
                 "model.hidden=32", "train.batch_size=64", "eval.samples=16",
                 "eval.ppl_pairs=32", "eval.iwae_k=5", "eval.kid_subsets=10"]


def readme_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    return text[start:text.index("\n## ", start + len(SECTION))]


def shell(command, cwd, env):
    env = {**env, "PYTHONWARNINGS": "ignore",
           "PATH": f"{Path(SCRIPT).parent}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.run(command, shell=True, capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def readme_commands(folder, env):
    """The section's files written to ``folder`` and its commands run there in order:
    (files, [(command, process)], folder)."""
    files = dict(FILE_BLOCK.findall(readme_section()))
    for name, body in files.items():
        (folder / name).write_text(body, encoding="utf-8")
    commands = [line.strip() for block in BASH_BLOCK.findall(readme_section())
                for line in block.strip().splitlines()]
    return files, [(command, shell(command, folder, env)) for command in commands], folder


def trained_then_evaluated(folder, env):
    """A tiny suite trained by ``latentbench run``, then its model.pt scored by ``eval`` into
    the same folder, then the suite run again: (processes, folder)."""
    (folder / "tiny.toml").write_text(TINY_SUITE)
    runs = [shell("latentbench run tiny.toml --out out --no-progress", folder, env)]
    (run_dir,) = (folder / "out" / "runs").glob("*")
    sets = " ".join(f"--set {s}" for s in TINY_SETTINGS)
    runs.append(shell(f"latentbench eval vae --dataset mnist5k --weights {run_dir}/model.pt "
                      f"{sets} --out out --no-progress", folder, env))
    runs.append(shell("latentbench run tiny.toml --out out --no-progress", folder, env))
    return runs, run_dir.name, folder


BACKGROUND_JOBS = {"readme_run": readme_commands, "evaluated_run": trained_then_evaluated}


def test_the_readme_section_runs_as_written_and_mixes_in_one_table(readme_run):
    files, processes, folder = readme_run
    assert not folder.resolve().is_relative_to(REPO)
    assert set(files) == {"my_training.py", "my_pythae.py", "my_samples.py", "my_gan.py"}
    for command, process in processes:
        assert process.returncode == 0, (command, process.stderr[-3000:])
    out = folder / "runs" / "mine"
    results = pd.read_csv(out / "results.csv")
    models = set(results.model)
    assert any(re.fullmatch(r"vae \(weights [0-9a-f]{8}\)", m) for m in models), models
    assert any(re.fullmatch(r"pythae:VAE \([0-9a-f]{8}\)", m) for m in models), models
    assert any(re.fullmatch(r"samples:samples.npy \([0-9a-f]{8}\)", m) for m in models), models
    assert {"my_gan:MyGAN", "real-data"} <= models
    assert (results.status == "done").all()
    samples = results[results.model.str.startswith("samples:")]
    assert set(samples.metric) >= {"fid[lenet-mnist]", "kid[lenet-mnist]", "checkerboard"}
    assert not set(samples.metric) & {"recon_mse", "rate", "ppl[lenet-mnist]"}  # absent
    gan = results[results.model.eq("my_gan:MyGAN")]
    assert not set(gan.metric) & {"recon_mse", "ppl[lenet-mnist]", "flops_per_img"}
    latex = (out / "table.tex").read_text()
    for name in ("pythae:VAE", "samples:samples.npy", r"my\_gan:MyGAN", "vae (weights"):
        assert name in latex, name
    html = (out / "report.html").read_text()
    assert "pythae:VAE" in html and "samples:samples.npy" in html


def test_weights_of_a_finished_run_score_identically_and_survive_a_rerun(evaluated_run):
    processes, trained_id, folder = evaluated_run
    for process in processes:
        assert process.returncode == 0, process.stderr[-3000:]
    out = folder / "out"
    results = pd.read_csv(out / "results.csv")
    evaluated = results[results.suite.eq("eval") & results.model.ne("real-data")]
    trained = results[results.run_id.eq(trained_id)]
    assert set(evaluated.model) == {next(m for m in evaluated.model if "(weights" in m)}
    assert len(evaluated) == len(trained) > 20
    ours = json.loads(next(out.glob(f"runs/{evaluated.run_id.iloc[0]}/metrics.json"))
                      .read_text())
    theirs = json.loads((out / "runs" / trained_id / "metrics.json").read_text())
    assert ours["values"] == theirs["values"]  # bit for bit: same weights, seed, threads
    assert ours["std_errors"] == theirs["std_errors"]
    assert json.loads((out / "runs" / evaluated.run_id.iloc[0] / "train.json").read_text()) == []


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p / "s.npy", np.zeros((4, 3, 28, 28), np.uint8)),
     r"samples are \[N, 3, 28, 28\]"),
    (lambda p: np.save(p / "s.npy", np.full((4, 1, 28, 28), 7.0, np.float32)),
     r"must lie in \[0, 1\]"),
    (lambda p: (p / "s.npy").write_bytes(b"junk"), "cannot read"),
])
def test_score_refuses_bad_samples_with_one_line_and_exit_2(tmp_path, capsys, make, message):
    make(tmp_path)
    code = main(["score", str(tmp_path / "s.npy"), "--dataset", "mnist5k", "--out",
                 str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert re.search(f"model.options.path: .*{message}", err), err
    assert not (tmp_path / "out").exists()


def test_too_few_samples_lose_only_the_metrics_that_need_more(tmp_path, capsys):
    np.save(tmp_path / "few.npy", np.random.default_rng(0).integers(
        0, 256, (4, 1, 28, 28), dtype=np.uint8))
    code = main(["score", str(tmp_path / "few.npy"), "--dataset", "mnist5k", "--out",
                 str(tmp_path / "out"), "--no-progress", "--workers", "1"])
    assert code == 0
    (metrics,) = (tmp_path / "out" / "runs").glob("*/metrics.json")
    document = json.loads(metrics.read_text())
    assert document["samples"]["fid[lenet-mnist]"] == 4
    assert "checkerboard" in document["values"]
    assert "more than k = 5" in document["errors"]["density[lenet-mnist]"]
    assert "precision[lenet-mnist]" in document["values"]


def test_eval_refuses_training_a_model_scored_as_loaded(tmp_path, capsys):
    np.save(tmp_path / "s.npy", np.zeros((4, 1, 28, 28), np.uint8))
    code = main(["eval", "samples", "--dataset", "mnist5k", "--set",
                 f"model.options.path={tmp_path / 's.npy'}", "--set", "train.epochs=3",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "train.epochs: model 'samples' is scored as loaded" in capsys.readouterr().err
    code = main(["eval", "vae", "--dataset", "mnist5k", "--set", "model.nope=1"])
    assert code == 2 and "model.nope: unknown key" in capsys.readouterr().err
