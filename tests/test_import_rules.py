"""The dependency direction of the four code folders (ARCHITECTURE.md, "Imports").

``benchmarks`` may import ``models``, ``metrics`` and ``reports``; ``metrics`` only ``models``;
``models`` and ``reports`` nothing else of latentbench. So there is no cycle, and importing a
metric never loads the harness. Every ``import`` node counts, wherever it is — at module top,
inside a function, under ``if TYPE_CHECKING`` — because an import deferred into a function is
still a dependency, only a hidden one.

The checker reads the files with :mod:`ast` and imports nothing, so it sees the tree as written.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGES = ("models", "metrics", "benchmarks", "reports")
#: What each package may import besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    "models": frozenset(),
    "metrics": frozenset({"models"}),
    "benchmarks": frozenset({"models", "metrics", "reports"}),
    "reports": frozenset(),
}
REPO = Path(__file__).resolve().parents[1]


def _imported_modules(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The absolute module names an import node loads; ``package`` is the dotted package of the
    file (``latentbench.benchmarks.data``), for relative imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        parts = package.split(".")
        base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
        module = ".".join([*base, node.module] if node.module else base)
    else:
        module = node.module or ""
    if module == "latentbench":  # `from latentbench import models`: each name is a package
        return [f"latentbench.{alias.name}" for alias in node.names]
    return [module]


def _allowed_text(source: str) -> str:
    return ", ".join(f"latentbench.{p}" for p in sorted({source, *ALLOWED[source]}))


def import_violations(root: Path) -> list[str]:
    """Every import in ``root``'s package folders that breaks the dependency direction.

    Args:
        root: a folder holding (some of) ``models/``, ``metrics/``, ``benchmarks/``,
            ``reports/``; every ``.py`` file below each is read.

    Returns:
        ``"<path>:<line> imports latentbench.<Y> (<X> may import only ...)"`` per forbidden
        edge, and ``"<path>:<line> imports bare <name> (...)"`` per import of a folder by its
        bare name; ``<path>`` is relative to ``root``. Sorted by path and line.
    """
    found: list[tuple[str, int, str]] = []
    for source in PACKAGES:
        folder = root / source
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(root)
            package = ".".join(["latentbench", *relative.parent.parts])
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                for module in _imported_modules(node, package):
                    head, _, rest = module.partition(".")
                    where = f"{relative.as_posix()}:{node.lineno}"
                    if head in PACKAGES:  # only a level-0 import can start so
                        found.append((relative.as_posix(), node.lineno,
                                      f"{where} imports bare {module} "
                                      f"(use latentbench.{module})"))
                    elif head == "latentbench":
                        target = rest.partition(".")[0]
                        if (target in PACKAGES and target != source
                                and target not in ALLOWED[source]):
                            found.append((relative.as_posix(), node.lineno,
                                          f"{where} imports {module} ({source} may import "
                                          f"only {_allowed_text(source)})"))
    return [message for _, _, message in sorted(found)]


def test_packages_import_only_in_the_allowed_direction() -> None:
    violations = import_violations(REPO)
    if violations:
        pytest.fail("forbidden imports:\n" + "\n".join(violations), pytrace=False)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_planted_import_inside_a_function_is_reported(tmp_path: Path) -> None:
    _write(tmp_path, {
        "reports/__init__.py": "",
        "reports/x.py": """\
            from latentbench.reports import table


            def models():
                from latentbench.models import MODELS
                return MODELS
            """,
    })
    assert import_violations(tmp_path) == [
        "reports/x.py:5 imports latentbench.models (reports may import only latentbench.reports)"
    ]


def test_relative_type_checking_and_bare_imports_are_resolved(tmp_path: Path) -> None:
    _write(tmp_path, {
        "models/a.py": """\
            from typing import TYPE_CHECKING

            from . import registry
            from .registry import InputError

            if TYPE_CHECKING:
                from latentbench.metrics.context import EvalContext
            """,
        "metrics/b.py": """\
            import latentbench.models.registry
            from latentbench import benchmarks, models
            """,
        "benchmarks/data/c.py": """\
            from ..config import RunConfig
            from ... import reports
            import metrics.kid
            from latentbench.reports.table import results_table
            """,
    })
    assert import_violations(tmp_path) == [
        "benchmarks/data/c.py:3 imports bare metrics.kid (use latentbench.metrics.kid)",
        "metrics/b.py:2 imports latentbench.benchmarks (metrics may import only "
        "latentbench.metrics, latentbench.models)",
        "models/a.py:7 imports latentbench.metrics.context (models may import only "
        "latentbench.models)",
    ]
