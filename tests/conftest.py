"""Test-wide settings.

Hypothesis draws the same examples on every run (``derandomize``): a property test whose bound
holds for those examples cannot fail by chance in CI, where one chance failure rejects a whole
submission. Its example database is off, so no run depends on what an earlier one found.

One torch thread, here and in the CLI subprocesses the tests start (they inherit the
environment): the tiny models of the tests gain nothing from two threads, and two threads per
process on a loaded 2-core runner wait on each other, which made single steps 10–100× slower.
"""

import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("latentbench", derandomize=True, database=None)
settings.load_profile("latentbench")

os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def latentbench_cache(tmp_path_factory):
    """A per-session LATENTBENCH_CACHE (trained extractors, real features), never the home folder.

    Set in ``os.environ`` so the CLI subprocesses of the tests inherit it too.
    """
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("latentbench-cache")
        patch.setenv("LATENTBENCH_CACHE", str(folder))
        yield folder
