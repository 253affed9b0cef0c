"""Which cell of a summary table is best: directions, targets and uncertainty.

A metric improves towards one end (``higher_is_better`` true or false) or towards a value (its
``target``: checkerboard 1, density 1, generalization gap 0). Every cell is turned into an
*oriented score* that is higher when better: the value, its negation, or minus its distance to
the target. A cell is the clear best of its column only when its score beats the runner-up's by
more than their combined uncertainty, √(u₁² + u₂²); otherwise every cell within that margin of
the top is *tied* for best, and none is bolded. Cells that may not be ranked (a reference row,
a value the model cannot be compared on) take part in neither.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["Ranking", "direction_symbol", "oriented", "rank_columns"]


def oriented(values: pd.DataFrame, higher_is_better: pd.Series, target: pd.Series) -> pd.DataFrame:
    """Scores that are higher when better, column by column.

    Args:
        values: cells, one column per metric.
        higher_is_better: per metric, nullable boolean (``NA``: no direction).
        target: per metric, the ideal value (``NaN``: none).

    Returns:
        ``values`` for higher-is-better metrics, ``-values`` for lower-is-better ones,
        ``-|values - target|`` for target metrics, ``NaN`` for metrics with neither.
    """
    scores = pd.DataFrame(np.nan, index=values.index, columns=values.columns)
    for metric in values.columns:
        goal = target.get(metric, np.nan)
        direction = higher_is_better.get(metric, pd.NA)
        if goal is not None and not pd.isna(goal):
            scores[metric] = -(values[metric] - float(goal)).abs()
        elif direction is not pd.NA and not pd.isna(direction):
            scores[metric] = values[metric] if bool(direction) else -values[metric]
    return scores


def direction_symbol(direction: object, target: object, up: str = "↑", down: str = "↓",
                     towards: str = "→") -> str:
    """``↑``, ``↓``, ``→1`` (a target of 1) or ``""`` when the metric has neither."""
    if target is not None and not pd.isna(target):
        return f"{towards}{float(target):g}"
    if direction is None or direction is pd.NA or pd.isna(direction):
        return ""
    return up if bool(direction) else down


class Ranking:
    """The clear best and the tied cells of each column.

    Attributes:
        best: ``True`` where a cell beats every other ranked cell of its column and group by
            more than their combined uncertainty.
        tied: ``True`` where no cell is a clear best and this one is within the combined
            uncertainty of the top score (the top cell included).
    """

    def __init__(self, best: pd.DataFrame, tied: pd.DataFrame) -> None:
        self.best = best
        self.tied = tied


def rank_columns(scores: pd.DataFrame, uncertainty: pd.DataFrame, rankable: pd.DataFrame,
                 group_level: str) -> Ranking:
    """Find the best and the tied cells of each column within each group of rows.

    Args:
        scores: oriented scores (:func:`oriented`); ``NaN`` cells are not ranked.
        uncertainty: the standard uncertainty of each cell's score (``NaN`` counts as 0: a
            deterministic quantity such as a parameter count).
        rankable: ``False`` for cells that may not be ranked.
        group_level: the index level whose groups are ranked separately (``dataset``: values
            on different datasets are not comparable).

    Returns:
        A :class:`Ranking` shaped like ``scores``. A group with fewer than two ranked cells in
        a column marks nothing: a lone value is not best of anything.
    """
    best = pd.DataFrame(False, index=scores.index, columns=scores.columns)
    tied = best.copy()
    spread = uncertainty.reindex_like(scores).fillna(0.0)
    usable = scores.notna() & rankable.reindex_like(scores).fillna(False).astype(bool)
    positions = pd.Series(range(len(scores)), index=scores.index)
    for _, rows in positions.groupby(level=group_level, dropna=False, sort=False):
        where = rows.to_numpy()
        for column_index in range(scores.shape[1]):
            ok = usable.iloc[where, column_index].to_numpy()
            if ok.sum() < 2:
                continue
            candidates = where[ok]
            values = scores.iloc[candidates, column_index].to_numpy(float)
            errors = spread.iloc[candidates, column_index].to_numpy(float)
            order = np.argsort(-values, kind="stable")
            top, runner = order[0], order[1]
            margin = math.hypot(errors[top], errors[runner])
            if values[top] - values[runner] > margin:
                best.iloc[candidates[top], column_index] = True
                continue
            within = values[top] - values <= np.hypot(errors[top], errors)
            for index in candidates[within]:
                tied.iloc[index, column_index] = True
    return Ranking(best.astype(bool), tied.astype(bool))
