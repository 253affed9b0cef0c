"""Test-wide settings.

Hypothesis draws the same examples on every run (``derandomize``): a property test whose bound
holds for those examples cannot fail by chance in CI, where one chance failure rejects a whole
submission. Its example database is off, so no run depends on what an earlier one found.

One torch thread, here and in the CLI subprocesses the tests start (they inherit the
environment): the tiny models of the tests gain nothing from two threads, and two threads per
process on a loaded 2-core runner wait on each other, which made single steps 10–100× slower.

Background jobs: a ``latentbench`` process spends its ~5–15 s on one core, mostly importing
torch, torchmetrics and matplotlib and rendering the report, while pytest waits; so a test module
may name the processes its tests only read the results of, in a module-level
``BACKGROUND_JOBS = {fixture name: job}``. Each ``job(folder, env)`` starts as soon as the tests
are collected (those whose tests are selected), two at a time on worker threads, and a
module-scoped fixture of that name, made here for the module, waits for its result; the modules
with jobs run after the others (before benchmarks/perf, whose timings then see no background
load). Two at a time, not one: the jobs' processes (~300 s of one core in all) outlast the
in-process tests (~175 s), so with one worker the run waited ~120 s on the last jobs with a core
idle; with two the three single-threaded streams share both cores (whole run 324 s → 277 s).
A job gets its own folder and a copy of the environment made before any test ran: tests
monkeypatch ``os.environ`` and the working folder, which a process started meanwhile would
otherwise inherit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import settings

settings.register_profile("latentbench", derandomize=True, database=None)
settings.load_profile("latentbench")

os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)

#: A job: (its own empty folder, the environment for its processes) -> what the tests read.
Job = Callable[[Path, dict[str, str]], Any]


class BackgroundJobs:
    """The jobs of the collected modules, run two at a time on two worker threads."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="background-job")
        self.futures: dict[Job, Future] = {}

    def start(self, job: Job) -> None:
        if job not in self.futures:
            folder = Path(tempfile.mkdtemp(prefix=f"{job.__name__}-", dir=self.root))
            self.futures[job] = self.pool.submit(job, folder, dict(self.env))

    def result(self, job: Job) -> Any:
        self.start(job)  # a job no collected test named (its fixture used by another's)
        return self.futures[job].result()


_SESSION: dict[str, Any] = {}


def _job_fixture(name: str, job: Job) -> Any:
    @pytest.fixture(scope="module", name=name)
    def result(background: Callable[[Job], Any]) -> Any:
        return background(job)

    return result


class ModuleWithBackgroundJobs(pytest.Module):
    """A test module whose ``BACKGROUND_JOBS`` each get their fixture before its fixtures are
    read (in ``collect``, where an import error is reported as pytest reports any)."""

    def collect(self):
        for name, job in getattr(self.obj, "BACKGROUND_JOBS", {}).items():
            setattr(self.obj, f"_background_fixture_{name}", _job_fixture(name, job))
        return super().collect()


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module:
    return ModuleWithBackgroundJobs.from_parent(parent, path=module_path)


def pytest_configure(config: pytest.Config) -> None:
    """A per-session LATENTBENCH_CACHE (trained extractors, real features), never the home
    folder, in ``os.environ`` before anything runs, so that every CLI process inherits it."""
    root = Path(tempfile.mkdtemp(prefix="latentbench-tests-"))
    cache = root / "cache"
    cache.mkdir()
    _SESSION.update(root=root, cache=cache, previous_cache=os.environ.get("LATENTBENCH_CACHE"))
    os.environ["LATENTBENCH_CACHE"] = str(cache)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a property test that would not draw the same examples every run, and run the
    modules with background jobs after the others (benchmarks/perf last).

    A ``@settings(...)`` on a test overrides the profile's fields it names: one that set
    ``derandomize=False`` or a database would make its draws, and so a statistical bound's
    chance of failing, differ from run to run. This hook sees every collected test, those of
    benchmarks/perf too (their conftest loads the same profile, for a run of that folder alone).
    """
    loose = []
    for item in items:
        used = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings", None)
        if used is not None and (not used.derandomize or used.database is not None):
            loose.append(item.nodeid)
    if loose:
        raise pytest.UsageError("hypothesis tests without derandomize=True and database=None "
                                f"(tests/conftest.py): {', '.join(loose)}")

    def order(item: pytest.Item) -> int:
        if "benchmarks/perf/" in item.nodeid:
            return 2
        return 1 if hasattr(getattr(item, "module", None), "BACKGROUND_JOBS") else 0

    items.sort(key=order)  # stable: the order within each group stays as collected


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the background jobs of the selected tests, in the order the tests will run."""
    jobs = BackgroundJobs(_SESSION["root"], dict(os.environ))
    _SESSION["jobs"] = jobs
    for item in session.items:
        named = getattr(getattr(item, "module", None), "BACKGROUND_JOBS", {})
        for fixture, job in named.items():
            if fixture in getattr(item, "fixturenames", ()):
                jobs.start(job)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    jobs = _SESSION.get("jobs")
    if jobs is not None:  # a job nobody waited for (a test failed first, -x) runs to its end
        jobs.pool.shutdown(wait=True, cancel_futures=True)
    _SESSION["passed"] = exitstatus == 0


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = _SESSION.get("previous_cache")
    if previous is None:
        os.environ.pop("LATENTBENCH_CACHE", None)
    else:
        os.environ["LATENTBENCH_CACHE"] = previous
    if "root" in _SESSION and _SESSION.get("passed"):  # kept to look into after a failure
        shutil.rmtree(_SESSION["root"], ignore_errors=True)


@pytest.fixture(scope="session")
def background() -> Callable[[Job], Any]:
    """``background(job)``: the result of a module's background job (waiting for it)."""
    return _SESSION["jobs"].result


@pytest.fixture(autouse=True, scope="session")
def latentbench_cache() -> Path:
    """The session's LATENTBENCH_CACHE folder (see :func:`pytest_configure`)."""
    return _SESSION["cache"]
