"""Results table: load ``results.csv`` and summarise it per configuration over seeds.

The harness writes ``OUT/results.csv`` in long format, one row per run × metric (its columns are
defined in :mod:`latentbench.reports.schema`). This module turns it into the table readers
want: one row per configuration (dataset, model, decoder, β, latent size), one column per metric,
each cell the mean ± sample standard deviation over seeds, and a mask of the best value per metric
so that every renderer (HTML, LaTeX, Markdown) bolds the same cells.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from latentbench.reports.schema import (
    CONFIG_COLUMNS,
    RESULTS_COLUMNS,
    RESULTS_FILE,
    read_results_csv,
)

__all__ = [
    "SummaryTable",
    "load_results",
    "summary_table",
    "to_csv",
    "to_latex",
    "to_markdown",
]

#: Display names of the configuration columns and the seed count.
_HEADERS: dict[str, str] = {
    "dataset": "dataset",
    "model": "model",
    "decoder": "decoder",
    "beta": "β",
    "latent_dim": "latent",
    "n": "n",
}


def load_results(out_dir: Path | str) -> pd.DataFrame:
    """Read a benchmark's long-format ``results.csv``.

    Args:
        out_dir: The benchmark output directory holding ``results.csv``, or the CSV file itself.

    Returns:
        One row per run × metric with the columns and dtypes of
        :data:`~latentbench.reports.schema.RESULTS_DTYPES`.

    Raises:
        FileNotFoundError: If there is no ``results.csv``.
        ValueError: If the file does not follow the schema (all missing columns are named).
    """
    path = Path(out_dir)
    return read_results_csv(path / RESULTS_FILE if path.is_dir() else path)


@dataclass(frozen=True)
class SummaryTable:
    """Per-configuration summary of a results table over seeds.

    All frames share one index (a MultiIndex over :data:`CONFIG_COLUMNS`) and, except
    ``seeds``, one set of columns (the metric names, in the order they first appear in the
    results).

    Attributes:
        mean: Mean of each metric over seeds.
        std: Sample standard deviation (``ddof=1``) over seeds; ``NaN`` for a single seed.
        count: Number of seeds with a finite value in each cell.
        best: ``True`` where the mean is the best of its column within its dataset, by the
            metric's direction. Ties are all marked; a column with fewer than two values, or
            without a known direction, marks nothing.
        higher_is_better: Direction of each metric (nullable boolean; ``NA`` if unknown).
        seeds: Number of finished runs (seeds) of each configuration.
    """

    mean: pd.DataFrame
    std: pd.DataFrame
    count: pd.DataFrame
    best: pd.DataFrame
    higher_is_better: pd.Series
    seeds: pd.Series

    @property
    def metrics(self) -> list[str]:
        """Metric names, in column order."""
        return [str(metric) for metric in self.mean.columns]

    def __len__(self) -> int:
        return len(self.mean)

    def cells(self, digits: int = 4, pm: str = " ± ") -> pd.DataFrame:
        """Format each metric cell as ``mean ± std``.

        A single-seed cell shows just the value. A cell whose seed count differs from its row's
        ``n`` (a metric missing or non-finite for some seed) is suffixed ``(n=k)`` so that
        readers are not misled about how many values it averages.

        Args:
            digits: Significant digits of the mean; the spread gets two, enough to judge it.
            pm: The separator between mean and spread (``" $\\pm$ "`` for LaTeX).

        Returns:
            Strings shaped like :attr:`mean`; empty where a metric is absent for a config.
        """
        mean_text = self.mean.map(lambda v: _format_number(v, digits))
        std_text = self.std.map(lambda v: _format_number(v, 2))
        text = mean_text.where(self.count <= 1, mean_text + pm + std_text)
        row_n = pd.DataFrame(
            np.repeat(self.seeds.to_numpy()[:, None], self.mean.shape[1], axis=1),
            index=self.mean.index,
            columns=self.mean.columns,
        )
        partial = (self.count != row_n) & (self.count > 0)
        text = text.where(~partial, text + " (n=" + self.count.astype(str) + ")")
        return text.where(self.count > 0, "")

    def config_frame(self) -> pd.DataFrame:
        """Display strings of the configuration columns and the seed count ``n``.

        Returns:
            One row per configuration, index aligned with :attr:`mean`, columns
            :data:`CONFIG_COLUMNS` then ``n``. A missing β (a model without one) shows ``–``.
        """
        config = self.mean.index.to_frame(index=False)
        config["beta"] = config["beta"].map(lambda v: _format_number(v, 4) or "–")
        config["latent_dim"] = config["latent_dim"].map(lambda v: "–" if pd.isna(v) else str(v))
        config["n"] = self.seeds.to_numpy()
        config.index = self.mean.index
        return config.astype(str)

    def display(self, digits: int = 4, pm: str = " ± ") -> pd.DataFrame:
        """The flat display table: configuration columns, ``n``, then one column per metric."""
        return pd.concat([self.config_frame(), self.cells(digits=digits, pm=pm)], axis=1)

    def caption(self) -> str:
        """A caption saying what the cells are and over how many seeds."""
        counts = sorted(set(self.seeds.tolist()))
        if not counts:
            return "No finished runs."
        legend = "best per metric and dataset in bold; ↑ higher is better, ↓ lower is better."
        if counts == [1]:
            return f"Values from a single seed per configuration; {legend}"
        if len(counts) == 1:
            seeds = f"{counts[0]} seeds"
        else:
            seeds = f"n seeds ({counts[0]}–{counts[-1]}, see column n)"
        return f"Mean ± sample standard deviation (ddof=1) over {seeds} per configuration; {legend}"


def _format_number(value: object, digits: int) -> str:
    """Format a number to ``digits`` significant digits; empty for a missing value."""
    if value is None or value is pd.NA:
        return ""
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return ""
    return f"{number:.{digits}g}"


def summary_table(results: pd.DataFrame) -> SummaryTable:
    """Summarise long-format results per configuration, over seeds.

    Only finished runs (``status == "done"``) with a metric name count; failed runs are left
    to the report's list of failures. Each cell is the mean and sample standard deviation
    (``ddof=1``) of the metric's finite values over the configuration's seeds.

    The best cell per metric is chosen on the mean, by the metric's ``higher_is_better``
    direction, separately for each dataset because values on different datasets are not
    comparable.

    Args:
        results: Output of :func:`load_results` (or a frame with the same columns).

    Returns:
        A :class:`SummaryTable`; render it with :func:`to_markdown`, :func:`to_latex` or the
        HTML report.

    Raises:
        ValueError: If required columns are missing, or a metric is marked both higher- and
            lower-is-better.
    """
    missing = [column for column in RESULTS_COLUMNS if column not in results.columns]
    if missing:
        raise ValueError(f"results are missing required column(s): {', '.join(missing)}")

    config = list(CONFIG_COLUMNS)
    status = results["status"].astype("string").str.lower()
    done = results[status.eq("done").fillna(False) & results["metric"].notna()].copy()
    done["value"] = pd.to_numeric(done["value"], errors="coerce")
    # Infinite values (a diverged run) would poison the mean; count them as missing instead.
    done["value"] = done["value"].where(np.isfinite(done["value"]))
    metrics = list(pd.unique(done["metric"]))

    # dropna=False keeps configurations whose β is NaN (a plain AE has no β).
    stats = done.groupby([*config, "metric"], dropna=False, sort=False)["value"].agg(
        ["mean", "std", "count"]
    )
    mean, std, count = (
        stats[name].unstack("metric").reindex(columns=metrics) for name in ("mean", "std", "count")
    )
    mean = mean.sort_index(na_position="last")
    std = std.reindex(mean.index)
    count = count.reindex(mean.index).fillna(0).astype(int)
    for frame in (mean, std, count):
        frame.columns.name = "metric"

    seeds = done.groupby(config, dropna=False)["run_id"].nunique().reindex(mean.index).astype(int)
    seeds.name = "n"

    higher_is_better = _metric_directions(done, metrics)
    best = _best_mask(mean, higher_is_better)
    return SummaryTable(
        mean=mean,
        std=std,
        count=count,
        best=best,
        higher_is_better=higher_is_better,
        seeds=seeds,
    )


def _metric_directions(done: pd.DataFrame, metrics: list[str]) -> pd.Series:
    """One ``higher_is_better`` per metric; conflicting rows are an error, not a guess."""
    directions = done.groupby("metric", sort=False)["higher_is_better"].agg(
        lambda column: set(column.dropna().astype(bool))
    )
    conflicting = directions[directions.map(len) > 1]
    if len(conflicting):
        raise ValueError(
            "metric(s) marked both higher- and lower-is-better: "
            + ", ".join(map(str, conflicting.index))
        )
    resolved = directions.map(lambda found: next(iter(found)) if found else pd.NA)
    return resolved.reindex(metrics).astype("boolean").rename("higher_is_better")


def _best_mask(mean: pd.DataFrame, higher_is_better: pd.Series) -> pd.DataFrame:
    """Mark the best mean per column and dataset, by each metric's direction."""
    if mean.empty:
        return mean.astype(bool)
    # Flip lower-is-better columns so that "best" is always the maximum; unknown direction → NaN.
    sign = higher_is_better.map({True: 1.0, False: -1.0}).astype("float64")
    score = mean.mul(sign, axis=1)
    by_dataset = score.groupby(level="dataset", dropna=False)
    top = by_dataset.transform("max")
    # A lone value is not "best" of anything; bolding it would only add noise.
    enough = by_dataset.transform("count") >= 2
    return (score.eq(top) & enough & score.notna()).astype(bool)


