"""The resolved configuration of one run, parsed strictly from a suite's tables.

Every section is a frozen dataclass; :func:`parse_section` turns a TOML table into one, rejecting
unknown keys and values of the wrong type with a one-line :class:`InputError` that names the field
and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from latentbench.benchmarks.data.registry import DataSpec
from latentbench.benchmarks.model_files import file_digests
from latentbench.metrics.context import EvalSettings
from latentbench.models.protocol import ModelSpec
from latentbench.models.registry import InputError, check_int, check_number

S = TypeVar("S")


@dataclass(frozen=True)
class TrainSpec:
    """The ``[train]`` section: Adam on the model's loss for ``epochs`` passes over the data.

    Attributes:
        epochs: passes over the training split; 0 scores the model as built (with
            ``model.weights``: as loaded), without training.
        batch_size: images per optimiser step.
        lr: Adam learning rate.
        checkpoint_seconds: write a checkpoint at the end of an epoch once this many seconds
            have passed since the last one (0: after every epoch). A killed run loses at most
            this much training plus one epoch. It does not change the result, so it is not part
            of the run id. Per-epoch checkpoints of 0.1 s GPU epochs cost ~11% of throughput.
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    checkpoint_seconds: float = 30.0

    def __post_init__(self) -> None:
        _positive(self, "train", ("batch_size", "lr"))
        check_int(self.epochs, "train.epochs", minimum=0)
        check_number(self.checkpoint_seconds, "train.checkpoint_seconds", minimum=0)


@dataclass(frozen=True)
class EvalSpec(EvalSettings):
    """The ``[eval]`` section: what to compute and show, plus the metric knobs of
    :class:`~latentbench.metrics.context.EvalSettings` (sample counts, interpolation protocol,
    feature extractors).

    Attributes:
        metrics: metric keys to compute (``fid`` for every extractor, ``fid[lenet-mnist]`` for
            one); ``None`` computes every default metric that applies.
        batch_size: images per evaluation batch.
        grid_images: test images shown with their reconstructions in the report.
        samples: prior samples shown in the report.
    """

    metrics: tuple[str, ...] | None = None
    batch_size: int = 256
    grid_images: int = 8
    samples: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "eval", ("batch_size", "grid_images", "samples"))


#: Fields added to a section after run ids were in use, with their defaults. While a field
#: holds its default it is left out of the hashed payload, so every run configured before the
#: field existed keeps its id (and its finished folder); any other value enters the hash.
ADDED_FIELDS: dict[str, dict[str, Any]] = {
    "data": {"binarize": "none"},
    "eval": {"iwae_images": None, "factor_points": 10_000, "factor_test_points": 5_000},
    "model": {"alpha": None, "gamma": None, "capacity": None, "capacity_steps": None,
              "weights": None, "prior": None, "prior_components": None},
}


def without_added_defaults(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` of ``section`` (a section's ``asdict``) less the :data:`ADDED_FIELDS` that hold
    their defaults: the form of a section that hashes as it did before those fields existed."""
    added = ADDED_FIELDS.get(section, {})
    return {k: v for k, v in values.items() if not (k in added and v == added[k])}


@dataclass(frozen=True)
class RunConfig:
    """One run: the suite it belongs to, its data, model, training and evaluation, and a seed."""

    suite: str = "custom"
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def run_id(self) -> str:
        """A short hash of everything that determines the result (not the suite's name); the
        files a model is read from enter as their contents' sha256."""
        payload = {k: without_added_defaults(k, v) if isinstance(v, dict) else v
                   for k, v in self.to_dict().items() if k != "suite"}
        # How often checkpoints are written does not change what is trained.
        del payload["train"]["checkpoint_seconds"]
        # Files the model is read from count by their contents, not where they lie: a new
        # weights file is a new run, a moved one the same run.
        for where, digest in file_digests(self.model).items():
            section, _, name = where.partition(".")
            table = payload[section]
            if name.startswith("options."):
                table = table["options"]
                name = name.removeprefix("options.")
            table[name] = f"sha256:{digest}"
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


SECTIONS: dict[str, type] = {"data": DataSpec, "model": ModelSpec, "train": TrainSpec,
                             "eval": EvalSpec}


#: Seeds go to torch.manual_seed and numpy's SeedSequence: both take any int in [0, 2**63).
MAX_SEED = 2**63 - 1


def _positive(spec: object, section: str, names: tuple[str, ...]) -> None:
    for name in names:
        # check_number refuses nan and inf too: TOML has both, and neither is a usable learning
        # rate or batch size.
        check_number(getattr(spec, name), f"{section}.{name}", minimum=0, above=True)


def check_seed(value: object, where: str) -> int:
    """``value`` as an int if it is an integer seed in ``[0, MAX_SEED]``; else an
    :class:`InputError`."""
    return check_int(value, where, minimum=0, maximum=MAX_SEED)


def coerce(value: Any, kind: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``kind`` (int, float, str, bool, Optional, tuple)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return coerce(value, inner, where)
    if typing.get_origin(kind) is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a table, got {value!r}")
        try:  # the run id hashes the table as JSON; TOML dates and times have no JSON form
            json.dumps(value, sort_keys=True)
        except (TypeError, ValueError):
            raise InputError(f"{where}: values must be strings, numbers, booleans, lists or "
                             f"tables, got {value!r}") from None
        return dict(value)
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        if not isinstance(value, list | tuple):
            raise InputError(f"{where}: expected a list, got {value!r}")
        return tuple(coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise InputError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def parse_section(cls: type[S], table: dict[str, Any], section: str) -> S:
    """Build dataclass ``cls`` from a TOML table; unknown keys and wrong types are errors.

    Raises:
        InputError: naming ``section.key`` and what is allowed.
    """
    if not isinstance(table, dict):
        raise InputError(f"{section}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise InputError(f"{section}.{unknown[0]}: unknown key; allowed: {', '.join(known)}")
    values = {k: coerce(v, hints[k], f"{section}.{k}") for k, v in table.items()}
    return cls(**values)


def config_from_tables(suite: str, tables: dict[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from the ``data``/``model``/``train``/``eval`` tables and
    ``seed`` of one grid point."""
    sections = {name: parse_section(cls, tables.get(name, {}), name)
                for name, cls in SECTIONS.items()}
    seed = check_seed(tables.get("seed", 0), "seed")
    return RunConfig(suite=suite, seed=seed, **sections)
