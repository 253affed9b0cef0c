"""Where a suite's runs execute: a registry of ``concurrent.futures.Executor`` factories.

``local`` runs in this process (one worker) or in a pool of spawned processes (``--workers N``);
``dask`` joins a ``dask.distributed`` scheduler (``--scheduler ADDR``) or starts a
``LocalCluster`` of ``N`` single-threaded worker processes for the duration of the command.

Every executor runs :func:`run_task`, a top-level function that pickles by reference, so a worker
needs only the installed package: it loads datasets itself (``cached_dataset`` is per process)
and writes into the shared output folder.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.environment import usable_cpus
from latentbench.benchmarks.run import RunOutcome, execute_run
from latentbench.models.registry import InputError


@dataclass(frozen=True)
class ExecutorOptions:
    """The command line's choice of executor.

    Attributes:
        workers: worker processes to start (``None``: :func:`default_workers`, filled in by
            the sweep, which knows the device and the runs left); ``>= 1``.
        scheduler: address of a running Dask scheduler (``tcp://host:8786``), or ``None``.
    """

    workers: int | None = None
    scheduler: str | None = None


@dataclass
class Pool:
    """An open executor and how the driver should feed it.

    Attributes:
        executor: runs :func:`run_task` calls.
        slots: the most runs to keep submitted at once, so that runs start in suite order and a
            kill loses only those; ``None`` submits everything and lets a scheduler queue them.
        threads: torch threads per run (``None``: decided where the run executes).
        in_process: runs execute in this process, so they may draw their own progress bars.
    """

    executor: Executor
    slots: int | None
    threads: int | None
    in_process: bool = False


# name → factory. A factory checks the options at once (bad input costs no compute) and returns
# a context manager that opens the executor, used only after every config has been preflighted.
EXECUTORS: dict[str, Callable[[ExecutorOptions], contextlib.AbstractContextManager[Pool]]] = {}


def register_executor(name: str):
    """Decorator: register ``factory(options) → context manager of a Pool`` under ``name``."""
    def add(factory):
        EXECUTORS[name] = factory
        return factory
    return add


def default_workers(device: torch.device, runs: int) -> int:
    """Worker processes when ``--workers`` is left out: on the CPU one per usable core, at most
    one per run of the suite; 1 on an accelerator (the runs would share it) and when
    ``OMP_NUM_THREADS`` is set (it then sets the threads of the one process, as it always did).
    Counted over the whole suite, not the runs left, so that a resumed run gets the thread count
    it started with (results depend on it, see the README's determinism notes).

    Why: the shipped models are small, and two of them on one core each train faster than one on
    two cores (the quick suite's training steps on a 2-core machine: 2 × 1,450 img/s on one
    thread each against 2,400 img/s for one process on two threads), and their evaluations,
    many small operations, split across threads worse still.
    """
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return 1
    return max(1, min(runs, usable_cpus()))


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of ``workers`` processes sharing this machine's cores.

    Without this every process takes all cores: on a 2-core machine two processes with 2 threads
    each waited on each other and made training steps 10–100× slower than 1 thread each.
    """
    return max(1, usable_cpus() // workers)


def set_torch_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op threads in this process; with ``None`` honour ``OMP_NUM_THREADS``
    when set, else split the cores among a Dask worker's task threads."""
    if threads is None:
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():
            threads = int(os.environ["OMP_NUM_THREADS"])
        else:
            from distributed import get_worker

            threads = threads_per_worker(getattr(get_worker(), "nthreads", 1))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(max(1, threads))


def run_task(config: RunConfig, out_dir: str, device: str, threads: int | None = None,
             progress: bool = False) -> RunOutcome:
    """Run (or read back) one run in whatever process executes it.

    Args:
        config: the run, already preflighted by the main process.
        out_dir: the suite's output folder, on a file system this process can write.
        device: ``"cpu"`` or ``"cuda"`` (a string: it pickles everywhere).
        threads: torch threads for this process; ``None`` decides here (see
            :func:`set_torch_threads`).
        progress: draw per-epoch progress bars (only for runs in the main process).
    """
    set_torch_threads(threads)
    return execute_run(config, Path(out_dir), torch.device(device), progress=progress)


class InProcessExecutor(Executor):
    """Runs each submitted call at once, in this process: the 1-worker local executor (no process
    start-up, no pickling, and the run's own progress bars)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # the driver records it as the run's failure
            future.set_exception(err)
        return future


def _init_pool_worker(threads: int) -> None:
    set_torch_threads(threads)


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the block (spawned children inherit it), then restore."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@register_executor("local")
def _local(options: ExecutorOptions) -> contextlib.AbstractContextManager[Pool]:
    """This process for one worker; otherwise a pool of spawned processes."""
    if options.scheduler is not None:
        raise InputError("--scheduler: only the dask executor joins a scheduler; "
                         "add --executor dask")
    return _local_pool(options.workers or 1)


@contextlib.contextmanager
def _local_pool(workers: int) -> Iterator[Pool]:
    if workers == 1:
        # The main process keeps its thread count (all cores, or what the user set).
        yield Pool(InProcessExecutor(), slots=1, threads=torch.get_num_threads(),
                   in_process=True)
        return
    threads = threads_per_worker(workers)
    # Spawned, not forked: a forked child inherits torch's thread pools in an unusable state.
    # OMP_NUM_THREADS reaches the children before they import torch; the initializer covers
    # the rest.
    with _environment("OMP_NUM_THREADS", str(threads)), ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_pool_worker, initargs=(threads,)) as pool:
        yield Pool(pool, slots=workers, threads=threads)


@register_executor("dask")
def _dask(options: ExecutorOptions) -> contextlib.AbstractContextManager[Pool]:
    """A client of the scheduler at ``options.scheduler``, or of a LocalCluster of N workers."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError("--executor: dask needs `pip install latentbench[dask]`") from None
    if options.scheduler is None:
        return _dask_local_cluster(options.workers or 1)
    if options.workers is not None:
        raise InputError("--workers: a cluster given by --scheduler brings its own workers; "
                         "give one or the other")
    if not options.scheduler.strip():
        raise InputError("--scheduler: give the scheduler's address, e.g. tcp://host:8786")
    return _dask_client(options.scheduler)


@contextlib.contextmanager
def _dask_client(address: str) -> Iterator[Pool]:
    from distributed import Client

    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise InputError(f"--scheduler: no Dask scheduler answered at {address!r}: "
                         f"{err}") from None
    with client:
        # The cluster's workers may sit on other machines: each run picks its thread count
        # where it executes.
        yield Pool(client.get_executor(), slots=None, threads=None)


@contextlib.contextmanager
def _dask_local_cluster(workers: int) -> Iterator[Pool]:
    from distributed import Client, LocalCluster

    threads = threads_per_worker(workers)
    with _environment("OMP_NUM_THREADS", str(threads)), LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            dashboard_address=None) as cluster, Client(cluster) as client:
        yield Pool(client.get_executor(), slots=None, threads=threads)


def open_executor(name: str, options: ExecutorOptions) -> contextlib.AbstractContextManager[Pool]:
    """The executor registered as ``name`` with ``options``: checked now, opened (processes or
    a cluster started) when the returned context manager is entered.

    Raises:
        InputError: unknown name, ``workers < 1``, or options the executor cannot use.
    """
    if name not in EXECUTORS:
        raise InputError(f"--executor: unknown executor {name!r}; choose one of: "
                         f"{', '.join(sorted(EXECUTORS))}")
    if options.workers is not None and options.workers < 1:
        raise InputError(f"--workers: must be a positive integer, got {options.workers}")
    return EXECUTORS[name](options)
