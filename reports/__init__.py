"""Reports for latentbench results: summary tables (Markdown, LaTeX) and the HTML report.

This package reads a benchmark's output (``results.csv`` and ``runs/<run-id>/``) and never
imports ``latentbench.models``, ``latentbench.metrics`` or ``latentbench.benchmarks``.
"""

from latentbench.reports.html import render_report
from latentbench.reports.table import (
    SummaryTable,
    load_results,
    summary_table,
    to_latex,
    to_markdown,
)

__all__ = [
    "SummaryTable",
    "load_results",
    "render_report",
    "summary_table",
    "to_latex",
    "to_markdown",
]
