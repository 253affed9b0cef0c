"""The report's Priors section: VAEs with different priors p(z) compared.

The output folders are written by hand to the harness's contract (``results.csv`` through the
schema's dtypes, and per run ``prior.json``, ``latents.npz``, ``samples.png`` and
``metrics.json``), with made-up numbers whose means, spreads and best cells are known.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import html5lib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from latentbench.reports import render_report
from latentbench.reports.plots_priors import ContourPanel, contour_figure, hdr_thresholds
from latentbench.reports.schema import (
    RESULTS_FILE,
    RUNS_DIR,
    MetricsDocument,
    RunFiles,
    metrics_document,
    results_frame_dtypes,
)
from latentbench.reports.section_priors import metric_title, priors, read_prior
from latentbench.reports.table import load_results

DATASET = "mnist5k"
#: metric -> (family, higher_is_better), as the metric registry has them.
METRICS = {"neg_elbo": ("likelihood", False), "iwae_nll": ("likelihood", False),
           "rate": ("likelihood", False), "distortion": ("likelihood", False),
           "prior_coverage": ("latent", True), "fid[lenet-mnist]": ("samples", False)}
DIRECTIONS = {metric: higher for metric, (_, higher) in METRICS.items()}


@dataclass(frozen=True)
class Run:
    """One finished run: its configuration, prior and metric values."""

    model: str
    prior: str | None  # None: a model without a prior (no prior.json)
    label: str
    latent_dim: int
    seed: int
    values: dict[str, float]

    @property
    def run_id(self) -> str:
        name = re.sub(r"[^a-z0-9]+", "-", self.model).strip("-")
        return f"{name}-z{self.latent_dim}-s{self.seed}"


def _gaussian_grid(size: int = 41, extent: float = 4.0, shift: float = 0.0,
                   ) -> dict[str, list]:
    z = np.linspace(-extent, extent, size)
    z1, z2 = np.meshgrid(z, z)
    log_prob = -0.5 * ((z1 - shift) ** 2 + z2 ** 2) - math.log(2 * math.pi)
    return {"z1": z.tolist(), "z2": z.tolist(), "log_prob": log_prob.tolist()}


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (28, 56), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


NORMAL, MOG = "vae", "vae (prior mog, K=10)"
#: Three VAE configurations (two priors, the mixture at two latent sizes) and an AE without a
#: prior. The mixture at z=2 has the lowest −ELBO and FID and the highest coverage; IWAE is
#: measured only for the z=8 mixture (a lone value, never bold); FID not for it.
TWO_PRIORS: tuple[Run, ...] = (
    *(Run(NORMAL, "normal", "normal", 2, seed,
          {"neg_elbo": v, "rate": 4 + seed, "distortion": v - 4 - seed,
           "prior_coverage": c, "fid[lenet-mnist]": f})
      for seed, v, c, f in ((0, 100.0, 0.5, 30.0), (1, 102.0, 0.6, 32.0), (2, 104.0, 0.7, 34.0))),
    *(Run(MOG, "mog", "mog, K=10", 2, seed,
          {"neg_elbo": v, "rate": 6 + seed, "distortion": v - 6 - seed,
           "prior_coverage": c, "fid[lenet-mnist]": f})
      for seed, v, c, f in ((0, 95.0, 0.8, 20.0), (1, 96.0, 0.9, 22.0))),
    Run(MOG, "mog", "mog, K=10", 8, 0,
        {"neg_elbo": 99.0, "rate": 12.0, "distortion": 87.0, "prior_coverage": 0.3,
         "iwae_nll": 97.5}),
    Run("ae", None, "", 2, 0, {"fid[lenet-mnist]": 50.0}),
)


@dataclass
class Out:
    root: Path
    runs: tuple[Run, ...]
    samples: dict[str, bytes] = field(default_factory=dict)  # run id -> samples.png


def write_out(root: Path, runs: tuple[Run, ...]) -> Out:
    """``results.csv`` and a run folder per run, as the harness writes them."""
    out = Out(root, runs)
    rows = []
    for index, run in enumerate(runs):
        base = {"run_id": run.run_id, "suite": "priors", "dataset": DATASET,
                "model": run.model, "decoder": "transposed",
                "beta": 1.0 if run.prior else math.nan, "latent_dim": run.latent_dim,
                "seed": run.seed, "status": "done"}
        if not run.values:  # a run without metrics still has its one row
            rows.append(base)
        for metric, value in run.values.items():
            family, higher = METRICS[metric]
            rows.append({**base, "metric": metric, "family": family, "value": value,
                         "std_error": 0.001 * value, "samples": 1000,
                         "higher_is_better": higher})
        folder = root / RUNS_DIR / run.run_id
        folder.mkdir(parents=True)
        (folder / RunFiles.METRICS).write_text(json.dumps(metrics_document(MetricsDocument(
            values=run.values, samples=dict.fromkeys(run.values, 1000)))))
        (folder / RunFiles.STATUS).write_text("done\n")
        out.samples[run.run_id] = _png(index)
        (folder / RunFiles.SAMPLES).write_bytes(out.samples[run.run_id])
        rng = np.random.default_rng(index)
        np.savez(folder / RunFiles.LATENTS, mean=rng.normal(size=(60, run.latent_dim)),
                 labels=np.arange(60) % 10)
        if run.prior is not None:
            document = {"prior": run.prior, "label": run.label, "latent_dim": run.latent_dim}
            if run.latent_dim == 2:
                document["density"] = _gaussian_grid(shift=0.5 if run.prior == "mog" else 0)
            (folder / RunFiles.PRIOR).write_text(json.dumps(document))
    results_frame_dtypes(pd.DataFrame(rows)).to_csv(root / RESULTS_FILE, index=False)
    return out


@pytest.fixture(scope="module")
def two_priors(tmp_path_factory: pytest.TempPathFactory) -> Out:
    return write_out(tmp_path_factory.mktemp("priors") / "out", TWO_PRIORS)


@pytest.fixture(scope="module")
def section(two_priors: Out) -> dict:
    return priors(two_priors.root / RUNS_DIR, load_results(two_priors.root), DIRECTIONS)


def _section(out: Out) -> dict:
    return priors(out.root / RUNS_DIR, load_results(out.root), DIRECTIONS)


# --- when the section is shown ---------------------------------------------------------------


def test_section_is_absent_with_one_prior(tmp_path: Path) -> None:
    one = tuple(r for r in TWO_PRIORS if r.prior in ("normal", None))
    assert _section(write_out(tmp_path / "one", one)) == {}
    # Models without a prior.json at all: nothing to compare either.
    assert _section(write_out(tmp_path / "none", (TWO_PRIORS[-1],))) == {}


def test_section_is_present_with_two_priors(section: dict) -> None:
    assert section["priors"] == ["normal", "mog, K=10"]  # N(0, I) first
    assert section["estimated"] is True
    for name in ("rate_distortion", "contours"):
        assert section[name] is not None and section[name].data_uri.startswith(
            "data:image/png;base64,")
    # The AE has no prior: none of its rows, samples or panels.
    assert all(" · ae · " not in row["label"] for row in section["table"]["rows"])
    assert all(" · ae · " not in image.title for image in section["samples"])


def test_a_damaged_prior_json_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / RunFiles.PRIOR
    path.write_text("{not json")
    assert read_prior(path) is None
    path.write_text(json.dumps({"prior": "mog", "latent_dim": 2,
                                "density": {"z1": [0, 1], "z2": [0, 1], "log_prob": [[0]]}}))
    info = read_prior(path)
    assert info is not None and info.label == "mog" and info.density is None  # bad grid dropped


# --- the table -------------------------------------------------------------------------------


def _cells(section: dict) -> dict[tuple[tuple[str, str], str], dict]:
    """((row label, prior), metric key) -> cell."""
    keys = [header["key"] for header in section["table"]["headers"]]
    return {((row["label"], row["prior"]), key): cell for row in section["table"]["rows"]
            for key, cell in zip(keys, row["cells"], strict=True)}


def _label(model: str, latent: int) -> str:
    return f"{DATASET} · {model} · transposed · β=1 · z={latent}"


def _row(model: str, latent: int) -> tuple[str, str]:
    """A table row's (configuration, prior): the model's name there is without its prior."""
    return _label("vae", latent), "normal" if model == NORMAL else "mog, K=10"


def test_table_cells_are_mean_and_sample_std_over_seeds(section: dict) -> None:
    table = section["table"]
    assert [h["key"] for h in table["headers"]] == [
        "neg_elbo", "iwae_nll", "rate", "distortion", "prior_coverage", "fid[lenet-mnist]"]
    assert [h["title"] for h in table["headers"]][:2] == ["−ELBO", "IWAE NLL"]
    assert {h["key"]: h["arrow"] for h in table["headers"]}["prior_coverage"] == "↑"
    assert {h["key"]: h["arrow"] for h in table["headers"]}["neg_elbo"] == "↓"
    assert [(row["label"], row["prior"], row["n"]) for row in table["rows"]] == [
        (*_row(NORMAL, 2), 3), (*_row(MOG, 2), 2), (*_row(MOG, 8), 1)]
    cells = _cells(section)
    for model, latent in ((NORMAL, 2), (MOG, 2)):
        runs = [r for r in TWO_PRIORS if r.model == model and r.latent_dim == latent]
        for metric in ("neg_elbo", "prior_coverage", "fid[lenet-mnist]"):
            values = np.array([r.values[metric] for r in runs])
            expected = f"{values.mean():.4g} ± {values.std(ddof=1):.2g}"
            assert cells[(_row(model, latent), metric)]["text"] == expected, metric
            assert float(cells[(_row(model, latent), metric)]["value"]) == pytest.approx(
                values.mean())
    assert cells[(_row(NORMAL, 2), "neg_elbo")]["text"] == "102 ± 2"
    assert cells[(_row(MOG, 2), "neg_elbo")]["text"] == "95.5 ± 0.71"
    # A single seed has no spread to show, and a metric a row lacks is an empty cell.
    assert cells[(_row(MOG, 8), "neg_elbo")]["text"] == "99"
    assert cells[(_row(MOG, 8), "fid[lenet-mnist]")]["text"] == ""
    assert cells[(_row(NORMAL, 2), "iwae_nll")]["text"] == ""
    assert "1 seed" in table["caption"] or "n seeds (1–3" in table["caption"]


def test_table_bolds_the_best_of_each_column(section: dict) -> None:
    cells = _cells(section)
    best = {metric for (label, metric), cell in cells.items() if cell["best"]}
    best_rows = {metric: label for (label, metric), cell in cells.items() if cell["best"]}
    # Lower −ELBO and FID, higher coverage: all the z=2 mixture's; the z=8 mixture's lone IWAE
    # value is not best of anything; FID ranks only the rows that have it. Rate and distortion
    # trade off against each other (the normal prior has the clearly lowest rate): never bold.
    assert best == {"neg_elbo", "prior_coverage", "fid[lenet-mnist]"}
    assert best_rows["neg_elbo"] == best_rows["prior_coverage"] == _row(MOG, 2)
    assert best_rows["fid[lenet-mnist]"] == _row(MOG, 2)
    assert not cells[(_row(MOG, 8), "iwae_nll")]["best"]
    assert "Rate and distortion are not ranked" in section["table"]["caption"]
    assert sum(cell["best"] for cell in cells.values()) == len(best)


def test_metric_titles() -> None:
    assert metric_title("fid[lenet-mnist]") == "FID (lenet-mnist)"
    assert metric_title("prior_mmd") == "prior MMD"
    assert metric_title("something_else") == "something_else"


# --- samples and contours --------------------------------------------------------------------


def test_samples_show_each_configurations_lowest_seed(section: dict, two_priors: Out) -> None:
    samples = section["samples"]
    assert [image.title for image in samples] == [
        f"{_label(NORMAL, 2)} · seed 0", f"{_label(MOG, 2)} · seed 0",
        f"{_label(MOG, 8)} · seed 0"]
    assert [image.caption for image in samples] == [
        "prior: normal", "prior: mog, K=10", "prior: mog, K=10"]
    lowest = [two_priors.samples[r.run_id] for r in TWO_PRIORS if r.seed == 0 and r.prior]
    embedded = [base64.b64decode(image.data_uri.split(",", 1)[1]) for image in samples]
    assert embedded == lowest


def _enclosed_mass_of_standard_normal(log_threshold: float) -> float:
    """P(p(z) ≥ t) for z ~ N(0, I) in 2-d: the disc of radius r with p(r) = t."""
    radius_sq = -2 * (log_threshold + math.log(2 * math.pi))
    return 1 - math.exp(-radius_sq / 2)


def test_hdr_thresholds_enclose_their_mass_of_a_standard_normal() -> None:
    grid = _gaussian_grid(size=241, extent=6.0)
    thresholds = hdr_thresholds(grid["z1"], grid["z2"], np.array(grid["log_prob"]))
    assert list(thresholds) == [0.5, 0.9, 0.99]
    # The 50 % region of N(0, I) in 2-d is the disc of radius √(2 ln 2), where p = 1/(4π).
    assert thresholds[0.5] == pytest.approx(-math.log(4 * math.pi), abs=0.02)
    for mass, threshold in thresholds.items():
        assert _enclosed_mass_of_standard_normal(threshold) == pytest.approx(mass, abs=0.005)


def test_a_grid_too_small_for_a_mass_has_no_contour_for_it() -> None:
    grid = _gaussian_grid(size=81, extent=1.5)  # holds (erf(1.5/√2))² ≈ 0.75 of the mass
    thresholds = hdr_thresholds(grid["z1"], grid["z2"], np.array(grid["log_prob"]))
    assert list(thresholds) == [0.5]
    assert _enclosed_mass_of_standard_normal(thresholds[0.5]) == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="shape"):
        hdr_thresholds(grid["z1"], grid["z2"], np.zeros((3, 3)))


def test_contours_are_drawn_at_the_hdr_thresholds() -> None:
    from matplotlib.contour import ContourSet

    grid = _gaussian_grid(size=121, extent=5.0)
    log_prob = np.array(grid["log_prob"])
    panel = ContourPanel(title="mnist5k · vae · z=2 · seed 0 — prior normal",
                         z1=np.array(grid["z1"]), z2=np.array(grid["z2"]), log_prob=log_prob,
                         points=np.random.default_rng(0).normal(size=(40, 2)),
                         labels=np.arange(40) % 10)
    fig = contour_figure([panel])
    drawn = [c for ax in fig.axes for c in ax.get_children() if isinstance(c, ContourSet)]
    assert len(drawn) == 1
    expected = sorted(panel.thresholds().values())  # 99 % (lowest density) first
    np.testing.assert_allclose(drawn[0].levels, expected)
    labels = sorted(t.get_text() for ax in fig.axes for t in ax.texts)
    assert labels == ["50 %", "90 %", "99 %"]


# --- the HTML report -------------------------------------------------------------------------


def test_report_renders_the_priors_section(two_priors: Out) -> None:
    html = render_report(two_priors.root).read_text(encoding="utf-8")
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(html)
    assert not parser.errors
    assert '<a href="#priors">Priors</a>' in html
    section = html.split('<section id="priors">', 1)[1].split("</section>", 1)[0]
    assert "<h2>Priors</h2>" in section and "Monte-Carlo estimate" in section
    assert "Rate–distortion plane by prior" in section
    assert "Each prior&#39;s density over its codes" in section
    assert "50 %, 90 % and 99 %" in section
    assert '<table class="sortable" id="priors-table">' in section
    assert re.search(r'<td class="num best" data-value="95\.5"><strong>95\.5 ± 0\.71</strong>',
                     section)
    assert "over n seeds (1–3, see column n)" in section
    assert section.count("<img ") == 2 + 3  # two figures, three configurations' samples


def test_report_without_two_priors_has_no_section(tmp_path: Path) -> None:
    one = tuple(r for r in TWO_PRIORS if r.prior in ("normal", None))
    html = render_report(write_out(tmp_path / "one", one).root).read_text(encoding="utf-8")
    assert 'id="priors"' not in html and 'href="#priors"' not in html
