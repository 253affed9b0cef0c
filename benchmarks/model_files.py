"""The files a run reads its model from: weights, a pythae folder, a file of samples.

A model trained elsewhere enters a run through ``[model] weights`` (a ``state_dict``) or a
model's file options (``model.options.path`` of ``pythae`` and ``samples``). The run id holds
the sha256 of their contents instead of their paths (:func:`file_digests`), so a new file is a
new run and a moved one is the same run; relative paths are made absolute against the suite
file's folder (:func:`resolve_model_paths`), so a suite runs the same from any directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch
from torch import nn

from latentbench.models.protocol import ModelSpec
from latentbench.models.registry import InputError
from latentbench.models.zoo import model_class

__all__ = ["content_sha256", "file_digests", "load_weights", "resolve_model_paths"]

_CHUNK = 1 << 20
#: (path, size, mtime) → sha256: a run id is computed many times, a file is hashed once.
_digests: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        _digests[key] = digest.hexdigest()
    return _digests[key]


def content_sha256(path: Path, field: str) -> str:
    """The sha256 of a file's bytes; of a folder, of its files' relative names and bytes (in
    sorted order, hidden files left out), so a folder's digest changes with any file in it.

    Raises:
        InputError: nothing at ``path``, or it cannot be read; naming ``field``.
    """
    try:
        if path.is_file():
            return _file_sha256(path)
        if path.is_dir():
            digest = hashlib.sha256()
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                relative = file.relative_to(path).as_posix()
                if any(part.startswith(".") for part in relative.split("/")):
                    continue
                digest.update(f"{relative}\0{_file_sha256(file)}\0".encode())
            return digest.hexdigest()
    except OSError as err:
        raise InputError(f"{field}: cannot read {path} ({err.strerror or err})") from None
    raise InputError(f"{field}: no file or folder at {path}")


def _file_fields(spec: ModelSpec) -> dict[str, str]:
    """``field → path`` of the files ``spec``'s model reads: ``model.weights`` and the
    options its class names in ``file_options``."""
    fields = {"model.weights": spec.weights} if spec.weights is not None else {}
    for option in model_class(spec.name).file_options:
        value = spec.options.get(option)
        if isinstance(value, str) and value:
            fields[f"model.options.{option}"] = value
    return fields


def file_digests(spec: ModelSpec) -> dict[str, str]:
    """``field → sha256`` of every file ``spec``'s model reads (empty for a model trained
    here from scratch): what the run id holds in place of the paths."""
    return {field: content_sha256(Path(path), field) for field, path in _file_fields(spec).items()}


def resolve_model_paths(spec: ModelSpec, base: Path) -> ModelSpec:
    """``spec`` with its relative file paths made absolute against ``base`` (the suite file's
    folder, or the working directory for a command-line path)."""
    fields = _file_fields(spec)
    if not fields:
        return spec
    absolute = {field: str((base / path).resolve()) for field, path in fields.items()}
    options = dict(spec.options)
    for field, path in absolute.items():
        if field.startswith("model.options."):
            options[field.removeprefix("model.options.")] = path
    return dataclasses.replace(spec, options=options,
                               weights=absolute.get("model.weights", spec.weights))


def load_weights(model: nn.Module, path: str) -> None:
    """Load the ``state_dict`` at ``path`` into ``model`` (``weights_only=True``: no code in the
    file runs), strictly: every key of the model, nothing else, each of the model's shape.

    Accepts a plain ``state_dict`` (``torch.save(model.state_dict(), path)``, a latentbench
    run's ``model.pt``) or a dict holding one under ``"state_dict"`` or ``"model"`` (the usual
    training-script checkpoints).

    Raises:
        InputError: the file is missing or unreadable, holds no ``state_dict``, or the first key
            that is missing, unexpected or of another shape, in one line naming
            ``model.weights``.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"model.weights: no file at {path}") from None
    except Exception as err:  # pickle, zip and torch errors of a damaged or foreign file
        raise InputError(f"model.weights: cannot load {path} with weights_only=True "
                         f"({type(err).__name__}: {' '.join(str(err).split())[:160]})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    # A module's get_extra_state() entry (``..._extra_state``) may hold any value.
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              or str(k).endswith("_extra_state")
                                              for k, v in state.items()):
        raise InputError(f"model.weights: {path} does not hold a state_dict (a dict of "
                         f"tensors)")
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    if missing:
        raise InputError(f"model.weights: {path} lacks key {missing[0]!r} of the model "
                         f"({len(missing)} missing); does the [model] section describe the "
                         f"architecture the weights were trained with?")
    unexpected = [key for key in state if key not in expected]
    if unexpected:
        raise InputError(f"model.weights: {path} has key {unexpected[0]!r}, which the model "
                         f"does not ({len(unexpected)} unexpected)")
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.shape != expected[key].shape:
            raise InputError(f"model.weights: key {key!r} has shape {list(value.shape)} in "
                             f"{path}, the model's is {list(expected[key].shape)}")
    model.load_state_dict(state)
