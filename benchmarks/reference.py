"""The real-data reference row: real images that are not the test set, scored like samples.

Without it a table's sample metrics cannot be read: FID 393 against 575 says which model is
closer to the data, not how close either is, and FID is biased upward at finite N. The reference
takes ``M`` training images (``M`` = the runs' sample count), scores them against the test set
with the same extractors, metrics and sample counts as the models' samples, and gives the FID and
KID floors, the precision/recall/density/coverage ceilings, the checkerboard ratio of real images
and the data-copying statistic of fresh real data (its "training set" is the rest of the training
split, so the held-out images are not copies of it and C_T ≈ 0).

One row per dataset of a suite, in results.csv as the model :data:`REFERENCE_MODEL`, never
ranked. It is cached under a hash of the data spec, the evaluation settings and the extractors'
weights, so a suite computes it once, and the next suite on the same data reads it back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable

import torch
from torch import Tensor

from latentbench.benchmarks.cache import cache_dir
from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.evaluate import evaluate
from latentbench.benchmarks.extractors import default_extractor
from latentbench.metrics.features import FeatureExtractor
from latentbench.models.generator import ImageSequence
from latentbench.reports.atomic import write_json_atomic
from latentbench.reports.schema import (
    REFERENCE_MODEL,
    MetricsDocument,
    metrics_document,
    parse_metrics,
)

__all__ = [
    "REFERENCE_METRICS",
    "real_images",
    "reference_metrics",
    "reference_run_id",
    "suite_references",
]

#: The metrics a set of real images gets: those that compare samples with the data.
REFERENCE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "checkerboard",
                     "data_copying")
#: The layout version of a cached reference; bump it when what is computed changes.
_CACHE_VERSION = 2


def real_images(images: Tensor) -> ImageSequence:
    """A "model" whose samples are the given real images, in order: the reference's samples."""
    return ImageSequence(images, "real training images that are not the test set (the real-data "
                                 "reference)")


def _reference_spec(config: RunConfig) -> RunConfig:
    """``config`` reduced to what the reference depends on: data, evaluation, seed 0."""
    # Sorted, as the registry lists metrics: a reference read back from the cache (its JSON
    # keys sorted) then lists its metrics in the order it was computed in.
    keys = sorted(key for key in (config.eval.metrics or REFERENCE_METRICS)
                  if key.partition("[")[0] in REFERENCE_METRICS)
    return RunConfig(suite="", data=config.data, eval=dataclasses.replace(config.eval,
                                                                           metrics=keys), seed=0)


def reference_run_id(config: RunConfig) -> str:
    """The reference row's run id for the runs like ``config``: ``real-data-<hash>``."""
    return f"{REFERENCE_MODEL}-{_reference_spec(config).run_id}"


def reference_metrics(config: RunConfig, train_images: Tensor, test_images: Tensor,
                      load_extractor: Callable[[str], FeatureExtractor],
                      extractors: list[str]) -> MetricsDocument:
    """Score held-out real images against the test set as ``config``'s runs score samples.

    The first ``M`` images of a fixed shuffle of the training split (seed 0) are the "samples";
    the remaining training images stand in for the training set (data copying, the train
    features). Cached on disk under a hash of the reduced config and the extractors' weights.

    Args:
        config: any run of the suite on this dataset (its data and eval settings are used).
        train_images, test_images: the dataset's splits.
        load_extractor: name → feature extractor, as for the runs.
        extractors: the extractors the runs use (their weights' sha256 are part of the key).

    Raises:
        ValueError: the training split is too small to hold out ``M`` images and keep two.
    """
    spec = _reference_spec(config)
    if not spec.eval.metrics:
        return MetricsDocument()
    weights = {name: load_extractor(name).weights_sha256 for name in extractors}
    key = hashlib.sha256(json.dumps({"config": spec.to_dict(), "weights": weights,
                                     "version": _CACHE_VERSION}, sort_keys=True).encode())
    path = cache_dir() / "reference" / f"{key.hexdigest()[:24]}.json"
    if path.is_file():
        try:
            return parse_metrics(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            pass  # a damaged cache file is recomputed and replaced
    count = spec.eval.fake_samples or len(test_images)
    if len(train_images) < count + 2:
        raise ValueError(f"the reference needs {count} held-out training images and 2 more, "
                         f"the training split has {len(train_images)}")
    order = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(0))
    held_out, rest = train_images[order[:count]], train_images[order[count:]]
    result = evaluate(real_images(held_out), test_images, rest, spec.eval, seed=0,
                      dataset=config.data.dataset,
                      default_extractors=(default_extractor(config.data.dataset),),
                      load_extractor=load_extractor, binarize=config.data.binarize)
    write_json_atomic(path, metrics_document(result))
    return result


def suite_references(configs: list[RunConfig]) -> list[tuple[RunConfig, MetricsDocument]]:
    """The reference of each dataset of a suite, for the first run on it (its data and eval
    settings stand for the others'). A dataset whose reference cannot be computed (a training
    split too small to hold out the sample count) gets none, said on stderr."""
    from latentbench.benchmarks.run import cached_dataset, extractor_loader, planned_extractors

    references = []
    firsts = {config.data: config for config in reversed(configs)}
    for config in reversed(list(firsts.values())):
        data = cached_dataset(config.data)
        try:
            metrics = reference_metrics(config, data.train, data.test, extractor_loader(config),
                                        planned_extractors(config))
        except ValueError as err:
            print(f"latentbench: no real-data reference for {config.data.dataset}: {err}",
                  file=sys.stderr)
            continue
        if metrics.values:
            references.append((config, metrics))
    return references
