"""The local executor's default pool: one process per core on the CPU, at most one per run."""

import pytest
import torch

from latentbench.benchmarks import executors
from latentbench.benchmarks.executors import default_workers, threads_per_worker


@pytest.fixture
def four_cpus(monkeypatch):
    monkeypatch.setattr(executors, "usable_cpus", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize("runs, workers", [(1, 1), (2, 2), (3, 3), (6, 4), (100, 4)])
def test_on_the_cpu_one_worker_per_core_and_at_most_one_per_run(four_cpus, runs, workers):
    assert default_workers(torch.device("cpu"), runs) == workers
    assert threads_per_worker(workers) == 4 // workers


def test_an_accelerator_is_not_shared_between_processes(four_cpus):
    assert default_workers(torch.device("cuda"), 6) == 1


def test_omp_num_threads_keeps_one_process_with_that_many_threads(four_cpus, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert default_workers(torch.device("cpu"), 6) == 1
