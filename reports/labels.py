"""Keys of configurations and the words for metric directions, shared by report parts (the
label of a configuration is :func:`latentbench.reports.schema.config_label`).

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from latentbench.reports.ranking import direction_symbol
from latentbench.reports.schema import CONFIG_COLUMNS

__all__ = ["arrow", "config_key", "direction_text"]


def config_key(
    record: dict[str, Any], columns: tuple[str, ...] = CONFIG_COLUMNS
) -> tuple[str, ...]:
    """A hashable key of a configuration; missing values key as ``""``."""
    # NaN != NaN, so key configurations by their display strings instead of raw values.
    return tuple("" if pd.isna(record[c]) else str(record[c]) for c in columns)


def arrow(direction: object) -> str:
    """``↑`` for higher-is-better, ``↓`` for lower-is-better, ``""`` when unknown."""
    return direction_symbol(direction, None)


def direction_text(direction: object, target: object = None) -> str:
    """The direction or target in words, for tooltips and screen readers."""
    if target is not None and not pd.isna(target):
        return f"best at {float(target):g}"
    return {"↑": "higher is better", "↓": "lower is better"}.get(
        arrow(direction), "no direction"
    )
