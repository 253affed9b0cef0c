"""The report's disentanglement section, end to end: a tiny β sweep and a β-TCVAE trained on
the real ``shapes`` grid by the ``latentbench`` command, its report read as HTML and shown in a
real browser; and the figures' input checks."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentbench.reports.plots_disentangle import MIPanel

SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")

#: Tiny models on the real sprites, β ∈ {1, 4} and a β-TCVAE; the cheap disentanglement scores
#: only (DCI and SAP fit classifiers: tests/metrics/test_disentanglement.py covers them), on a
#: pool large enough for FactorVAE's batches of 64 per orientation value.
SUITE = """
[suite]
name = "tiny-disentangle"
description = "tiny shapes sweep"

[data]
dataset = "shapes"
n_train = 256
n_test = 64

[model]
latent_dim = 4
width = 4
hidden = 16

[train]
epochs = 1
batch_size = 64

[eval]
metrics = ["distortion", "rate", "mig", "modularity", "factorvae_score",
           "gaussian_total_correlation"]
factor_points = 3000
factor_test_points = 1500
grid_images = 4
samples = 4

[grid]
model = [{ name = "vae", beta = 1.0 }, { name = "vae", beta = 4.0 }, { name = "btcvae" }]
"""


def disentangle_run(root: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
    """The finished ``latentbench run`` of :data:`SUITE` and its --out folder: a background
    job (tests/conftest.py)."""
    suite = root / "tiny.toml"
    suite.write_text(SUITE)
    out = root / "out"
    done = subprocess.run([SCRIPT, "run", str(suite), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=600,
                          env={**env, "PYTHONWARNINGS": "ignore"})
    return done, out


BACKGROUND_JOBS = {"run": disentangle_run}


@pytest.fixture(scope="module")
def report(run) -> str:
    done, out = run
    assert done.returncode == 0, done.stderr
    return (out / "report.html").read_text(encoding="utf-8")


def _section(report: str) -> str:
    start = report.index('<section id="disentanglement">')
    return report[start:report.index("</section>", start)]


def test_the_section_has_every_figure_and_labelled_traversals(report, run):
    assert '<a href="#disentanglement">Disentanglement</a>' in report
    section = _section(report)
    titles = re.findall(r"<strong>([^<]+)</strong>", section)
    assert titles[:3] == ["Disentanglement against β", "Disentanglement against reconstruction",
                          "Which latent holds which factor"]
    # one traversal per configuration (lowest seed), its rows named with factors
    assert len(titles) == 6 and all("seed 0" in t for t in titles[3:])
    assert section.count("beside zk the factor it captures best") == 3
    assert len(re.findall(r'src="data:image/png;base64,', section)) == 6
    assert "(distortion, lower is better)" in section  # the trade-off's reconstruction axis
    results = pd.read_csv(run[1] / "results.csv")
    scores = results[results.family == "disentanglement"]
    assert set(scores.metric) == {"mig", "modularity", "factorvae_score",
                                  "gaussian_total_correlation"}
    assert set(scores.model) == {"vae", "btcvae"} and set(scores.beta) == {1.0, 4.0, 6.0}


def test_no_section_without_disentanglement_scores(run, tmp_path):
    from latentbench.reports import render_report

    out = tmp_path / "copy"
    shutil.copytree(run[1], out)
    results = pd.read_csv(out / "results.csv")
    results[results.family != "disentanglement"].to_csv(out / "results.csv", index=False)
    html = render_report(out).read_text(encoding="utf-8")
    assert 'id="disentanglement"' not in html and "#disentanglement" not in html


def test_mi_panels_come_from_migs_details_and_refuse_malformed_ones():
    details = {"mi_matrix": [[1.0, 0.0], [0.5, 0.2]], "factor_entropy": [2.0, 0.4],
               "factor_names": ["x", "y"]}
    panel = MIPanel.from_mig_details("run", details)
    np.testing.assert_allclose(panel.matrix, [[0.5, 0.25], [0.0, 0.5]])  # factors down
    assert panel.factors == ("x", "y")
    for broken in ({}, {**details, "factor_entropy": [1.0]}, {**details, "mi_matrix": "x"}):
        assert MIPanel.from_mig_details("run", broken) is None


def test_the_section_shows_in_a_real_browser(run, browser):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get((run[1] / "report.html").resolve().as_uri())
    driver.find_element(By.CSS_SELECTOR, 'nav a[href="#disentanglement"]').click()
    section = driver.find_element(By.ID, "disentanglement")
    images = section.find_elements(By.TAG_NAME, "img")
    assert len(images) == 6
    for image in images:  # decoded, laid out and inside the page's width
        assert driver.execute_script("return arguments[0].naturalWidth", image) > 0
        assert image.is_displayed() and 0 < image.size["width"] <= 1300
    # the nav link scrolled the section's heading into view
    top = driver.execute_script("return arguments[0].getBoundingClientRect().top", section)
    assert abs(top) < 50