def _arrow(direction: object, up: str, down: str) -> str:
    if direction is pd.NA or direction is None:
        return ""
    return up if bool(direction) else down


def to_markdown(table: SummaryTable, caption: str | None = None, digits: int = 4) -> str:
    """Render the summary as a GitHub-flavoured Markdown pipe table, best values in bold.

    Built by hand rather than with ``DataFrame.to_markdown`` because that needs ``tabulate``,
    which is not a dependency.

    Args:
        table: Output of :func:`summary_table`.
        caption: Text under the table; defaults to :meth:`SummaryTable.caption`.
        digits: Significant digits of the means.

    Returns:
        The Markdown text, ending in a newline.
    """
    shown = table.display(digits=digits)
    metric_cells = shown[table.metrics]
    bold = metric_cells.where(~table.best | metric_cells.eq(""), "**" + metric_cells + "**")
    shown = pd.concat([shown.drop(columns=table.metrics), bold], axis=1)

    headers = [_HEADERS[c] for c in (*CONFIG_COLUMNS, "n")] + [
        f"{metric} {_arrow(table.higher_is_better[metric], '↑', '↓')}".rstrip()
        for metric in table.metrics
    ]
    align = ["---"] * (len(CONFIG_COLUMNS) + 1) + ["--:"] * len(table.metrics)

    def row(cells: list[str]) -> str:
        # A pipe inside a cell would split it into two columns.
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [row(headers), "| " + " | ".join(align) + " |"]
    lines += [row(list(values)) for values in shown.itertuples(index=False)]
    lines += ["", f"*{caption if caption is not None else table.caption()}*"]
    return "\n".join(lines) + "\n"


