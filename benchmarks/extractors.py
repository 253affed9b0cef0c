"""Which feature extractor a dataset is scored with, and LeNets trained for datasets on demand.

Registered extractors (``lenet-mnist``, ``inception-v3``) and plug-ins (``package.module:Attr``)
come from :func:`latentbench.metrics.features.load_extractor`. Any other ``lenet-<dataset>`` is a
:class:`~latentbench.metrics.lenet.LeNet` trained on that dataset's training split the first time
it is asked for and cached under ``<cache>/features``: the file name carries a hash of what
determines the weights (data spec, training settings, architecture version) and the sha256 of
the file itself, which is checked on every load. Every LeNet file stores the mean and std of its
network's features on the training split it was trained on, with which its features are
standardised (see :mod:`latentbench.metrics.lenet`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from latentbench.benchmarks.data import DATASETS, DataSpec, ImageData, load_dataset
from latentbench.metrics.features import FEATURES, FeatureExtractor, FeatureOptions, load_extractor
from latentbench.metrics.lenet import (
    ARCHITECTURE_VERSION,
    LeNet,
    LeNetExtractor,
    LeNetTraining,
    WeightsMismatchError,
    accuracy,
    feature_statistics,
    lenet_checkpoint,
    load_lenet,
    train_lenet,
)
from latentbench.models.registry import InputError, did_you_mean
from latentbench.reports.atomic import write_bytes_atomic

LENET_PREFIX = "lenet-"
# Datasets whose digits the shipped lenet-mnist classifies.
_MNIST_DATASETS = ("mnist5k", "mnist")


def default_extractor(dataset: str) -> str:
    """The extractor a dataset's feature-space metrics use unless a suite names others.

    ``lenet-mnist`` (shipped) for ``mnist5k`` and ``mnist``; ``lenet-<dataset>`` (trained on
    first use) for every other dataset.
    """
    return "lenet-mnist" if dataset in _MNIST_DATASETS else f"{LENET_PREFIX}{dataset}"


@dataclass(frozen=True)
class CachedLeNet:
    """A LeNet trained for a dataset, as found in or written to the cache.

    Attributes:
        extractor: its features, named ``lenet-<dataset>``.
        path: the cache file.
        test_accuracy: classification accuracy on the dataset's test split.
        trained: ``True`` if this call trained it, ``False`` if it came from the cache.
    """

    extractor: LeNetExtractor
    path: Path
    test_accuracy: float
    trained: bool


def lenet_cache_key(spec: DataSpec, training: LeNetTraining) -> str:
    """16 hex digits of sha256 over what determines a trained LeNet's weights.

    ``root`` and ``download`` are left out: they say where the data is, not what it is; so is
    ``binarize``: the extractor is always trained on the grey images (one feature space for a
    dataset, whether a suite binarises it or not).
    """
    data = {k: v for k, v in asdict(spec).items() if k not in ("root", "download", "binarize")}
    payload = {"data": data, "training": asdict(training), "architecture": ARCHITECTURE_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def train_lenet_file(data: ImageData, training: LeNetTraining) -> tuple[bytes, float]:
    """Train a LeNet on ``data.train`` and score it on ``data.test``.

    Returns:
        The bytes of its weights file (:func:`lenet_file`) and the test accuracy.
    """
    return lenet_file(train_lenet(data.train, data.train_labels, **asdict(training)), data,
                      training)


def lenet_file(net: LeNet, data: ImageData, training: LeNetTraining) -> tuple[bytes, float]:
    """The weights file of ``net``, trained on ``data.train`` with ``training``.

    The file holds the feature standardisation, the per-feature mean and std of ``net``'s
    features on ``data.train`` (:func:`~latentbench.metrics.lenet.feature_statistics`), and as
    metadata the dataset, the settings, the split sizes and the accuracy on ``data.test``.

    Returns:
        The bytes of the file and the test accuracy.
    """
    test_accuracy = accuracy(net, data.test, data.test_labels)
    mean, std = feature_statistics(net, data.train)
    checkpoint = lenet_checkpoint(net, mean, std, dataset=data.name, training=asdict(training),
                                  train_images=len(data.train), test_images=len(data.test),
                                  test_accuracy=test_accuracy)
    return checkpoint, test_accuracy


def cached_lenet(spec: DataSpec, training: LeNetTraining, cache_dir: Path) -> CachedLeNet:
    """The LeNet of ``spec``'s dataset trained with ``training``: from the cache, else trained.

    A cache file whose sha256 is not the one in its name (corrupt, or half-copied) is deleted
    with a warning and the network retrained.

    Args:
        spec: the data to train on (its training split) and score on (its test split).
        training: the training settings.
        cache_dir: the cache folder; files go to ``cache_dir / "features"``.

    Raises:
        InputError: unknown dataset, or its files missing.
    """
    DATASETS.get(spec.dataset)  # an unknown name fails here, before any work
    name = f"{LENET_PREFIX}{spec.dataset}"
    stem = f"{name}-{lenet_cache_key(spec, training)}"
    folder = cache_dir / "features"
    for path in sorted(folder.glob(f"{stem}-*.pt")):
        try:
            extractor = load_lenet(path, name, expected_sha256=path.stem.rsplit("-", 1)[1])
        except (WeightsMismatchError, ValueError, RuntimeError) as err:
            warnings.warn(f"dropping a bad cached LeNet: {err}", RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            continue
        return CachedLeNet(extractor, path, float(extractor.metadata["test_accuracy"]), False)

    checkpoint, test_accuracy = train_lenet_file(
        load_dataset(dataclasses.replace(spec, binarize="none")), training)
    path = folder / f"{stem}-{hashlib.sha256(checkpoint).hexdigest()}.pt"
    write_bytes_atomic(path, checkpoint)
    return CachedLeNet(load_lenet(path, name), path, test_accuracy, True)


def resolve_extractor(name: str, data_spec: DataSpec, options: FeatureOptions,
                      cache_dir: Path, training: LeNetTraining | None = None) -> FeatureExtractor:
    """The extractor ``name`` for scoring images of ``data_spec``.

    Args:
        name: a registered extractor, a plug-in ``"package.module:Attr"``, or
            ``lenet-<dataset>`` for any registered dataset (trained on first use, then cached).
        data_spec: the data being scored; ``lenet-<its dataset>`` is trained on exactly this
            spec's training split, ``lenet-<another dataset>`` on that dataset's default split
            (read from the same ``root``).
        options: settings of the registered extractors (Inception weights, downloads).
        cache_dir: the cache folder (usually :func:`cache_dir`).
        training: LeNet training settings; default :class:`LeNetTraining`.

    Raises:
        InputError: an unknown name (the message lists the choices), or a plug-in or weights
            file that cannot be used.
    """
    if name in FEATURES or ":" in name:
        return load_extractor(name, options)
    dataset = name.removeprefix(LENET_PREFIX)
    if not name.startswith(LENET_PREFIX) or dataset not in DATASETS:
        known = [*FEATURES, *(LENET_PREFIX + d for d in DATASETS)]
        raise InputError(f"eval.features: unknown feature extractor {name!r}"
                         f"{did_you_mean(name, known)}; choose one of: "
                         f"{', '.join(FEATURES)}, lenet-<dataset> for a dataset of "
                         f"`latentbench list datasets`, or a plug-in 'package.module:Attr'")
    spec = data_spec if dataset == data_spec.dataset else DataSpec(
        dataset=dataset, root=data_spec.root, download=data_spec.download)
    return cached_lenet(spec, training or LeNetTraining(), cache_dir).extractor
