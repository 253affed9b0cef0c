"""Reports for latentbench results: summary tables (Markdown, LaTeX) and the HTML report.

This package reads a benchmark's output (``results.csv`` and ``runs/<run-id>/``) and never
imports ``latentbench.models``, ``latentbench.metrics`` or ``latentbench.benchmarks``.

Its names are imported on first use (``from latentbench.reports import render_report`` works as
ever): every module of the package imports this file first, and the HTML report's matplotlib would
otherwise be paid for by ``latentbench compare``, which does not need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latentbench.reports.html import render_report
    from latentbench.reports.table import (
        SummaryTable,
        load_results,
        summary_table,
        to_latex,
        to_markdown,
    )

#: Each public name → the module that defines it.
_HOMES = {
    "SummaryTable": "latentbench.reports.table",
    "load_results": "latentbench.reports.table",
    "render_report": "latentbench.reports.html",
    "summary_table": "latentbench.reports.table",
    "to_latex": "latentbench.reports.table",
    "to_markdown": "latentbench.reports.table",
}

__all__ = [
    "SummaryTable",
    "load_results",
    "render_report",
    "summary_table",
    "to_latex",
    "to_markdown",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # found once; later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