def to_latex(
    table: SummaryTable,
    caption: str | None = None,
    label: str | None = "tab:latentbench",
    digits: int = 4,
) -> str:
    """Render the summary as a booktabs LaTeX table via ``Styler.to_latex``.

    Best values are wrapped in ``\\textbf{}``; names are LaTeX-escaped; the spread uses
    ``$\\pm$``; headers carry ``$\\uparrow$``/``$\\downarrow$`` for the metric direction. Needs
    ``\\usepackage{booktabs}`` in the document.

    Args:
        table: Output of :func:`summary_table`.
        caption: The table caption; defaults to :meth:`SummaryTable.caption`.
        label: The ``\\label``; ``None`` for none.
        digits: Significant digits of the means.

    Returns:
        The LaTeX source of a ``table`` environment.
    """
    shown = table.display(digits=digits, pm=" $\\pm$ ")
    config_columns = [*CONFIG_COLUMNS, "n"]
    bold = pd.concat(
        [pd.DataFrame(False, index=shown.index, columns=config_columns), table.best], axis=1
    )
    shown = shown.reset_index(drop=True)
    bold = bold.reset_index(drop=True)

    headers = {c: latex_escape(_HEADERS[c]) for c in config_columns}
    headers["beta"] = "$\\beta$"
    for metric in table.metrics:
        arrow = _arrow(table.higher_is_better[metric], " $\\uparrow$", " $\\downarrow$")
        headers[metric] = latex_escape(metric) + arrow

    styler = (
        shown.style.hide(axis="index")
        # Config cells are user text (model names may hold "_"); metric cells are ours and
        # already contain LaTeX ($\pm$), so only the former are escaped.
        .format(latex_escape, subset=config_columns)
        .format_index(lambda c: headers[c], axis=1)
        .apply(lambda _: bold.map(lambda b: "textbf:--rwrap;" if b else ""), axis=None)
    )
    caption_text = caption if caption is not None else table.caption()
    caption_text = (
        caption_text.replace("±", "$\\pm$")
        .replace("↑", "$\\uparrow$")
        .replace("↓", "$\\downarrow$")
        .replace("–", "--")
    )
    return styler.to_latex(
        caption=caption_text,
        label=label,
        hrules=True,
        position_float="centering",
        column_format="l" * len(config_columns) + "r" * len(table.metrics),
    )


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    # A "[" right after "\\" would be read as the row's optional spacing argument.
    "[": "{[}",
    "]": "{]}",
    "^": r"\textasciicircum{}",
    "β": r"$\beta$",
    "–": "--",
}


def latex_escape(text: object) -> str:
    """Escape LaTeX's special characters in a plain-text cell."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))


def to_csv(table: SummaryTable) -> str:
    """Render the summary as CSV: the configuration columns and ``n``, then for each metric its
    mean, sample standard deviation, seed count and whether it is the best of its column.

    Numbers stay numbers (full precision) so that the file can be read back for plotting;
    the header of a metric's columns is ``<metric> mean``, ``<metric> std``, ``<metric> n`` and
    ``<metric> best``.

    Args:
        table: Output of :func:`summary_table`.

    Returns:
        The CSV text.
    """
    parts = [table.config_frame().rename(columns=_HEADERS)]
    for metric in table.metrics:
        parts.append(pd.DataFrame({
            f"{metric} mean": table.mean[metric],
            f"{metric} std": table.std[metric],
            f"{metric} n": table.count[metric],
            f"{metric} best": table.best[metric],
        }))
    return pd.concat(parts, axis=1).to_csv(index=False)
