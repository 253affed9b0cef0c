"""Suite files: load a shipped or user TOML and expand its ``[grid]`` into run configs.

A suite's sections give one base run; ``[grid]`` maps keys to lists and expands to their product:
- a dotted path (``"model.beta" = [1.0, 4.0]``) or ``seed`` varies one setting;
- a section name with a list of tables (``model = [{name = "ae"}, {name = "vae", beta = 4.0}]``)
  varies several settings together, for variants that are not a product (an AE has no β).
"""

from __future__ import annotations

import copy
import itertools
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from latentbench.benchmarks.config import SECTIONS, RunConfig, config_from_tables
from latentbench.models.registry import InputError

TOP_LEVEL = {"suite", "grid", "seed", *SECTIONS}


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its name, description and expanded runs (duplicates removed, in order)."""

    name: str
    description: str
    runs: tuple[RunConfig, ...]


def shipped_suites() -> dict[str, str]:
    """Names and descriptions of the suites that ship in ``benchmarks/suites``."""
    found = {}
    for entry in resources.files("latentbench.benchmarks").joinpath("suites").iterdir():
        if entry.name.endswith(".toml"):
            table = tomllib.loads(entry.read_text(encoding="utf-8"))
            found[entry.name[:-5]] = table.get("suite", {}).get("description", "")
    return dict(sorted(found.items()))


def read_suite_text(name_or_path: str) -> tuple[str, str]:
    """The TOML text of a shipped suite name or a path, and the name to use by default."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(f"suite: no such file {name_or_path!r}")
        return path.read_text(encoding="utf-8"), path.stem
    if name_or_path not in shipped_suites():
        choices = ", ".join(shipped_suites())
        raise InputError(f"suite: unknown suite {name_or_path!r}; choose one of: {choices}, "
                         f"or give a path to a .toml file")
    entry = resources.files("latentbench.benchmarks").joinpath(f"suites/{name_or_path}.toml")
    return entry.read_text(encoding="utf-8"), name_or_path


def load_suite(name_or_path: str) -> Suite:
    """Load, validate and expand a suite (shipped name or path to a ``.toml`` file).

    Raises:
        InputError: unreadable TOML, unknown keys, wrong types, or an empty grid axis.
    """
    text, default_name = read_suite_text(name_or_path)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"suite: {name_or_path} is not valid TOML: {err}") from None
    return expand_suite(table, default_name)


def expand_suite(table: dict[str, Any], default_name: str = "custom") -> Suite:
    """Expand a parsed suite table into its runs (see the module docstring)."""
    unknown = sorted(set(table) - TOP_LEVEL)
    if unknown:
        raise InputError(f"{unknown[0]}: unknown section; allowed: {', '.join(sorted(TOP_LEVEL))}")
    meta = table.get("suite", {})
    extra = sorted(set(meta) - {"name", "description"})
    if extra:
        raise InputError(f"suite.{extra[0]}: unknown key; allowed: name, description")
    name = str(meta.get("name", default_name))
    base = {k: v for k, v in table.items() if k not in ("suite", "grid")}
    grid = table.get("grid", {})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"grid.{key}: must be a non-empty list of values")
    runs: dict[str, RunConfig] = {}
    for point in itertools.product(*grid.values()):
        tables = copy.deepcopy(base)
        for key, value in zip(grid, point, strict=True):
            _apply(tables, key, value)
        config = config_from_tables(name, tables)
        runs.setdefault(config.run_id, config)
    return Suite(name=name, description=str(meta.get("description", "")),
                 runs=tuple(runs.values()))


def _apply(tables: dict[str, Any], key: str, value: Any) -> None:
    """Set one grid axis's value in the run's tables."""
    if key == "seed":
        tables["seed"] = value
        return
    if key in SECTIONS:
        if not isinstance(value, dict):
            raise InputError(f"grid.{key}: values of a section axis must be tables, got {value!r}")
        tables.setdefault(key, {}).update(value)
        return
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name or "." in name:
        raise InputError(f"grid.{key}: unknown key; use seed, a section ({', '.join(SECTIONS)}) "
                         f"or section.field")
    tables.setdefault(section, {})[name] = value
