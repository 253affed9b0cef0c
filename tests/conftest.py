"""Test-wide settings.

One torch thread, here and in the CLI subprocesses the tests start (they inherit the
environment): the tiny models of the tests gain nothing from two threads, and two threads per
process on a loaded 2-core runner wait on each other, which made single steps 10–100× slower.
"""

import os

import torch

os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)
