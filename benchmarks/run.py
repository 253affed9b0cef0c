"""One run, start to finish: data → model → train → evaluate → run folder.

``OUT/runs/<run-id>/`` (see :class:`~latentbench.benchmarks.run_folder.RunFolder`) holds
``config.json``, ``train.json`` (loss per epoch), ``model.pt`` (a state_dict), ``metrics.json``,
the report's images, ``environment.json`` and, written last, ``status`` (``done`` or
``failed: why``). A run whose status exists is not run again; one without (killed, or never
started) resumes from its last checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from latentbench.benchmarks.artifacts import factor_labels, write_images
from latentbench.benchmarks.cache import cache_dir
from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.data import DataSpec, ImageData, load_dataset
from latentbench.benchmarks.environment import environment_info
from latentbench.benchmarks.evaluate import check_metric_names, evaluate, plan_metrics
from latentbench.benchmarks.extractors import default_extractor, resolve_extractor
from latentbench.benchmarks.feature_cache import RealFeatureCache
from latentbench.benchmarks.model_files import load_weights
from latentbench.benchmarks.run_folder import RunFolder
from latentbench.benchmarks.storage import save_torch_atomic
from latentbench.benchmarks.train import train
from latentbench.metrics.features import FeatureExtractor, FeatureOptions
from latentbench.models import build_model
from latentbench.models.generator import ImageSequence
from latentbench.models.protocol import LatentModel
from latentbench.models.registry import InputError
from latentbench.reports.schema import STATUS_DONE, STATUS_FAILED, EvalTimings, RunFiles


@dataclass
class RunOutcome:
    """What a run left: its id, ``done`` or ``failed``, the reason, metrics (with the number of
    samples each averages over and their standard errors), seconds taken and where its
    evaluation spent them (``None`` for a failed run, or one finished by a version before
    timings)."""

    run_id: str
    status: str
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    samples: dict[str, int] = field(default_factory=dict)
    std_errors: dict[str, float] = field(default_factory=dict)
    caveats: dict[str, str] = field(default_factory=dict)
    timings: EvalTimings | None = None


@lru_cache(maxsize=4)
def cached_dataset(spec: DataSpec) -> ImageData:
    """Load each dataset once per process: every run of a suite shares it."""
    return load_dataset(spec)


def extractor_loader(config: RunConfig) -> Callable[[str], FeatureExtractor]:
    """Name → feature extractor for ``config``'s evaluation (``lenet-<dataset>`` extractors are
    trained on first use and cached; see :mod:`latentbench.benchmarks.extractors`)."""
    options = FeatureOptions(inception_weights=config.eval.inception_weights)
    return lambda name: resolve_extractor(name, config.data, options, cache_dir())


def planned_extractors(config: RunConfig) -> list[str]:
    """The feature extractors ``config``'s evaluation will use (for any model)."""
    capabilities = frozenset({"encode", "variational", "sample", "decode", "factors"})
    planned = plan_metrics(config.eval, capabilities, config.data.dataset,
                           (default_extractor(config.data.dataset),))
    return list(dict.fromkeys(p.extractor for p in planned if p.extractor is not None))


def build_run_model(config: RunConfig, image_shape: tuple[int, int, int]) -> LatentModel:
    """``config``'s model for images of ``image_shape``, with ``model.weights`` loaded.

    Raises:
        InputError: the model cannot be built, its weights do not fit it, or a model scored as
            loaded (``trained_here = False``) is asked to train.
    """
    model = build_model(config.model, image_shape)
    if not model.trained_here and config.train.epochs:
        raise InputError(f"train.epochs: model {config.model.name!r} is scored as loaded, not "
                         f"trained by latentbench; set train.epochs = 0")
    if config.model.weights is not None:
        load_weights(model, config.model.weights)
    return model


def preflight(config: RunConfig) -> None:
    """Check a config fully before anything is trained: data loads, model builds (and its
    weights load), metrics and feature extractors exist (an extractor trained for a dataset is
    trained here, once), a set of samples holds as many as the evaluation takes.

    Raises:
        InputError: the first problem found, naming its field.
    """
    data = cached_dataset(config.data)
    try:
        model = build_run_model(config, data.image_shape)
    except (RuntimeError, MemoryError, OverflowError) as err:  # torch cannot allocate the layers
        raise InputError(f"model: cannot build {config.model.name!r} with latent_dim "
                         f"{config.model.latent_dim}, width {config.model.width}, hidden "
                         f"{config.model.hidden} ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]})") from None
    if isinstance(model, ImageSequence):
        wanted = config.eval.fake_samples or len(data.test)
        if wanted > len(model.images):
            raise InputError(f"eval.fake_samples: the evaluation takes {wanted} samples, "
                             f"{config.model.options.get('path', 'the set')} holds "
                             f"{len(model.images)}; set eval.fake_samples <= {len(model.images)}")
    check_metric_names(config.eval)
    load = extractor_loader(config)
    for name in planned_extractors(config):
        load(name)


def execute_run(config: RunConfig, out_dir: Path, device: torch.device,
                progress: bool = True) -> RunOutcome:
    """Run ``config`` into ``out_dir/runs/<run-id>/`` (or read back a finished run)."""
    folder = RunFolder(out_dir, config.run_id)
    finished = folder.status()
    if finished is not None:
        metrics = folder.read_metrics()
        return RunOutcome(config.run_id, finished[0], finished[1], metrics.values,
                          samples=metrics.samples, std_errors=metrics.std_errors,
                          caveats=metrics.caveats, timings=metrics.timings)

    started = time.perf_counter()
    folder.prepare()
    folder.write_json(RunFiles.CONFIG, config.to_dict())
    data = cached_dataset(config.data)
    torch.manual_seed(config.seed)  # the initial weights depend on the seed alone
    model = build_run_model(config, data.image_shape).to(device)

    outcome = train(model, data.train, config.train, config.seed, folder.checkpoint,
                    progress=progress, epoch_images=data.train_epoch if data.dynamic else None)
    folder.write_json(RunFiles.TRAIN, outcome.history)
    if outcome.failed:
        folder.write_status(STATUS_FAILED, outcome.reason)
        return RunOutcome(config.run_id, STATUS_FAILED, outcome.reason,
                          seconds=time.perf_counter() - started)

    model.calibrate(data.train, config.eval.batch_size)
    save_torch_atomic(folder.model, model.state_dict())
    evaluation = evaluate(
        model, data.test, data.train, config.eval, config.seed, dataset=config.data.dataset,
        default_extractors=(default_extractor(config.data.dataset),),
        load_extractor=extractor_loader(config),
        real_features=RealFeatureCache(config.data, cache_dir() / "real-features"),
        binarize=config.data.binarize, factors=data.factor_sampler)
    folder.write_metrics(evaluation)
    mig = evaluation.details.get("mig")  # the factor x latent information, on data with factors
    latent_labels = (factor_labels(mig["mi_matrix"], mig["factor_entropy"], mig["factor_names"])
                     if mig else None)
    write_images(model, data.test, config.eval, config.seed, folder.path, data.test_labels,
                 latent_labels)
    folder.write_json(RunFiles.ENVIRONMENT, environment_info(device))
    folder.write_status(STATUS_DONE)
    folder.remove_checkpoint()  # model.pt now holds the result
    return RunOutcome(config.run_id, STATUS_DONE, metrics=evaluation.values,
                      seconds=time.perf_counter() - started, samples=evaluation.samples,
                      std_errors=evaluation.std_errors, caveats=evaluation.caveats,
                      timings=evaluation.timings)
