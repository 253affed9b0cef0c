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

from latentbench.reports.ranking import direction_symbol, oriented, rank_columns
from latentbench.reports.schema import (
    CONFIG_COLUMNS,
    REFERENCE_MODEL,
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


#: The marker of a value that carries a caveat (footnoted under the table, never ranked).
CAVEAT_MARK = "‡"


@dataclass(frozen=True)
class SummaryTable:
    """Per-configuration summary of a results table over seeds.

    All frames share one index (a MultiIndex over :data:`CONFIG_COLUMNS`) and, except
    ``seeds`` and ``reference``, one set of columns (the metric names, in the order they first
    appear in the results).

    Attributes:
        mean: Mean of each metric over seeds.
        std: Sample standard deviation (``ddof=1``) over seeds; ``NaN`` for a single seed.
        std_error: The standard error over test images of a single seed's value (``NaN`` where
            none was computed, or the cell averages several seeds).
        uncertainty: What a cell's mean is uncertain by: ``std / √n`` over ``n > 1`` seeds, the
            test-set standard error for one seed; used to decide the best and the ties.
        count: Number of seeds with a finite value in each cell.
        best: ``True`` where the mean beats every other ranked mean of its column and dataset
            by more than their combined uncertainty (see :mod:`latentbench.reports.ranking`).
        tied: ``True`` where no mean is a clear best and this one is within the combined
            uncertainty of the top.
        caveat: Why a cell may not be compared with the others (``""``: no caveat); such a
            cell is marked :data:`CAVEAT_MARK`, footnoted and never ranked.
        higher_is_better: Direction of each metric (nullable boolean; ``NA``: none).
        target: Ideal value of each metric that is best at a value (``NaN``: none).
        seeds: Number of finished runs (seeds) of each configuration.
        reference: ``True`` for the real-data reference rows, shown but never ranked.
    """

    mean: pd.DataFrame
    std: pd.DataFrame
    std_error: pd.DataFrame
    uncertainty: pd.DataFrame
    count: pd.DataFrame
    best: pd.DataFrame
    tied: pd.DataFrame
    caveat: pd.DataFrame
    higher_is_better: pd.Series
    target: pd.Series
    seeds: pd.Series
    reference: pd.Series

    @property
    def metrics(self) -> list[str]:
        """Metric names, in column order."""
        return [str(metric) for metric in self.mean.columns]

    def __len__(self) -> int:
        return len(self.mean)

    def direction(self, metric: str, up: str = "↑", down: str = "↓", towards: str = "→") -> str:
        """``↑``, ``↓`` or ``→<target>`` for ``metric``'s header."""
        return direction_symbol(self.higher_is_better[metric], self.target[metric], up, down,
                                towards)

    def select(self, metrics: list[str]) -> SummaryTable:
        """The same table with only ``metrics`` (those present), in that order; rows without
        any of them are dropped."""
        keep = [m for m in metrics if m in self.mean.columns]
        rows = self.count[keep].gt(0).any(axis=1) if keep else self.count.index.notna()
        frames = {name: getattr(self, name).loc[rows, keep]
                  for name in ("mean", "std", "std_error", "uncertainty", "count", "best",
                               "tied", "caveat")}
        return SummaryTable(**frames, higher_is_better=self.higher_is_better[keep],
                            target=self.target[keep], seeds=self.seeds[rows],
                            reference=self.reference[rows])

    def cells(self, digits: int = 4, pm: str = " ± ", mark: str = CAVEAT_MARK) -> pd.DataFrame:
        """Format each metric cell as ``mean ± spread``.

        The spread is the sample standard deviation over seeds when a cell has several, else
        the standard error over test images of its one value (nothing when none is known). A
        cell whose seed count differs from its row's ``n`` is suffixed ``(n=k)``; a cell with a
        caveat is suffixed ``mark``.

        Args:
            digits: Significant digits of the mean; the spread gets two, enough to judge it.
            pm: The separator between mean and spread (``" $\\pm$ "`` for LaTeX).
            mark: The caveat marker (``"$^\\ddagger$"`` for LaTeX).

        Returns:
            Strings shaped like :attr:`mean`; empty where a metric is absent for a config.
        """
        mean_text = self.mean.map(lambda v: _format_number(v, digits))
        spread = self.std.where(self.count > 1, self.std_error)
        spread_text = spread.map(lambda v: _format_number(v, 2))
        text = mean_text.where(spread_text.eq(""), mean_text + pm + spread_text)
        row_n = pd.DataFrame(
            np.repeat(self.seeds.to_numpy()[:, None], self.mean.shape[1], axis=1),
            index=self.mean.index,
            columns=self.mean.columns,
        )
        partial = (self.count != row_n) & (self.count > 0)
        text = text.where(~partial, text + " (n=" + self.count.astype(str) + ")")
        text = text.where(self.caveat.eq(""), text + mark)
        return text.where(self.count > 0, "")

    def config_frame(self) -> pd.DataFrame:
        """Display strings of the configuration columns and the seed count ``n``.

        Returns:
            One row per configuration, index aligned with :attr:`mean`, columns
            :data:`CONFIG_COLUMNS` then ``n``. A missing β (a model without one) shows ``–``.
        """
        config = self.mean.index.to_frame(index=False)
        config["decoder"] = config["decoder"].fillna("–")
        config["beta"] = config["beta"].map(lambda v: _format_number(v, 4) or "–")
        config["latent_dim"] = config["latent_dim"].map(lambda v: "–" if pd.isna(v) else str(v))
        config["n"] = self.seeds.to_numpy()
        config.index = self.mean.index
        return config.astype(str)

    def display(self, digits: int = 4, pm: str = " ± ", mark: str = CAVEAT_MARK) -> pd.DataFrame:
        """The flat display table: configuration columns, ``n``, then one column per metric."""
        return pd.concat([self.config_frame(), self.cells(digits=digits, pm=pm, mark=mark)],
                         axis=1)

    def caveats(self) -> list[str]:
        """The distinct caveats of the table's cells, for the footnote."""
        found = self.caveat.where(self.count > 0, "").to_numpy().ravel()
        return list(dict.fromkeys(text for text in found if text))

    def caption(self) -> str:
        """A caption saying what the cells and the ± are, how the best is chosen, and the
        caveats."""
        counts = sorted(set(self.seeds[~self.reference].tolist()))
        if not counts:
            return "No finished runs."
        legend = ("best per metric and dataset in bold only where it beats the runner-up by more "
                  "than their combined uncertainty, entries tied for best in italics; ↑ higher "
                  "is better, ↓ lower is better, →x best at x.")
        one = "standard error over test images"
        if counts == [1]:
            what = f"Values from a single seed per configuration ± their {one}"
        else:
            seeds = (f"{counts[0]} seeds" if len(counts) == 1
                     else f"n seeds ({counts[0]}–{counts[-1]}, see column n)")
            what = (f"Mean ± sample standard deviation (ddof=1) over {seeds} per configuration "
                    f"(a single seed: ± its {one})")
        parts = [f"{what}; {legend}"]
        if self.reference.any():
            parts.append(f"{REFERENCE_MODEL}: real images that are not the test set, scored "
                         f"like samples (a floor or ceiling for the sample metrics), never ranked.")
        parts += [f"{CAVEAT_MARK} {text}; not ranked." for text in self.caveats()]
        return " ".join(parts)


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

    The best cell per metric is chosen on the oriented mean (by direction, or by the distance
    to a target), separately for each dataset because values on different datasets are not
    comparable, and only where it beats the runner-up by more than the combined uncertainty;
    reference rows and cells with a caveat are never ranked.

    Args:
        results: Output of :func:`load_results` (or a frame with the same columns).

    Returns:
        A :class:`SummaryTable`; render it with :func:`to_markdown`, :func:`to_latex` or the
        HTML report.

    Raises:
        ValueError: If required columns are missing, or a metric is given two directions or
            targets.
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
    done["caveat"] = done["caveat"].fillna("").astype(str)
    metrics = list(pd.unique(done["metric"]))

    # dropna=False keeps configurations whose β is NaN (a plain AE has no β).
    grouped = done.groupby([*config, "metric"], dropna=False, sort=False)
    stats = grouped["value"].agg(["mean", "std", "count"])
    stats["std_error"] = grouped["std_error"].mean()
    stats["caveat"] = grouped["caveat"].agg(lambda texts: "; ".join(dict.fromkeys(
        t for t in texts if t)))
    frames = {name: stats[name].unstack("metric").reindex(columns=metrics)
              for name in ("mean", "std", "count", "std_error", "caveat")}
    mean = frames["mean"].sort_index(na_position="last")
    # The real-data reference leads its dataset's rows: it is what the others are read against.
    order = sorted(range(len(mean)), key=lambda i: (
        str(mean.index[i][0]), mean.index.get_level_values("model")[i] != REFERENCE_MODEL, i))
    mean = mean.iloc[order]
    std, std_error = (frames[name].reindex(mean.index) for name in ("std", "std_error"))
    count = frames["count"].reindex(mean.index).fillna(0).astype(int)
    caveat = frames["caveat"].reindex(mean.index).fillna("").astype(str)
    std_error = std_error.where(count == 1)
    uncertainty = (std / np.sqrt(count.where(count > 0))).where(count > 1, std_error)
    for frame in (mean, std, std_error, uncertainty, count, caveat):
        frame.columns.name = "metric"

    seeds = done.groupby(config, dropna=False)["run_id"].nunique().reindex(mean.index).astype(int)
    seeds.name = "n"
    reference = pd.Series(mean.index.get_level_values("model") == REFERENCE_MODEL,
                          index=mean.index, name="reference")

    higher_is_better = _one_per_metric(done, "higher_is_better", metrics).astype("boolean")
    target = pd.to_numeric(_one_per_metric(done, "target", metrics)).astype("float64")
    scores = oriented(mean, higher_is_better, target)
    rankable = caveat.eq("") & ~pd.DataFrame(
        np.repeat(reference.to_numpy()[:, None], len(metrics), axis=1),
        index=mean.index, columns=mean.columns)
    ranking = rank_columns(scores, uncertainty, rankable, "dataset")
    return SummaryTable(
        mean=mean, std=std, std_error=std_error, uncertainty=uncertainty, count=count,
        best=ranking.best, tied=ranking.tied, caveat=caveat,
        higher_is_better=higher_is_better.rename("higher_is_better"),
        target=target.rename("target"), seeds=seeds, reference=reference,
    )


def _one_per_metric(done: pd.DataFrame, column: str, metrics: list[str]) -> pd.Series:
    """One value of ``column`` (a direction or a target) per metric; rows that disagree are
    an error, not a guess."""
    found = done.groupby("metric", sort=False)[column].agg(lambda c: set(c.dropna().tolist()))
    conflicting = found[found.map(len) > 1]
    if len(conflicting):
        raise ValueError(f"metric(s) with conflicting {column}: "
                         + ", ".join(map(str, conflicting.index)))
    return found.map(lambda values: next(iter(values)) if values else None).reindex(metrics)


def _emphasis(table: SummaryTable, cells: pd.DataFrame, bold: tuple[str, str],
              italic: tuple[str, str]) -> pd.DataFrame:
    """``cells`` with the clear best wrapped in ``bold`` and the tied ones in ``italic``."""
    filled = cells.ne("")
    cells = cells.where(~(table.best & filled), bold[0] + cells + bold[1])
    return cells.where(~(table.tied & filled), italic[0] + cells + italic[1])


def to_markdown(table: SummaryTable, caption: str | None = None, digits: int = 4) -> str:
    """Render the summary as a GitHub-flavoured Markdown pipe table: the clear best in bold,
    the tied in italics, caveats marked.

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
    marked = _emphasis(table, shown[table.metrics], ("**", "**"), ("*", "*"))
    shown = pd.concat([shown.drop(columns=table.metrics), marked], axis=1)

    headers = [_HEADERS[c] for c in (*CONFIG_COLUMNS, "n")] + [
        f"{metric} {table.direction(metric)}".rstrip() for metric in table.metrics
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

    The clear best is wrapped in ``\\textbf{}``, the tied in ``\\textit{}``; names are
    LaTeX-escaped; the spread uses ``$\\pm$``; headers carry ``$\\uparrow$``,
    ``$\\downarrow$`` or ``$\\to$1`` for the direction or target; a cell with a caveat is
    marked ``$^\\ddagger$``. A table estimated wider than a one-column page is scaled to the
    line width with ``\\resizebox``. Needs ``\\usepackage{booktabs}`` and ``graphicx``.

    Args:
        table: Output of :func:`summary_table`.
        caption: The table caption; defaults to :meth:`SummaryTable.caption`.
        label: The ``\\label``; ``None`` for none.
        digits: Significant digits of the means.

    Returns:
        The LaTeX source of a ``table`` environment.
    """
    shown = table.display(digits=digits, pm=" $\\pm$ ", mark="$^\\ddagger$")
    config_columns = [*CONFIG_COLUMNS, "n"]
    marked = _emphasis(table, shown[table.metrics], ("\\textbf{", "}"), ("\\textit{", "}"))
    shown = pd.concat([shown.drop(columns=table.metrics), marked], axis=1).reset_index(drop=True)

    headers = {c: latex_escape(_HEADERS[c]) for c in config_columns}
    headers["beta"] = "$\\beta$"
    for metric in table.metrics:
        symbol = table.direction(metric, "$\\uparrow$", "$\\downarrow$", "$\\to$")
        headers[metric] = latex_escape(metric) + (f" {symbol}" if symbol else "")

    styler = (
        shown.style.hide(axis="index")
        # Config cells are user text (model names may hold "_"); metric cells are ours and
        # already contain LaTeX ($\pm$), so only the former are escaped.
        .format(latex_escape, subset=config_columns)
        .format_index(lambda c: headers[c], axis=1)
    )
    caption_text = caption if caption is not None else table.caption()
    caption_text = (
        caption_text.replace("±", "$\\pm$")
        .replace("↑", "$\\uparrow$")
        .replace("↓", "$\\downarrow$")
        .replace("→", "$\\to$")
        .replace(CAVEAT_MARK, "$^\\ddagger$")
        .replace("–", "--")
    )
    latex = styler.to_latex(
        caption=caption_text,
        label=label,
        hrules=True,
        position_float="centering",
        column_format="l" * len(config_columns) + "r" * len(table.metrics),
    )
    plain = table.display(digits=digits)
    width = sum(_LATEX_PT_PER_CHAR * max(len(str(name)) + 2, *(len(c) for c in plain[name]))
                + _LATEX_COLUMN_PT for name in plain.columns)
    if width > _LATEX_TEXT_WIDTH_PT:
        # Wider than a one-column page: scale the tabular to the line width (graphicx).
        latex = latex.replace("\\begin{tabular}", "\\resizebox{\\linewidth}{!}{%\n\\begin{tabular}")
        latex = latex.replace("\\end{tabular}\n", "\\end{tabular}}\n")
    return latex


#: A one-column article's text width (10 pt, default margins), an average character's width at
#: 10 pt, and the two column separations of a cell: for the estimate of a table's width.
_LATEX_TEXT_WIDTH_PT = 345.0
_LATEX_PT_PER_CHAR = 5.0
_LATEX_COLUMN_PT = 12.0


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
    mean, sample standard deviation over seeds, test-set standard error (one seed), seed count,
    whether it is the clear best or tied for best, and its caveat.

    Numbers stay numbers (full precision) so that the file can be read back for plotting;
    the header of a metric's columns is ``<metric> mean``, ``<metric> std``, ``<metric> se``,
    ``<metric> n``, ``<metric> best``, ``<metric> tied`` and ``<metric> caveat``.

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
            f"{metric} se": table.std_error[metric],
            f"{metric} n": table.count[metric],
            f"{metric} best": table.best[metric],
            f"{metric} tied": table.tied[metric],
            f"{metric} caveat": table.caveat[metric],
        }))
    return pd.concat(parts, axis=1).to_csv(index=False)
