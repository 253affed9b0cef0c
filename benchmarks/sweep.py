"""Driving a suite: check every config first, then run them on an executor (see
:mod:`latentbench.benchmarks.executors`), rewriting ``results.csv`` as each run completes.

``OUT/suite.json`` records the suite's name and description for the report's heading."""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.executors import (
    ExecutorOptions,
    Pool,
    default_workers,
    open_executor,
    run_task,
)
from latentbench.benchmarks.reference import suite_references
from latentbench.benchmarks.results import rows_to_keep, run_label, write_results
from latentbench.benchmarks.run import RunOutcome, execute_run, preflight
from latentbench.benchmarks.run_folder import RunFolder
from latentbench.benchmarks.storage import is_disk_full
from latentbench.benchmarks.suite import Suite, in_file
from latentbench.models.registry import InputError
from latentbench.reports.atomic import remove_stray_temporaries, write_json_atomic
from latentbench.reports.families import RUN_HEADLINE, headline_keys
from latentbench.reports.schema import RESULTS_FILE, STATUS_DONE, STATUS_FAILED, SUITE_FILE

#: How many of a run's slowest metrics its progress lines name.
SLOWEST_SHOWN = 3


def _summary(outcome: RunOutcome) -> str:
    """The run's scores for its progress line: the :data:`RUN_HEADLINE` ones it has, and how
    many others it has (all of them are in results.csv and the report)."""
    if outcome.status != STATUS_DONE:
        return f"FAILED: {outcome.reason}"
    shown = headline_keys(outcome.metrics, RUN_HEADLINE)
    parts = [f"{key} {outcome.metrics[key]:.4g}" for key in shown]
    others = len(outcome.metrics) - len(shown)
    if others:
        parts.append(f"+{others} more" if shown else f"{others} metric{'s' * (others != 1)}")
    return ", ".join(parts) or "no metrics"


def _timing_summary(outcome: RunOutcome) -> str | None:
    """Where the run's evaluation spent its time, for the line under its progress line: its
    :data:`SLOWEST_SHOWN` slowest metrics, the shared passes (a metric's seconds exclude them)
    with the slowest of them, and the total; ``None`` when nothing was timed."""
    timings = outcome.timings
    if timings is None:
        return None
    slowest: dict[str, list[str]] = {"metric": [], "pass": []}
    for kind, name, seconds in timings.slowest():
        slowest[kind].append(f"{name} {seconds:.2f} s")
    passes = f"shared passes {sum(timings.passes.values()):.2f} s"
    if slowest["pass"]:
        passes += f" ({slowest['pass'][0]})"
    return (f"slowest metrics: {', '.join(slowest['metric'][:SLOWEST_SHOWN]) or 'none'}; "
            f"{passes}; evaluation {timings.total:.2f} s")


def _submit(pool: Pool, config: RunConfig, out_dir: Path, device: torch.device,
            progress: bool) -> Future:
    """Submit one run; a pool that cannot take it (a broken process pool) yields a failed future,
    so the run is recorded as failed like any other. Only runs in this process draw their
    per-epoch bars (a worker's would interleave with the others')."""
    try:
        return pool.executor.submit(run_task, config, str(out_dir), str(device), pool.threads,
                                    progress and pool.in_process)
    except Exception as err:
        future: Future = Future()
        future.set_exception(err)
        return future


#: Exceptions that say the machinery lost a run (a worker process killed by the OOM killer, a
#: Dask worker gone), not that the run itself is broken; named, not imported, so that the local
#: executor needs no Dask.
LOST_RUN_ERRORS = frozenset({"BrokenProcessPool", "KilledWorker", "CommClosedError",
                             "CancelledError", "FutureCancelledError"})


def _outcome(future: Future, config: RunConfig, out_dir: Path) -> RunOutcome:
    """The run's outcome, or a failure recorded from the exception that ended it.

    A run that raised (a plug-in model's bug) has written no status: write ``failed: <reason>``
    here so that the run folder says what happened and a rerun skips it. A run whose worker was
    lost is failed in this sweep's results but gets no status, so running the same command again
    retries it from its checkpoint: a crash costs minutes, not the run. A full disk is re-raised:
    it is no fault of the run, and the sweep stops at once rather than fail every run left.
    """
    try:
        return future.result()
    except Exception as err:
        if is_disk_full(err):
            raise
        reason = " ".join(f"{type(err).__name__}: {err}".split())  # one line, for status and CSV
        if type(err).__name__ in LOST_RUN_ERRORS:
            return RunOutcome(config.run_id, STATUS_FAILED,
                              f"worker lost ({reason}); run the same command again to retry")
        folder = RunFolder(out_dir, config.run_id)
        if folder.status() is None:
            folder.write_status(STATUS_FAILED, reason)
        return RunOutcome(config.run_id, STATUS_FAILED, reason)


