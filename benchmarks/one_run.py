"""The one-run suites of ``latentbench eval`` and ``latentbench score``: a model trained
elsewhere, or a file of samples, scored like a suite's run, into any results folder.

Both build an ordinary suite table and expand it with :func:`~latentbench.benchmarks.suite.
expand_suite`, so every setting is checked as in a suite file, relative paths are resolved
against the working directory, and the run id holds the sha256 of the files read.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from latentbench.benchmarks.run import cached_dataset
from latentbench.benchmarks.suite import Suite, expand_suite
from latentbench.models.registry import InputError
from latentbench.models.sample_set import read_samples

__all__ = ["SAMPLE_METRICS", "apply_setting", "eval_suite", "parse_setting", "score_suite"]

#: The metrics of a set of samples: every metric that compares samples with the data.
SAMPLE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "checkerboard",
                  "data_copying")


def parse_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set``: the value as TOML (``8``, ``1e-3``, ``true``, ``[1, 2]``,
    ``"text"``), else as the plain string (a path need not be quoted).

    Raises:
        InputError: no ``=`` or an empty key.
    """
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise InputError(f"--set: expected KEY=VALUE (model.latent_dim=8), got {text!r}")
    try:
        return key.strip(), tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value


def apply_setting(tables: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (``seed``, ``section.field`` or ``model.options.name``) in suite tables."""
    if key == "seed":
        tables["seed"] = value
        return
    parts = key.split(".")
    if parts[:2] == ["model", "options"] and len(parts) == 3:
        tables.setdefault("model", {}).setdefault("options", {})[parts[2]] = value
    elif len(parts) == 2 and parts[0] in ("data", "model", "train", "eval"):
        tables.setdefault(parts[0], {})[parts[1]] = value
    else:
        raise InputError(f"--set: {key!r} is not seed, section.field (data, model, train, "
                         f"eval) or model.options.name")


def _suite(name: str, description: str, tables: dict[str, Any],
           settings: list[tuple[str, Any]]) -> Suite:
    for key, value in settings:
        apply_setting(tables, key, value)
    return expand_suite({"suite": {"name": name, "description": description}, **tables},
                        folder=Path.cwd())


def eval_suite(model: str, dataset: str, weights: str | None = None,
               settings: list[tuple[str, Any]] = ()) -> Suite:
    """A one-run suite ``eval`` scoring ``model`` on ``dataset`` without training
    (``train.epochs = 0``), with ``weights`` loaded when given; ``settings`` are ``--set``
    pairs (the architecture the weights need, a pythae folder, evaluation knobs).

    Raises:
        InputError: any setting a suite file would refuse, naming the field.
    """
    tables: dict[str, Any] = {"data": {"dataset": dataset}, "model": {"name": model},
                              "train": {"epochs": 0}}
    if weights is not None:
        tables["model"]["weights"] = weights
    return _suite("eval", f"{model} scored without training (latentbench eval)", tables,
                  list(settings))


def score_suite(samples: str, dataset: str, count: int | None = None,
                settings: list[tuple[str, Any]] = ()) -> Suite:
    """A one-run suite ``score`` scoring the images at ``samples`` on every sample metric
    (:data:`SAMPLE_METRICS`) against ``dataset``'s test split.

    ``count`` samples are taken (the first ones); ``None``: as many as the suite's models are
    scored at (the test set's size), or all the file holds when that is fewer — the sample
    count is in every row, and FID compares only at equal counts.

    Raises:
        InputError: unreadable samples, a wrong shape or value range (from the ``samples``
            model), or a bad setting.
    """
    tables: dict[str, Any] = {"data": {"dataset": dataset},
                              "model": {"name": "samples", "options": {"path": samples}},
                              "train": {"epochs": 0},
                              "eval": {"metrics": list(SAMPLE_METRICS)}}
    if count is not None:
        tables["eval"]["fake_samples"] = count
    suite = _suite("score", f"samples from {Path(samples).name} (latentbench score)", tables,
                   list(settings))
    if count is None and suite.runs[0].eval.fake_samples is None:
        suite = _fit_count(suite)
    return suite


def _fit_count(suite: Suite) -> Suite:
    """``suite`` with ``eval.fake_samples`` lowered to the sample set's size when it holds
    fewer images than the test set."""
    config = suite.runs[0]
    data = cached_dataset(config.data)
    available = len(read_samples(Path(config.model.options["path"]), data.image_shape))
    if available >= len(data.test):
        return suite
    config = dataclasses.replace(config, eval=dataclasses.replace(config.eval,
                                                                  fake_samples=available))
    return dataclasses.replace(suite, runs=(config,))
