"""Ranking of summary cells: targets rank by distance, the best is bold only when it beats the
runner-up by more than the combined uncertainty, ties are marked, caveats and reference rows are
never ranked; and these reach the Markdown and LaTeX exports."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.results import write_results
from latentbench.benchmarks.run import RunOutcome
from latentbench.models import ModelSpec
from latentbench.reports.ranking import oriented, rank_columns
from latentbench.reports.table import load_results, summary_table, to_latex, to_markdown


def test_oriented_scores_follow_directions_and_targets():
    values = pd.DataFrame({"up": [1.0, 2.0], "down": [1.0, 2.0], "at1": [0.5, 1.2],
                           "none": [1.0, 2.0]})
    scores = oriented(values, pd.Series({"up": True, "down": False, "at1": pd.NA, "none": pd.NA},
                                        dtype="boolean"),
                      pd.Series({"up": np.nan, "down": np.nan, "at1": 1.0, "none": np.nan}))
    assert scores["up"].tolist() == [1.0, 2.0] and scores["down"].tolist() == [-1.0, -2.0]
    assert scores["at1"].tolist() == [-0.5, pytest_approx(-0.2)]
    assert scores["none"].isna().all()


def pytest_approx(x):
    import pytest

    return pytest.approx(x)


def _rank(scores, errors, rankable=None):
    index = pd.MultiIndex.from_tuples([("d", i) for i in range(len(scores))],
                                      names=["dataset", "row"])
    frame = pd.DataFrame({"m": scores}, index=index)
    spread = pd.DataFrame({"m": errors}, index=index)
    ok = pd.DataFrame({"m": rankable or [True] * len(scores)}, index=index)
    ranking = rank_columns(frame, spread, ok, "dataset")
    return ranking.best["m"].tolist(), ranking.tied["m"].tolist()


def test_a_clear_winner_is_best_and_a_gap_within_noise_is_a_tie():
    assert _rank([3.0, 1.0, 0.0], [0.1, 0.1, 0.1]) == ([True, False, False], [False] * 3)
    # 3.0 vs 2.9 with s.e. 0.1 each: combined 0.14 > 0.1, so a tie of the two; 0 is far off.
    assert _rank([3.0, 2.9, 0.0], [0.1, 0.1, 0.1]) == ([False] * 3, [True, True, False])
    # No uncertainty known: any gap decides (a parameter count).
    assert _rank([3.0, 2.9], [math.nan, math.nan]) == ([True, False], [False, False])
    # A lone rankable value is best of nothing; an unrankable cell never wins.
    assert _rank([3.0, 9.0], [0.0, 0.0], [True, False]) == ([False, False], [False, False])


def _write(path: Path) -> pd.DataFrame:
    """Three single-seed VAEs and a reference row, through the harness's results writer."""
    runs = []
    values = {  # checkerboard is best at 1; recon_mse of the third carries a caveat
        1.0: {"checkerboard": 0.02, "recon_mse": 0.020},
        2.0: {"checkerboard": 1.30, "recon_mse": 0.0201},
        4.0: {"checkerboard": 0.97, "recon_mse": 0.001},
    }
    for beta, metrics in values.items():
        config = RunConfig(model=ModelSpec(name="vae", beta=beta))
        caveats = {"recon_mse": "decoder sees max-pool switches"} if beta == 4.0 else {}
        runs.append((config, RunOutcome(config.run_id, "done", metrics=metrics,
                                        std_errors=dict.fromkeys(metrics, 0.0005),
                                        caveats=caveats)))
    write_results(path, runs)
    frame = load_results(path)
    reference = frame.iloc[[0]].assign(model="real-data", decoder=pd.NA, beta=np.nan,
                                       latent_dim=pd.NA, run_id="real", value=1.0,
                                       metric="checkerboard")
    return pd.concat([frame, reference], ignore_index=True)


def test_targets_ties_caveats_and_references_in_the_exports(tmp_path: Path):
    table = summary_table(_write(tmp_path / "results.csv"))
    by_beta = {beta: i for i, beta in enumerate(table.mean.index.get_level_values("beta"))}
    # checkerboard: 0.97 is 0.03 from 1, 1.30 is 0.30 from 1, 0.02 far; the reference's 1.0
    # would win but is never ranked.
    assert table.best["checkerboard"].tolist()[by_beta[4.0]]
    assert table.best["checkerboard"].sum() == 1
    # recon_mse: 0.020 vs 0.0201 with s.e. 0.0005 is a tie; the caveat's 0.001 takes no part.
    tied = table.tied["recon_mse"]
    assert tied.iloc[by_beta[1.0]] and tied.iloc[by_beta[2.0]] and not tied.iloc[by_beta[4.0]]
    assert not table.best["recon_mse"].any()
    markdown = to_markdown(table)
    assert "checkerboard →1" in markdown and "recon_mse ↓" in markdown
    assert "‡ decoder sees max-pool switches; not ranked." in markdown
    assert "real-data" in markdown and markdown.count("**") == 2
    latex = to_latex(table)
    assert r"checkerboard $\to$1" in latex and r"$^\ddagger$" in latex
    assert latex.count(r"\textit{") == 2 and latex.count(r"\textbf{") == 1
    assert "→" not in latex and "‡" not in latex
