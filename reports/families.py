"""Which metrics a table shows: the headline scores first, then one table per family.

Thirty metric columns in alphabetical order put ``recon_mse`` and ``fid`` off-screen and make a
LaTeX table no page can hold. The report and the exports therefore lead with the headline
scores, one per question a reader asks first (how well does it reconstruct, how good are its
samples, how smooth are its interpolations, how well is the latent space covered, how fast is
it), and put every metric in its family's table, each at most :data:`MAX_COLUMNS` wide. The
one line ``latentbench run`` prints per run leads with :data:`RUN_HEADLINE`, looked up the
same way (:func:`headline_keys`).

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

__all__ = ["FAMILY_ORDER", "HEADLINE", "MAX_COLUMNS", "RUN_HEADLINE", "TableGroup",
           "headline_keys", "table_groups"]

#: A headline slot: metric base names, the first that a result has answering the slot's question.
HeadlineSlot = tuple[str, ...]
#: The headline table's slots, in order: reconstruction MSE, FID, interpolation smoothness,
#: latent coverage, disentanglement (MIG, on data with ground-truth factors), throughput
#: (training images per second where timed, else the parameter count, which every model has).
HEADLINE: tuple[HeadlineSlot, ...] = (
    ("recon_mse",), ("fid",), ("interp_smoothness",), ("prior_coverage",), ("mig",),
    ("train_img_s", "params"))
#: The slots of one run's progress line: reconstruction MSE, FID, the likelihood bound (−ELBO,
#: else the IWAE bound) and MIG where the data has factors; the rest is in the report.
RUN_HEADLINE: tuple[HeadlineSlot, ...] = (("recon_mse",), ("fid",), ("neg_elbo", "iwae_nll"),
                                          ("mig",))
#: The families of the metric registry, in display order; a family not listed comes last.
FAMILY_ORDER = ("reconstruction", "likelihood", "samples", "interpolation", "latent",
                "disentanglement", "cost")
#: The widest a family table gets; a wider family is split into parts.
MAX_COLUMNS = 10


@dataclass(frozen=True)
class TableGroup:
    """One table: its ``name`` (``headline``, a family, or ``family-2`` for a second part), a
    title, and its metric keys in column order."""

    name: str
    title: str
    metrics: list[str]


def _base(key: str) -> str:
    return key.partition("[")[0]


def headline_keys(metrics: Iterable[str], slots: Iterable[HeadlineSlot]) -> list[str]:
    """The keys of ``metrics`` that answer ``slots``, slot by slot: each takes every key (every
    feature space: ``fid[lenet-mnist]``, ``fid[inception-v3]``) of the first of its base names
    that ``metrics`` has; a slot none of whose names is there is skipped."""
    keys = list(metrics)
    found: list[str] = []
    for slot in slots:
        for name in slot:
            matching = [key for key in keys if _base(key) == name]
            if matching:
                found += matching
                break
    return found


def table_groups(results: pd.DataFrame, metrics: list[str]) -> list[TableGroup]:
    """The headline table, then a table per family, for the ``metrics`` of a summary.

    Args:
        results: long-format results (their ``family`` column names each metric's family).
        metrics: the summary's metric keys.

    Returns:
        Groups with at least one metric, the headline first.
    """
    present = set(metrics)
    headline = headline_keys(metrics, HEADLINE)
    groups = [TableGroup("headline", "Headline scores", headline)] if headline else []

    family_of = (results.dropna(subset=["metric"]).drop_duplicates("metric")
                 .set_index("metric")["family"].fillna("other").astype(str).to_dict())
    families = sorted({family_of.get(m, "other") for m in present},
                      key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER
                                     else len(FAMILY_ORDER), f))
    for family in families:
        members = sorted((m for m in metrics if family_of.get(m, "other") == family),
                         key=lambda m: (_base(m), m))
        parts = [members[i:i + MAX_COLUMNS] for i in range(0, len(members), MAX_COLUMNS)]
        for number, part in enumerate(parts, start=1):
            suffix = "" if len(parts) == 1 else f"-{number}"
            title = family.capitalize() + ("" if len(parts) == 1 else f" ({number}/{len(parts)})")
            groups.append(TableGroup(family + suffix, title, part))
    return groups
