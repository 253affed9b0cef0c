"""Suite files: load a shipped or user TOML and expand its ``[grid]`` into run configs.

A suite's sections give one base run; ``[grid]`` maps keys to lists and expands to their product:
- a dotted path (``"model.beta" = [1.0, 4.0]``) or ``seed`` varies one setting;
- a section name with a list of tables (``model = [{name = "ae"}, {name = "vae", beta = 4.0}]``)
  varies several settings together, for variants that are not a product (an AE has no β).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from latentbench.benchmarks import shipped_suite_file, shipped_suites
from latentbench.benchmarks.config import SECTIONS, RunConfig, coerce, config_from_tables
from latentbench.benchmarks.model_files import resolve_model_paths
from latentbench.models.registry import InputError, did_you_mean

TOP_LEVEL = {"suite", "grid", "seed", *SECTIONS}
#: A suite's name is the default output folder ``runs/<name>``: one plain path component, so
#: that no name (``../..``, ``/etc``, ``.``) writes outside ``runs/``.
SUITE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
SUITE_NAME_RULE = "letters, digits, '-', '_' and '.', not starting with '.'"


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its name, description and expanded runs (duplicates removed, in order)."""

    name: str
    description: str
    runs: tuple[RunConfig, ...]
    #: The file it came from, to prefix errors found later (preflight) with; "" when built
    #: from a table.
    source: str = ""


def in_file(source: str, err: InputError) -> InputError:
    """``err`` with its message prefixed by ``source:`` (the file the bad input is in)."""
    return InputError(f"{source}: {err}" if source else str(err))


def suite_folder(name_or_path: str) -> Path:
    """The folder relative paths in a suite are resolved against: the suite file's, or the
    working directory for a shipped suite."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        return Path(name_or_path).resolve().parent
    return Path.cwd()


def read_suite_text(name_or_path: str) -> tuple[str, str, str]:
    """The TOML text of a shipped suite name or a path, the name to use by default, and the
    file to name in errors."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(f"suite: no such file {name_or_path!r}")
        try:
            return path.read_text(encoding="utf-8"), path.stem, name_or_path
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{name_or_path}: not a readable UTF-8 text file "
                             f"({type(err).__name__}: {err})") from None
    if name_or_path not in shipped_suites():
        shipped = shipped_suites()
        raise InputError(f"suite: unknown suite {name_or_path!r}"
                         f"{did_you_mean(name_or_path, shipped)}; choose one of: "
                         f"{', '.join(shipped)}, or give a path to a .toml file")
    text = shipped_suite_file(name_or_path).read_text(encoding="utf-8")
    return text, name_or_path, f"{name_or_path}.toml"


def load_suite(name_or_path: str) -> Suite:
    """Load, validate and expand a suite (shipped name or path to a ``.toml`` file).

    Raises:
        InputError: unreadable TOML (with its line), unknown keys, wrong types, or an empty grid
            axis; prefixed with the file (``my.toml: model.beta: ...``).
    """
    text, default_name, source = read_suite_text(name_or_path)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:  # its text ends "(at line L, column C)"
        raise InputError(f"{source}: not valid TOML: {err}") from None
    try:
        return replace(expand_suite(table, default_name, suite_folder(name_or_path)),
                       source=source)
    except InputError as err:
        raise in_file(source, err) from None


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a table, got {value!r}")
    return value


def check_suite_name(name: str) -> str:
    """``name`` if it is safe as the folder ``runs/<name>``; else an :class:`InputError`."""
    if not SUITE_NAME.fullmatch(name):
        raise InputError(f"suite.name: {name!r} is not a folder name; allowed: "
                         f"{SUITE_NAME_RULE}")
    return name


def expand_suite(table: dict[str, Any], default_name: str = "custom",
                 folder: Path | None = None) -> Suite:
    """Expand a parsed suite table into its runs (see the module docstring).

    Relative paths of files a model is read from (``model.weights``, a pythae folder, a file
    of samples) are made absolute against ``folder`` (default: the working directory).

    Raises:
        InputError: the only error a table of any content raises, naming the field.
    """
    unknown = sorted(map(str, set(_table(table, "suite file")) - TOP_LEVEL))
    if unknown:
        raise InputError(f"{unknown[0]}: unknown section; allowed: {', '.join(sorted(TOP_LEVEL))}")
    meta = _table(table.get("suite", {}), "suite")
    extra = sorted(map(str, set(meta) - {"name", "description"}))
    if extra:
        raise InputError(f"suite.{extra[0]}: unknown key; allowed: name, description")
    name = check_suite_name(coerce(meta.get("name", default_name), str, "suite.name"))
    description = coerce(meta.get("description", ""), str, "suite.description")
    base = {k: v for k, v in table.items() if k not in ("suite", "grid")}
    for section in SECTIONS.keys() & base.keys():  # checked here: grid axes update them
        _table(base[section], section)
    grid = _table(table.get("grid", {}), "grid")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"grid.{key}: must be a non-empty list of values")
    runs: dict[str, RunConfig] = {}
    for point in itertools.product(*grid.values()):
        tables = copy.deepcopy(base)
        for key, value in zip(grid, point, strict=True):
            _apply(tables, key, value)
        config = config_from_tables(name, tables)
        config = replace(config, model=resolve_model_paths(config.model, folder or Path.cwd()))
        runs.setdefault(config.run_id, config)
    return Suite(name=name, description=description, runs=tuple(runs.values()))


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
    fields = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if name not in fields:
        raise InputError(f"grid.{key}: unknown key; allowed: {section}.{{{', '.join(fields)}}}")
    tables.setdefault(section, {})[name] = value
