"""Crash safety end to end, with real processes: SIGKILL at random moments then resume, a full
disk, and the same results from the same seeds.

Each kill takes down the whole process group of ``latentbench run`` at a seeded random moment
(training, evaluation, the writing of results.csv or the report); the same command run again
must finish every run, train no finished run a second time, leave no temporary file behind and
reproduce an uninterrupted run bit for bit.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import torch

SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")
EPOCHS = 3

# Four runs of three epochs, a checkpoint after every epoch: about 7 s uninterrupted on 2 cores.
SUITE = f"""
[suite]
name = "crash"
description = "four tiny runs to kill"

[data]
dataset = "mnist5k"
n_train = 128
n_test = 64

[model]
latent_dim = 4
width = 4
hidden = 16

[train]
epochs = {EPOCHS}
batch_size = 32
checkpoint_seconds = 0

[eval]
samples = 4
grid_images = 4
metrics = ["recon_mse", "rate", "fid"]

[grid]
model = [{{ name = "ae" }}, {{ name = "vae", beta = 2.0 }}]
seed = [0, 1]
"""


def command(suite: Path, out: Path) -> list[str]:
    return [SCRIPT, "run", str(suite), "--out", str(out), "--device", "cpu", "--no-progress"]


def run_to_completion(suite: Path, out: Path, env: dict[str, str] | None = None
                      ) -> subprocess.CompletedProcess[str]:
    env = {**(os.environ if env is None else env), "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command(suite, out), capture_output=True, text=True, env=env,
                          timeout=600)


#: Files whose appearance or rewrite marks progress through a sweep: a checkpoint per epoch, a
#: run's metrics and status, the report at the end. Not results.csv: it is rewritten as finished
#: runs are read back too, which is no progress.
PROGRESS_FILES = ("runs/*/checkpoint.pt", "runs/*/metrics.json", "runs/*/status", "report.html")


def progress(out: Path) -> frozenset[tuple[str, int]]:
    """A fingerprint of the progress files in ``out``: it changes at every step of a sweep."""
    found = set()
    for pattern in PROGRESS_FILES:
        for path in out.glob(pattern):
            try:
                found.add((str(path), path.stat().st_mtime_ns))
            except FileNotFoundError:  # a checkpoint deleted as its run finished
                pass
    return frozenset(found)


def run_and_kill(suite: Path, out: Path, rng: random.Random,
                 env: dict[str, str] | None = None) -> bool:
    """Start the command in its own process group and SIGKILL the whole group (a pool's workers
    too, as the OOM killer or a lost node would) at a random moment after it has made 1–3 steps
    of progress, so that kills spread over training, evaluation and the writes of results.csv
    and the report whatever the machine's speed. Returns whether the kill hit it running."""
    # Up to 0.15 s on: after its first, a run of this suite takes about 0.3 s.
    steps, extra = rng.randint(1, 3), rng.uniform(0.0, 0.15)
    process = subprocess.Popen(command(suite, out), stdout=subprocess.DEVNULL, env=env,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    seen, changes, deadline = progress(out), 0, time.monotonic() + 300
    while changes < steps and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
        now = progress(out)
        changes += now != seen
        seen = now
    time.sleep(extra)
    hit = process.poll() is None
    if hit:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return hit


def finished_runs(out: Path) -> dict[str, tuple[int, int]]:
    """Run id → identity (inode, mtime) of the model.pt of every run with a status."""
    found = {}
    for status in out.glob("runs/*/status"):
        assert status.read_text().strip() == "done", status.read_text()
        model = status.parent / "model.pt"
        found[status.parent.name] = (model.stat().st_ino, model.stat().st_mtime_ns)
    return found


def check_readable(out: Path) -> None:
    """Everything a later step reads parses, whatever moment the kill hit."""
    for metrics in out.glob("runs/*/metrics.json"):
        assert json.loads(metrics.read_text())["format"]
    for history in out.glob("runs/*/train.json"):
        assert isinstance(json.loads(history.read_text()), list)
    if (out / "results.csv").exists():
        pd.read_csv(out / "results.csv")


def temporaries(out: Path) -> list[Path]:
    return sorted(out.rglob(".*.tmp"))


def same_state_dicts(a: Path, b: Path) -> bool:
    x, y = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return x.keys() == y.keys() and all(
        torch.equal(x[k], y[k]) if isinstance(x[k], torch.Tensor) else x[k] == y[k] for k in x)


def values(out: Path) -> pd.DataFrame:
    """results.csv in a fixed order, timing-free (timing metrics are off unless named)."""
    frame = pd.read_csv(out / "results.csv")
    return frame.sort_values(["run_id", "metric"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "crash.toml"
    path.write_text(SUITE)
    return path


@dataclass
class KillReport:
    """What the kills did: how many hit a running command, runs never finished, finished runs
    trained again, and how many runs had finished after each attempt (to see them spread)."""

    kills: int = 0
    runs_lost: int = 0
    trained_twice: int = 0
    finished_after_attempts: list[int] = field(default_factory=list)


def kill_and_resume(suite: Path, reference: Path, out: Path, attempts: int, seed: int,
                    env: dict[str, str] | None = None) -> KillReport:
    """Start the command ``attempts`` times, killing it at a seeded random moment (once the
    sweep is complete an attempt may end before its kill), then run it to completion and compare
    every run with ``reference``."""
    rng = random.Random(seed)
    report = KillReport()
    kept: dict[str, tuple[int, int]] = {}
    for _ in range(attempts):
        report.kills += run_and_kill(suite, out, rng, env)
        check_readable(out)
        now = finished_runs(out)
        report.finished_after_attempts.append(len(now))
        report.trained_twice += sum(now.get(run, ident) != ident for run, ident in kept.items())
        kept.update(now)

    result = run_to_completion(suite, out, env)
    assert result.returncode == 0, result.stderr
    final = finished_runs(out)
    report.trained_twice += sum(final[run] != ident for run, ident in kept.items())
    expected = {p.name for p in reference.glob("runs/*")}
    report.runs_lost = len(expected - set(final))

    assert temporaries(out) == []
    for run_id in expected:
        run_dir = out / "runs" / run_id
        epochs = [entry["epoch"] for entry in json.loads((run_dir / "train.json").read_text())]
        assert epochs == list(range(1, EPOCHS + 1)), (run_id, epochs)
        assert same_state_dicts(run_dir / "model.pt", reference / "runs" / run_id / "model.pt")
        ours = json.loads((run_dir / "metrics.json").read_text())["values"]
        theirs = json.loads((reference / "runs" / run_id / "metrics.json").read_text())["values"]
        assert ours == theirs, run_id
    pd.testing.assert_frame_equal(values(out), values(reference))
    return report


def uninterrupted_runs(root: Path, env: dict[str, str]) -> list[Path]:
    """The suite run twice to completion: the reference the kill tests compare with, and a
    second run that must reproduce it (their --out folders). A background job."""
    suite = root / "crash.toml"
    suite.write_text(SUITE)
    outs = []
    for name in ("reference", "again"):
        done = run_to_completion(suite, root / name, env)
        assert done.returncode == 0, done.stderr
        outs.append(root / name)
    return outs



@pytest.fixture(scope="module")
def reference(uninterrupted: list[Path]) -> Path:
    return uninterrupted[0]


# Slow, with the variants below: six processes (~50 s on 2 cores). The default run keeps real
# kills that resume exactly: test_cli.py kills a run mid-training, test_sweep.py a pool worker,
# and the full disk below stops a sweep mid-write.
@pytest.mark.slow
def test_killed_at_random_moments_the_suite_resumes_to_the_uninterrupted_result(
        suite: Path, reference: Path, tmp_path: Path):
    report = kill_and_resume(suite, reference, tmp_path / "out", attempts=5, seed=7)
    print(f"\nkill-and-resume: {report}")
    assert (report.runs_lost, report.trained_twice) == (0, 0) and report.kills >= 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_many_times_the_suite_still_resumes_exactly(
        suite: Path, reference: Path, tmp_path: Path, seed: int):
    report = kill_and_resume(suite, reference, tmp_path / "out", attempts=15, seed=seed)
    print(f"\nkill-and-resume: {report}")
    assert (report.runs_lost, report.trained_twice) == (0, 0) and report.kills >= 6


def test_the_same_suite_and_seeds_give_identical_results(uninterrupted: list[Path]):
    reference, again = uninterrupted
    pd.testing.assert_frame_equal(values(again), values(reference))
    for model in reference.glob("runs/*/model.pt"):
        assert same_state_dicts(model, again / "runs" / model.parent.name / "model.pt")


def can_mount_tmpfs(folder: Path) -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        return False
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode == 0:
        subprocess.run(["umount", str(folder)], check=True)
    return mounted.returncode == 0


def full_disk(root: Path, env: dict[str, str]) -> BaseException | None:
    """The full-disk check, as a background job (tests/conftest.py): the exception it raised (a
    failed assertion, or the skip where no small disk can be made), for its test to raise."""
    try:
        check_a_full_disk(root, env)
    except BaseException as error:  # pytest.skip's exception is a BaseException
        return error
    return None


def check_a_full_disk(root: Path, env: dict[str, str]) -> None:
    suite = root / "crash.toml"
    suite.write_text(SUITE)
    disk = root / "disk"
    disk.mkdir()
    if not can_mount_tmpfs(disk):
        pytest.skip("needs root and mount -t tmpfs to make a small disk")
    # 400 KiB: room for a run or two (~130 KiB each), not for all four and the report.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)], check=True)
    try:
        out = disk / "out"
        full = run_to_completion(suite, out, env)
        assert full.returncode == 2, full.stdout + full.stderr
        (line,) = full.stderr.strip().splitlines()
        assert line.startswith("latentbench: error: no space left on device while writing "
                               f"{out}"), line
        assert line.endswith("; free space and run the same command again")
        done_before = finished_runs(out)  # asserts every status there says done, none failed
        check_readable(out)

        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        resumed = run_to_completion(suite, out, env)
        assert resumed.returncode == 0, resumed.stderr
        after = finished_runs(out)
        assert len(after) == 4 and all(after[run] == done_before[run] for run in done_before)
        assert temporaries(out) == []
    finally:
        time.sleep(0.1)
        subprocess.run(["umount", str(disk)], check=False)


#: The processes of this module's tests that only read what they leave, run on the other core
#: while other tests run (tests/conftest.py).
BACKGROUND_JOBS = {"uninterrupted": uninterrupted_runs, "full_disk_error": full_disk}



def test_a_full_disk_stops_with_one_line_and_the_same_command_resumes(full_disk_error):
    if full_disk_error is not None:
        raise full_disk_error
