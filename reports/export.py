"""Paper tables: ``latentbench report DIR --format latex,markdown,csv``.

Writes ``table.tex`` (booktabs) and ``table.md`` (the headline scores), ``table-<family>.tex``
and ``.md`` (one per metric family) and ``table.csv`` (every metric) into the output directory:
the same summaries as the HTML report (mean ± spread, the clear best in bold, ties in italics),
each with a caption that says over how many seeds, in which feature space and on how many
samples.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from latentbench.reports.families import table_groups
from latentbench.reports.table import (
    SummaryTable,
    latex_escape,
    load_results,
    summary_table,
    to_csv,
    to_latex,
    to_markdown,
)

__all__ = ["FORMATS", "parse_formats", "table_caption", "write_tables"]

#: ``--format`` name → file written (``html`` is the report itself, written elsewhere).
FORMATS: dict[str, str | None] = {
    "html": None,
    "latex": "table.tex",
    "markdown": "table.md",
    "csv": "table.csv",
}

_EXTRACTOR = re.compile(r"\[([^\]]+)\]$")


def parse_formats(text: str) -> list[str]:
    """Split a comma-separated ``--format`` value, checking every name.

    Raises:
        ValueError: naming an unknown format and the known ones.
    """
    formats = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"--format: unknown format(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(FORMATS)}, comma-separated")
    return list(dict.fromkeys(formats))


def _sample_counts(results: pd.DataFrame, metrics: Iterable[str]) -> str:
    """E.g. ``1000 samples per metric`` or ``256–1000 samples (by metric)``."""
    if "samples" not in results.columns:
        return ""
    done = results[results["status"].eq("done") & results["metric"].isin(list(metrics))]
    counts = pd.to_numeric(done["samples"], errors="coerce").dropna().astype(int)
    if counts.empty:
        return ""
    low, high = counts.min(), counts.max()
    if low == high:
        return f"each value over {low:,} images or samples"
    return f"each value over {low:,}–{high:,} images or samples depending on the metric"


def table_caption(
    table: SummaryTable, results: pd.DataFrame, escape: Callable[[str], str] = str
) -> str:
    """The summary's caption plus the feature extractors and sample counts behind the values.

    Args:
        table: Output of :func:`summary_table`.
        results: The long-format results (for the ``samples`` column).
        escape: Applied to the extractor names, which are user text (LaTeX escaping).
    """
    extractors = sorted({m.group(1) for name in table.metrics if (m := _EXTRACTOR.search(name))})
    extra = []
    if extractors:
        extra.append("feature-space metrics in the features of "
                     + ", ".join(escape(name) for name in extractors))
    samples = _sample_counts(results, table.metrics)
    if samples:
        extra.append(samples)
    caption = table.caption()
    if not extra:
        return caption
    text = "; ".join(extra)
    return f"{caption} {text[0].upper()}{text[1:]}."


def write_tables(out_dir: Path | str, formats: Iterable[str]) -> list[Path]:
    """Write the summary of ``OUT/results.csv`` in each of ``formats`` into ``OUT``.

    LaTeX and Markdown get the headline table as ``table.tex`` / ``table.md`` and one table per
    metric family as ``table-<family>.tex`` / ``.md`` (see :mod:`latentbench.reports.families`),
    each narrow enough for a page; ``table.csv`` holds every metric.

    Args:
        out_dir: The benchmark output directory.
        formats: Names of :data:`FORMATS`; ``html`` is skipped (see ``render_report``).

    Returns:
        The files written.
    """
    from latentbench.reports.atomic import write_text_atomic

    out = Path(out_dir)
    results = load_results(out)
    table = summary_table(results)
    groups = table_groups(results, table.metrics)
    written = []
    for name in formats:
        filename = FORMATS[name]
        if filename is None:
            continue
        if name == "csv":
            written.append(write_text_atomic(out / filename, to_csv(table)))
            continue
        stem, suffix = filename.rsplit(".", 1)
        for group in groups:
            part = table.select(group.metrics)
            target = out / (filename if group.name == "headline"
                            else f"{stem}-{group.name}.{suffix}")
            if name == "latex":
                text = to_latex(part, caption=f"{latex_escape(group.title)}. "
                                + table_caption(part, results, latex_escape),
                                label=f"tab:latentbench-{group.name}")
            else:
                text = to_markdown(part, caption=f"{group.title}. "
                                   + table_caption(part, results))
            written.append(write_text_atomic(target, text))
    return written
