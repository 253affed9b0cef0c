"""The shipped ``priors`` suite end to end, shrunk: the latentbench command trains a VAE with
each prior (2-d and 4-d codes), every prior-reading score records its prior, each run writes
prior.json, and the report's Priors section shows the table, the samples and the contours."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import html5lib
import numpy as np
import pandas as pd
import pytest

from latentbench.benchmarks import shipped_suite_file

SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).with_name("latentbench"))

#: The shipped suite's text with its data, model width, epochs and evaluation counts cut to a
#: wiring test's; the grid (latent sizes, the four priors) is the shipped one but for one seed.
SHRINK = (
    ('dataset = "mnist5k"', 'dataset = "mnist5k"\nn_train = 256\nn_test = 128'),
    ("width = 32", "width = 4"), ("hidden = 256", "hidden = 16"),
    ("epochs = 20", "epochs = 1"), ("batch_size = 128", "batch_size = 64"),
    ('"precision", "recall"]', '"precision", "recall"]\niwae_k = 8\nkid_subsets = 10\n'
                               'samples = 4\ngrid_images = 4'),
    ("{ latent_dim = 16 }", "{ latent_dim = 4 }"), ("seed = [0, 1]", "seed = [0]"),
)


def shrunk_suite() -> str:
    """The shipped ``priors`` suite with the edits of :data:`SHRINK`."""
    text = shipped_suite_file("priors").read_text(encoding="utf-8")
    for old, new in SHRINK:
        assert old in text, old
        text = text.replace(old, new)
    return text


def priors_run(root: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
    """The finished ``latentbench run`` of :func:`shrunk_suite` and its --out folder: a
    background job (tests/conftest.py)."""
    (root / "priors.toml").write_text(shrunk_suite())
    command = [SCRIPT, "run", "priors.toml", "--out", "out", "--no-progress"]
    return (subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600,
                           env={**env, "PYTHONWARNINGS": "ignore"}), root / "out")


BACKGROUND_JOBS = {"run": priors_run}


@pytest.fixture(scope="module")
def out(run) -> Path:
    done, folder = run
    assert done.returncode == 0, done.stderr
    return folder


def test_each_prior_trains_and_its_scores_say_which_prior(out: Path) -> None:
    results = pd.read_csv(out / "results.csv")
    runs = results[results.model.ne("real-data")]
    assert sorted(runs.model.unique()) == ["vae", "vae (prior flow)", "vae (prior mog, K=10)",
                                           "vae (prior vamp, K=50)"]
    assert runs.groupby("model").latent_dim.unique().map(sorted).map(list).tolist() == [[2, 4]] * 4
    told = {"vae": "normal", "vae (prior flow)": "flow, 4 couplings",
            "vae (prior mog, K=10)": "mog, K=10", "vae (prior vamp, K=50)": "vamp, K=50"}
    for (model, run_id), _ in runs.groupby(["model", "run_id"]):
        details = json.loads((out / "runs" / run_id / "metrics.json").read_text())["details"]
        assert {details[key]["prior"] for key in ("rate", "iwae_nll", "prior_holes",
                                                  "fid[lenet-mnist]")} == {told[model]}
        assert "prior" not in details.get("recon_mse", {})
        exact = model == "vae"
        assert (details["rate"]["kl"] == "closed form") == exact
        assert ("mc_std_error" in details["rate"]) == (not exact)
        prior = json.loads((out / "runs" / run_id / "prior.json").read_text())
        assert prior["label"] == told[model]


def test_the_2d_runs_store_a_density_that_integrates_to_one(out: Path) -> None:
    for path in out.glob("runs/*/prior.json"):
        prior = json.loads(path.read_text())
        assert ("density" in prior) == (prior["latent_dim"] == 2)
        if "density" in prior:
            z1, z2 = np.array(prior["density"]["z1"]), np.array(prior["density"]["z2"])
            mass = np.exp(prior["density"]["log_prob"]).sum() * np.diff(z1)[0] * np.diff(z2)[0]
            assert 0.98 < mass < 1.01, (prior["label"], mass)


def test_the_report_compares_the_priors(out: Path) -> None:
    report = (out / "report.html").read_text(encoding="utf-8")
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(report)
    assert not parser.errors
    assert '<a href="#priors">Priors</a>' in report
    start = report.index('<section id="priors">')
    section = report[start:report.index("</section>", start)]
    rows = re.findall(r"<tr>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>", section)
    # One table row per configuration: 4 priors × 2 latent sizes, each with its prior.
    assert len(rows) == 8
    assert {prior for _, prior in rows} == {"normal", "mog, K=10", "vamp, K=50",
                                            "flow, 4 couplings"}
    for title in ("−ELBO", "IWAE NLL", "prior holes", "prior coverage"):
        assert title in section
    # Figures: the rate–distortion plane, the contours of the four 2-d runs, 8 sample grids.
    assert len(re.findall(r'src="data:image/png;base64,', section)) == 2 + 8
    assert "highest-density regions" in section
