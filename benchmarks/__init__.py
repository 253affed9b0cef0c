"""The harness: datasets, suites, runs, sweeps, the CLI and ``latentbench bench``.

This file imports nothing heavy, so that the CLI's start-up stays fast: ``latentbench list
suites`` reads the shipped suites with :func:`shipped_suites` and no torch (every module of the
harness imports this file first). The suites themselves are loaded by
:mod:`latentbench.benchmarks.suite`.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable

__all__ = ["shipped_suite_file", "shipped_suites"]


def _suites_folder() -> Traversable:
    return resources.files(__name__).joinpath("suites")


def shipped_suites() -> dict[str, str]:
    """Names and descriptions of the suites that ship in ``benchmarks/suites``, by name."""
    found = {}
    for entry in _suites_folder().iterdir():
        if entry.name.endswith(".toml"):
            table = tomllib.loads(entry.read_text(encoding="utf-8"))
            found[entry.name[:-5]] = table.get("suite", {}).get("description", "")
    return dict(sorted(found.items()))


def shipped_suite_file(name: str) -> Traversable:
    """The file of the shipped suite ``name`` (one of :func:`shipped_suites`)."""
    return _suites_folder().joinpath(f"{name}.toml")
