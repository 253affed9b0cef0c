"""The report's analysis sections, strict HTML validity, escaping and the paper tables.

The fixture is a β sweep (AE and VAE × β ∈ {1, 4} × two seeds) whose run directories hold the
harness's per-run artifacts (latents.npz, spectrum.json, environment.json, traversals.png), all
written by the harness's own writers, with a hostile decoder name, suite description and failure
reason.
"""

from __future__ import annotations

import io
import platform
import re
from pathlib import Path
from types import SimpleNamespace

import html5lib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from latentbench.benchmarks.artifacts import write_latent_artifacts
from latentbench.benchmarks.cli import main
from latentbench.benchmarks.environment import environment_info
from latentbench.benchmarks.results import write_results
from latentbench.benchmarks.run_folder import RunFolder
from latentbench.models import ModelSpec, build_model
from latentbench.reports import render_report
from latentbench.reports.schema import RESULTS_FILE, RunFiles
from latentbench.reports.table import latex_escape, summary_table, to_latex

ATTACK = '<script>alert(1)</script>"onerror=alert(2)'
DECODER = "unpool" + ATTACK


def _png(width: int, height: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def sweep(tmp_path: Path, writers: SimpleNamespace) -> Path:
    """A β sweep written by the harness's writers, the per-run artifacts (latents.npz,
    traversals, latent grid, spectrum.json, environment.json) by its artifact writer from tiny
    untrained models (the AE with a 2-d code, so that it has a decoded latent grid)."""
    out = tmp_path / "out"
    writers.write_suite_file(out, "sweep", ATTACK)
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(64) % 10
    runs = []
    index = 0
    for model, decoder, latent in (("ae", "transposed", 2), ("vae", DECODER, 8)):
        for beta in (1.0, 4.0):
            for seed in (0, 1):
                index += 1
                values = {"rate": 10 / beta + seed, "distortion": 80 + 5 * beta + seed,
                          "fid[lenet-mnist]": 30 + index, "recon_mse": 0.1 - 0.01 * index}
                config = writers.run_config("sweep", model, decoder, beta, seed, list(values))
                pngs = {name: _png(56, 28, index)
                        for name in (RunFiles.RECONSTRUCTIONS, RunFiles.SAMPLES)}
                runs.append((config, writers.write_run(out, config, values, pngs)))
                folder = RunFolder(out, config.run_id)
                torch.manual_seed(seed)
                network = build_model(ModelSpec(name=model, latent_dim=latent, width=4, hidden=16),
                                      (1, 28, 28)).eval()
                samples = network.sample(16, generator=torch.Generator().manual_seed(seed))
                write_latent_artifacts(network, images, labels, samples, 32, folder.path)
                folder.write_json(RunFiles.ENVIRONMENT, environment_info(torch.device("cpu")))
    failed = writers.run_config("sweep", "vae", DECODER, 8.0, 0, ["recon_mse"])
    runs.append((failed, writers.write_run(out, failed, None, reason=ATTACK)))
    write_results(out / RESULTS_FILE, runs)
    return out


@pytest.fixture
def report(sweep: Path) -> str:
    return render_report(sweep).read_text(encoding="utf-8")


def test_report_parses_as_strict_html5(report: str) -> None:
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(report)  # raises ParseError on the first error
    assert not parser.errors


def test_report_has_every_section(report: str) -> None:
    for anchor in ("summary", "beta", "latent", "decoders", "failed", "runs", "environment"):
        assert f'id="{anchor}"' in report, anchor
    assert "Rate–distortion plane" in report and "Metrics against β" in report
    assert "Posterior means by class" in report and "Decoded latent grids" in report
    assert "Power spectra of samples and data" in report
    assert "Latent traversals" in report
    assert f"<dd>{platform.python_version()}</dd>" in report  # from environment.json
    # Summary cells carry their mean for the numeric sort.
    assert re.search(r'<td class="num[^"]*" data-value="0\.0[0-9]+">', report)


def test_report_references_nothing_outside_itself(report: str) -> None:
    lowered = report.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//|file:)""", lowered)
    assert "@import" not in lowered and "url(" not in lowered and "<link" not in lowered
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', report))


def test_user_text_appears_only_escaped(report: str) -> None:
    assert "<script>alert" not in report
    assert '"onerror=' not in report
    assert report.lower().count("<script") == 1  # the report's own sorter
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;onerror=alert(2)"
    assert report.count(escaped) >= 3  # description, decoder names, the failure reason


def test_latex_escapes_special_characters() -> None:
    assert latex_escape("a_b&c%d$e#f{g}h~i^j\\k[l]") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k{[}l{]}"
    )


