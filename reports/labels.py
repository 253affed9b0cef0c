"""Human-readable labels of configurations and metric directions, shared by report parts.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from latentbench.reports.table import CONFIG_COLUMNS

__all__ = ["arrow", "config_key", "config_label", "direction_text", "format_beta"]


def format_beta(beta: object) -> str | None:
    """β to four significant digits, or ``None`` for a model without one (a plain AE)."""
    if beta is None or pd.isna(beta):
        return None
    return f"{float(beta):.4g}"


def config_label(
    record: dict[str, Any], *, with_decoder: bool = True, with_seed: bool = False
) -> str:
    """A short label such as ``mnist5k · vae · transposed · β=1 · z=16 · seed 0``.

    Args:
        record: A results row (or configuration) as a dict with the configuration columns.
        with_decoder: Include the decoder; off when the decoders are the columns of a table.
        with_seed: Include the seed.
    """
    parts = [str(record["dataset"]), str(record["model"])]
    if with_decoder:
        parts.append(str(record["decoder"]))
    beta = format_beta(record["beta"])
    if beta is not None:
        parts.append(f"β={beta}")
    if not pd.isna(record["latent_dim"]):
        parts.append(f"z={record['latent_dim']}")
    if with_seed and not pd.isna(record["seed"]):
        parts.append(f"seed {record['seed']}")
    return " · ".join(parts)


def config_key(
    record: dict[str, Any], columns: tuple[str, ...] = CONFIG_COLUMNS
) -> tuple[str, ...]:
    """A hashable key of a configuration; missing values key as ``""``."""
    # NaN != NaN, so key configurations by their display strings instead of raw values.
    return tuple("" if pd.isna(record[c]) else str(record[c]) for c in columns)


def arrow(direction: object) -> str:
    """``↑`` for higher-is-better, ``↓`` for lower-is-better, ``""`` when unknown."""
    if direction is None or direction is pd.NA or pd.isna(direction):
        return ""
    return "↑" if bool(direction) else "↓"


def direction_text(direction: object) -> str:
    """The direction in words, for tooltips and screen readers."""
    return {"↑": "higher is better", "↓": "lower is better"}.get(
        arrow(direction), "direction unknown"
    )
