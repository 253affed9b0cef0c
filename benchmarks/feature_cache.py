"""Real-data feature sets cached on disk, so every run of a suite (and every later suite) embeds
the test and train splits once per feature extractor.

A set is stored under a hash of everything that determines it — the dataset's spec, the split,
the extractor's name and the sha256 of its weights, and the layout version — so a retrained
extractor or another subset of the data can never be served stale numbers. Files are written
atomically (temporary file, then ``os.replace``) and read with ``weights_only=True``; a file
that does not load is recomputed and replaced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from latentbench.benchmarks.data import DataSpec
from latentbench.benchmarks.storage import save_torch_atomic
from latentbench.metrics.context import FeatureSet
from latentbench.metrics.features import FeatureExtractor

#: Bump when what a cache file holds changes; old files are then ignored, not misread.
LAYOUT = 1


class RealFeatureCache:
    """The :class:`~latentbench.metrics.context.RealFeatureStore` of one dataset.

    Args:
        data: the ``[data]`` section the splits come from (all of it enters the key: the seed of
            a generated set, ``n_test``, the root of a torchvision set).
        folder: where the files go (``<cache>/real-features``).
    """

    def __init__(self, data: DataSpec, folder: Path) -> None:
        self.data = data
        self.folder = folder

    def path(self, split: str, extractor: FeatureExtractor) -> Path:
        """The cache file of ``split`` embedded by ``extractor``."""
        key = json.dumps({"data": dataclasses.asdict(self.data), "split": split,
                          "extractor": extractor.name, "weights": extractor.weights_sha256,
                          "layout": LAYOUT}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        return self.folder / f"{self.data.dataset}-{split}-{digest}.pt"

    def get_or_compute(self, split: str, extractor: FeatureExtractor,
                       compute: Callable[[], FeatureSet]) -> FeatureSet:
        """The cached set, or ``compute()``'s, stored for next time."""
        path = self.path(split, extractor)
        if path.exists():
            try:
                stored = torch.load(path, map_location="cpu", weights_only=True)
                return FeatureSet(stored["features"], stored["mean"], stored["cov"])
            except Exception as error:  # a truncated or foreign file: recompute, don't fail
                warnings.warn(f"{path}: unreadable cached features ({error}); recomputing",
                              stacklevel=2)
        result = compute()
        save_torch_atomic(path, {"features": result.features, "mean": result.mean,
                                 "cov": result.cov})
        return result
