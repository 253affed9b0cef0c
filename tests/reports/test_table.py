"""Tests of the results table: loading, mean ± std over seeds, best-value mask, renderers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from latentbench.reports import load_results, summary_table
from latentbench.reports.schema import RESULTS_COLUMNS
from latentbench.reports.table import to_latex, to_markdown

if TYPE_CHECKING:  # conftest is not importable at run time under --import-mode=importlib
    from conftest import FakeOut

AE = ("mnist5k", "ae", "transposed", np.nan, 16)
VAE = ("mnist5k", "vae", "unpool", 4.0, 16)


def _seed_values(fake: FakeOut, model: str, metric: str) -> np.ndarray:
    return np.array([v[metric] for (m, _, _, _), v in fake.values.items() if m == model])


def _row(frame: pd.DataFrame, config: tuple) -> pd.Series:
    """Row of a summary frame by config; NaN β cannot be looked up with .loc, so match."""
    index = frame.index.to_frame(index=False)
    beta_match = index["beta"].isna() if pd.isna(config[3]) else index["beta"].eq(config[3])
    match = (
        index["dataset"].eq(config[0])
        & index["model"].eq(config[1])
        & index["decoder"].eq(config[2])
        & beta_match
        & index["latent_dim"].eq(config[4])
    )
    assert match.sum() == 1, f"expected one row for {config}"
    return frame.iloc[int(np.flatnonzero(match.to_numpy())[0])]


def test_load_results_normalises_done_and_failed_rows(fake_out: FakeOut) -> None:
    results = load_results(fake_out.root)
    assert set(RESULTS_COLUMNS) <= set(results.columns)
    assert results["value"].dtype == "float64"
    assert results.loc[results["model"].eq("ae"), "beta"].isna().all()
    failed = results[results["status"].eq("failed")]
    assert len(failed) == 1
    assert failed["metric"].isna().all()
    assert failed["reason"].iloc[0] == fake_out.failed_reason
    assert results.loc[results["status"].eq("done"), "reason"].isna().all()
    assert set(results["status"]) == {"done", "failed"}


def test_load_results_accepts_the_csv_path(fake_out: FakeOut) -> None:
    assert len(load_results(fake_out.root / "results.csv")) == len(load_results(fake_out.root))


@pytest.mark.parametrize(("column", "cell", "allowed"), [
    ("status", "failed: out of memory", "status must be done or failed"),
    ("higher_is_better", "yes", "higher_is_better must be True, False or empty"),
    ("value", "twelve", "value must be a number"),
])
def test_load_results_refuses_cells_no_writer_produces(
    fake_out: FakeOut, column: str, cell: str, allowed: str
) -> None:
    csv = fake_out.root / "results.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame.loc[frame.index[-1], column] = cell
    frame.to_csv(csv, index=False)
    with pytest.raises(ValueError, match=allowed):
        load_results(fake_out.root)


def test_load_results_names_every_missing_column(fake_out: FakeOut) -> None:
    csv = fake_out.root / "results.csv"
    pd.read_csv(csv).drop(columns=["value", "higher_is_better"]).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="value") as error:
        load_results(fake_out.root)
    assert "higher_is_better" in str(error.value)
    assert "run_id" not in str(error.value).split("expected")[0]


def test_load_results_without_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path)


def test_mean_and_std_match_numpy(fake_out: FakeOut) -> None:
    table = summary_table(load_results(fake_out.root))
    assert len(table) == 2  # the failed β=8 run is not a row
    cells = table.cells()
    for config, model in ((AE, "ae"), (VAE, "vae")):
        for metric in fake_out.directions:
            values = _seed_values(fake_out, model, metric)
            mean, std = np.mean(values), np.std(values, ddof=1)
            assert _row(table.mean, config)[metric] == pytest.approx(mean)
            assert _row(table.std, config)[metric] == pytest.approx(std)
            assert _row(table.count, config)[metric] == 2
            assert _row(cells, config)[metric] == f"{mean:.4g} ± {std:.2g}"
    assert table.seeds.tolist() == [2, 2]


def test_single_seed_shows_its_test_set_standard_error(fake_out: FakeOut) -> None:
    results = load_results(fake_out.root)
    table = summary_table(results[results["seed"].eq(0) | results["status"].eq("failed")])
    value = fake_out.values[("vae", "unpool", 4.0, 0)]["recon_mse"]
    assert _row(table.cells(), VAE)["recon_mse"] == f"{value:.4g} ± {0.01 * value:.2g}"
    assert "single seed" in table.caption()
    assert "standard error over test images" in table.caption()


def test_cell_with_fewer_seeds_than_its_row_shows_n(fake_out: FakeOut) -> None:
    results = load_results(fake_out.root)
    dropped = results["model"].eq("vae") & results["seed"].eq(1)
    dropped &= results["metric"].eq("fid[lenet-mnist]")
    table = summary_table(results[~dropped])
    # One seed left: ± its test-set standard error (1 % of the value in the fixture).
    assert _row(table.cells(), VAE)["fid[lenet-mnist]"] == "25.2 ± 0.25 (n=1)"
    assert "(n=" not in _row(table.cells(), VAE)["recon_mse"]


def test_best_follows_metric_direction(fake_out: FakeOut) -> None:
    table = summary_table(load_results(fake_out.root))
    # recon_mse is lower-is-better and lowest for the AE; a max would pick the VAE.
    assert bool(_row(table.best, AE)["recon_mse"]) is True
    assert bool(_row(table.best, VAE)["recon_mse"]) is False
    # prior_coverage is higher-is-better and highest for the VAE.
    assert bool(_row(table.best, VAE)["prior_coverage"]) is True
    assert bool(_row(table.best, AE)["prior_coverage"]) is False
    assert table.best.sum().tolist() == [1, 1, 1]
    assert table.higher_is_better.to_dict() == fake_out.directions


def test_best_is_chosen_per_dataset(fake_out: FakeOut) -> None:
    results = load_results(fake_out.root)
    other = results.copy()
    other["dataset"] = "shapes"
    other["run_id"] = other["run_id"] + "-shapes"
    other.loc[other["metric"].eq("recon_mse"), "value"] *= 10  # worse on every row
    table = summary_table(pd.concat([results, other], ignore_index=True))
    best = table.best["recon_mse"].groupby(level="dataset").sum()
    assert best.to_dict() == {"mnist5k": 1, "shapes": 1}


def test_conflicting_directions_are_an_error(fake_out: FakeOut) -> None:
    results = load_results(fake_out.root)
    results.loc[results.index[0], "higher_is_better"] = True  # recon_mse row, otherwise False
    with pytest.raises(ValueError, match="recon_mse"):
        summary_table(results)


def test_markdown_bolds_best_and_marks_directions(fake_out: FakeOut) -> None:
    table = summary_table(load_results(fake_out.root))
    text = to_markdown(table)
    lines = text.splitlines()
    assert lines[0].startswith("| dataset | model |")
    assert "recon_mse ↓" in lines[0] and "prior_coverage ↑" in lines[0]
    ae_line = next(line for line in lines if "| ae |" in line)
    ae_mse = np.mean(_seed_values(fake_out, "ae", "recon_mse"))
    assert f"**{ae_mse:.4g} ± " in ae_line
    assert text.count("**") == 2 * 3  # one bold cell per metric
    assert table.caption() in text
    assert all(line.count("|") == lines[0].count("|") for line in lines[:4])


def test_latex_uses_textbf_booktabs_and_escapes(fake_out: FakeOut) -> None:
    table = summary_table(load_results(fake_out.root))
    latex = to_latex(table, caption="Mean ± std over 2 seeds.")
    assert "\\toprule" in latex and "\\bottomrule" in latex
    assert "recon\\_mse $\\downarrow$" in latex
    assert "prior\\_coverage $\\uparrow$" in latex
    ae_mse = np.mean(_seed_values(fake_out, "ae", "recon_mse"))
    assert f"\\textbf{{{ae_mse:.4g} $\\pm$ " in latex
    assert latex.count("\\textbf{") == 3
    assert "\\caption{Mean $\\pm$ std over 2 seeds.}" in latex
    assert "±" not in latex