def test_latex_table_escapes_names_and_bolds_best(sweep: Path) -> None:
    from latentbench.reports.table import load_results

    tex = to_latex(summary_table(load_results(sweep)))
    assert r"fid{[}lenet-mnist{]} $\downarrow$" in tex and r"recon\_mse" in tex
    assert r"\textbf{" in tex and r"\toprule" in tex


def test_report_command_writes_paper_tables(sweep: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(sweep), "--format", "latex,markdown,csv"]) == 0
    tex = (sweep / "table.tex").read_text()
    assert r"\begin{tabular}" in tex and r"\bottomrule" in tex
    assert "2 seeds" in tex and "lenet-mnist" in tex and "1,000 images or samples" in tex
    assert "| recon_mse ↓ |" in (sweep / "table.md").read_text() or "recon_mse ↓" in (
        sweep / "table.md").read_text()
    table = pd.read_csv(sweep / "table.csv")
    assert len(table) == 4 and "recon_mse mean" in table.columns
    assert not (sweep / "report.html").exists()  # html was not asked for
    assert main(["report", str(sweep), "--format", "pdf"]) == 2


def test_report_in_a_real_browser(sweep: Path, tmp_path: Path, browser) -> None:
    from selenium.webdriver.common.by import By

    driver, path = browser, render_report(sweep)
    driver.get(path.resolve().as_uri())
    images = driver.find_elements(By.TAG_NAME, "img")
    assert len(images) > 10
    widths = [driver.execute_script("return arguments[0].naturalWidth", i) for i in images]
    assert all(width > 0 for width in widths), widths  # every image decoded

    def column(index: int) -> list[str]:
        cells = driver.find_elements(
            By.CSS_SELECTOR, f"#summary-table tbody tr td:nth-child({index})")
        return [cell.get_attribute("data-value") for cell in cells]

    headers = driver.find_elements(By.CSS_SELECTOR, "#summary-table thead th")
    names = [h.text for h in headers]
    recon = next(i for i, name in enumerate(names) if name.startswith("recon_mse")) + 1
    before = [float(v) for v in column(recon)]
    assert before == sorted(before, reverse=True)  # configuration order
    headers[recon - 1].click()
    assert [float(v) for v in column(recon)] == sorted(before)
    headers[recon - 1].click()
    assert [float(v) for v in column(recon)] == sorted(before, reverse=True)
    driver.save_screenshot(str(tmp_path / "report.png"))


def test_latent_panel_titles_do_not_overlap() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from latentbench.reports.plots_latent import LatentPanel, latent_figure

    rng = np.random.default_rng(0)
    titles = [f"mnist5k · {model} · {decoder} · z=16 · seed 0 · PCA"
              for model in ("ae", "vae · β=1", "vae · β=4")
              for decoder in ("transposed", "unpool-nearest")]
    panels = [LatentPanel(title=title, points=rng.normal(size=(50, 2)),
                          labels=rng.integers(0, 10, 50), explained=(0.3, 0.2))
              for title in titles]
    fig = latent_figure(panels)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    # The titles sit left-aligned (matplotlib's left title); each must stay clear of the others.
    boxes = [ax._left_title.get_window_extent(canvas.get_renderer()) for ax in fig.axes
             if ax.get_visible() and ax.get_title(loc="left")]
    assert len(boxes) == len(titles)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