def write_suite_file(out_dir: Path, name: str, description: str) -> None:
    """``OUT/suite.json``: the suite's name and description, for the report's heading."""
    write_json_atomic(out_dir / SUITE_FILE, {"name": name, "description": description})


def run_suite(suite: Suite, out_dir: Path, device: torch.device, executor: str = "local",
              options: ExecutorOptions | None = None, progress: bool = True,
              adds: bool = False) -> list[tuple[RunConfig, RunOutcome]]:
    """Run every run of ``suite`` on the executor registered as ``executor``.

    Executor options and all configs are checked before anything is submitted (bad input costs
    no compute). Finished runs are read back, not submitted; the others run on the executor, at
    most ``pool.slots`` at a time and in suite order. Each time a run completes, a line
    ``[k/N] label (run-id): <headline scores> [seconds]`` is printed, with one below it naming
    the evaluation's slowest metrics, and ``results.csv`` is rewritten in suite order, so a
    kill loses at most the runs in progress (which resume from their checkpoints).

    Args:
        suite: the expanded suite.
        out_dir: output folder; with a remote cluster, on a file system every worker sees.
        device: where models train; passed to workers by name.
        executor: a key of :data:`~latentbench.benchmarks.executors.EXECUTORS`.
        options: ``--workers`` and ``--scheduler``; without either, the pool is sized by
            :func:`~latentbench.benchmarks.executors.default_workers`.
        progress: show a progress bar over runs (and per-epoch bars of in-process runs).
        adds: the suite adds its runs to a folder (``latentbench eval`` and ``score``): every
            row of an existing ``results.csv`` is kept, and an existing ``suite.json`` (the
            report's heading) too. Otherwise the rows of other suites are kept
            (:func:`~latentbench.benchmarks.results.rows_to_keep`).

    Returns:
        ``(config, outcome)`` for every run, in suite order; failed runs included.

    Raises:
        InputError: an unusable executor option or config (before any run is submitted).
    """
    finished = [RunFolder(out_dir, c.run_id).status() is not None for c in suite.runs]
    options = options or ExecutorOptions()
    if options.workers is None and options.scheduler is None:  # a scheduler brings its own
        options = replace(options, workers=default_workers(device, len(suite.runs)))
    opener = open_executor(executor, options)
    for config in suite.runs:
        try:
            preflight(config)
        except InputError as err:  # name the suite file the bad field is in
            raise in_file(suite.source, err) from None
    if out_dir.is_dir():  # a killed command's half-written results.csv or report.html
        remove_stray_temporaries(out_dir)
    total = len(suite.runs)
    if not (adds and (out_dir / SUITE_FILE).is_file()):
        write_suite_file(out_dir, suite.name, suite.description)
    kept = rows_to_keep(out_dir / RESULTS_FILE, suite.name, keep_all=adds)
    references = suite_references(list(suite.runs))
    outcomes: dict[int, RunOutcome] = {}
    # Open the executor (start processes, connect) before the bar, so that a scheduler that
    # does not answer ends the command with its one-line error and nothing else.
    with (opener if not all(finished) else contextlib.nullcontext()) as pool, \
            tqdm(total=total, unit="run", desc="runs", disable=not progress) as bar:
        def record(index: int, outcome: RunOutcome) -> None:
            outcomes[index] = outcome
            config = suite.runs[index]
            took = f"{outcome.seconds:.1f} s" if outcome.seconds else "done before"
            tqdm.write(f"[{len(outcomes)}/{total}] {run_label(config)} ({config.run_id}): "
                       f"{_summary(outcome)} [{took}]", file=sys.stdout)
            timing = _timing_summary(outcome)
            if timing is not None:
                tqdm.write(f"    {timing}", file=sys.stdout)
            sys.stdout.flush()  # one line per run shows up at once in CI logs and pipes, too
            bar.update(1)
            write_results(out_dir / RESULTS_FILE,
                          [(suite.runs[i], outcomes[i]) for i in sorted(outcomes)], references,
                          kept)

        pending: deque[int] = deque()
        for index, config in enumerate(suite.runs):
            if finished[index]:  # read back here, no worker needed
                record(index, execute_run(config, out_dir, device, progress=False))
            else:
                pending.append(index)
        in_flight: dict[Future, int] = {}
        while pending or in_flight:
            while pending and (pool.slots is None or len(in_flight) < pool.slots):
                index = pending.popleft()
                in_flight[_submit(pool, suite.runs[index], out_dir, device, progress)] = index
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=in_flight.__getitem__):
                index = in_flight.pop(future)
                record(index, _outcome(future, suite.runs[index], out_dir))
    return [(suite.runs[i], outcomes[i]) for i in range(total)]
