"""The cache folder every cached artifact of latentbench lives under (trained extractors, real
features, parsed datasets, real-data reference scores).

Its own module, needing only the standard library, so that a dataset loader can find the cache
without importing the feature extractors (and torch's model code) that also use it.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "LATENTBENCH_CACHE"


def cache_dir() -> Path:
    """The cache folder: ``$LATENTBENCH_CACHE``, else ``~/.cache/latentbench``."""
    given = os.environ.get(CACHE_ENV)
    return Path(given).expanduser() if given else Path.home() / ".cache" / "latentbench"
