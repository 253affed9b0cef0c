"""Tests of the self-contained HTML report."""

from __future__ import annotations

import base64
import dataclasses
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from latentbench.benchmarks.run_folder import RunFolder
from latentbench.reports import render_report
from latentbench.reports.schema import SUITE_FILE, EvalTimings

if TYPE_CHECKING:  # conftest is not importable at run time under --import-mode=importlib
    from conftest import FakeOut

DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"')


def _render(fake: FakeOut) -> str:
    path = render_report(fake.root)
    assert path == fake.root / "report.html"
    return path.read_text(encoding="utf-8")


def test_report_is_written_atomically_in_place(fake_out: FakeOut) -> None:
    (fake_out.root / "report.html").write_text("stale")
    path = render_report(str(fake_out.root))
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # Only the report itself is left behind: no temporary files beside it.
    assert sorted(p.name for p in fake_out.root.iterdir()) == [
        "report.html", "results.csv", "runs", "suite.json"]


def test_report_has_title_and_summary_table(fake_out: FakeOut) -> None:
    html = _render(fake_out)
    assert "<h1>beta-sweep</h1>" in html
    assert "AE vs β-VAE on the embedded MNIST subset" in html
    assert '<table class="sortable" id="summary-table">' in html
    assert re.search(r"recon_mse <span[^>]*>↓</span>", html)
    assert re.search(r"prior_coverage <span[^>]*>↑</span>", html)
    ae = np.array([v["recon_mse"] for k, v in fake_out.values.items() if k[0] == "ae"])
    best = f"{ae.mean():.4g} ± {ae.std(ddof=1):.2g}"
    cell = rf'<td class="num best" data-value="[^"]+"><strong>{re.escape(best)}</strong></td>'
    assert re.search(cell, html)
    headline = html.split('id="summary-table"', 1)[1].split("</table>", 1)[0]
    assert headline.count('class="num best"') == 3  # one best cell per metric
    # Every metric is also in its family's table, with the same best cell.
    assert html.count('class="num best"') == 6
    assert "over 2 seeds" in html


def test_images_are_embedded_byte_for_byte(fake_out: FakeOut) -> None:
    html = _render(fake_out)
    embedded = [base64.b64decode(data, validate=True) for data, _ in DATA_URI.findall(html)]
    expected = [data for images in fake_out.images.values() for data in images.values()]
    assert sorted(embedded) == sorted(expected)
    assert html.count("<img ") == len(expected)
    # Every run's grids are there with alt text naming what they show.
    alts = [alt for _, alt in DATA_URI.findall(html)]
    assert sum(alt.startswith("Reconstructions for") for alt in alts) == 4
    assert sum(alt.startswith("Prior samples for") for alt in alts) == 4
    assert any(alt.startswith("Interpolations for") for alt in alts)
    assert all("seed" in alt for alt in alts)


def test_reconstructions_sit_beside_samples_in_each_run(fake_out: FakeOut) -> None:
    html = _render(fake_out)
    for run_id, images in fake_out.images.items():
        article = html.split(f"<code>{run_id}</code>", 1)[1].split("</article>", 1)[0]
        found = [base64.b64decode(data) for data, _ in DATA_URI.findall(article)]
        assert found[:2] == [images["reconstructions.png"], images["samples.png"]]


def test_report_is_self_contained(fake_out: FakeOut) -> None:
    html = _render(fake_out)
    lowered = html.lower()
    for forbidden in (
        'src="http',
        "src='http",
        'href="http',
        "href='http",
        "url(",
        "@import",
        "<link",
        "<script src",
        "file:",
        'src="/',
        'src="runs',
    ):
        assert forbidden not in lowered, forbidden
    assert str(fake_out.root) not in html
    assert ".png" not in html  # images are inlined, never referenced by file name
    assert re.findall(r'src="([^"]{0,22})', html) == ["data:image/png;base64,"] * 9


def test_failed_run_is_listed_with_reason(fake_out: FakeOut) -> None:
    html = _render(fake_out)
    failed = html.split('<section id="failed">', 1)[1].split("</section>", 1)[0]
    assert fake_out.failed_run_id in failed
    assert fake_out.failed_reason in failed
    assert "β=8" in failed
    # A failed run has no gallery section.
    assert html.count(f"<code>{fake_out.failed_run_id}</code>") == 1


def test_user_text_is_escaped(make_out: Callable[..., FakeOut]) -> None:
    attack = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
    fake = make_out(description=attack)
    html = _render(fake)
    # The one script is the report's own table sorter, at the end of the body.
    assert html.lower().count("<script") == 1
    assert "<script>alert" not in html.lower()
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_suite_name_and_description_come_from_suite_json(
    make_out: Callable[..., FakeOut],
) -> None:
    fake = make_out(description="Described in suite.json")
    html = _render(fake)
    assert "<h1>beta-sweep</h1>" in html
    assert "Described in suite.json" in html
    # A results.csv whose folder lost suite.json still names the suite, from its rows.
    (fake.root / SUITE_FILE).unlink()
    html = _render(fake)
    assert "<h1>beta-sweep</h1>" in html
    assert "Described in suite.json" not in html


def test_run_without_reconstructions_says_so(fake_out: FakeOut) -> None:
    run_id = next(iter(fake_out.images))
    (fake_out.root / "runs" / run_id / "reconstructions.png").unlink()
    html = _render(fake_out)
    article = html.split(f"<code>{run_id}</code>", 1)[1].split("</article>", 1)[0]
    assert "Not produced for this run: Reconstructions." in article
    assert "Prior samples" in article


def test_a_run_shows_its_evaluation_time_slowest_first_with_the_total(fake_out: FakeOut) -> None:
    timed, untimed = list(fake_out.images)[:2]
    folder = RunFolder(fake_out.root, timed)
    timings = EvalTimings(total=4.0, metrics={"recon_mse": 0.25, "fid[lenet-mnist]": 0.5},
                          passes={"test_pass": 2.0, "feature_set[lenet-mnist, samples]": 1.0})
    folder.write_metrics(dataclasses.replace(folder.read_metrics(), timings=timings))
    runs = _render(fake_out).split('<section id="runs">', 1)[1]
    article = runs.split(f"<code>{timed}</code>", 1)[1].split("</article>", 1)[0]
    assert "Evaluation time: 4.000 s · slowest: <code>test_pass</code> 2.000 s" in article
    table = article.split('<table class="timings">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td><code>([^<]+)</code></td><td>([^<]+)</td>"
                      r'<td class="num">([^<]+)</td><td class="num">([^<]+)</td></tr>', table)
    assert rows == [("test_pass", "shared pass", "2.000", "50.0 %"),
                    ("feature_set[lenet-mnist, samples]", "shared pass", "1.000", "25.0 %"),
                    ("fid[lenet-mnist]", "metric", "0.500", "12.5 %"),
                    ("recon_mse", "metric", "0.250", "6.2 %")]
    assert re.search(r'rest</td><td class="num">0.250</td>', table)  # 4 − 3.75: the driver
    assert re.search(r'total</th><td>evaluation</td><td class="num">4.000</td>', table)
    # A run whose metrics.json has no timings (written before them) shows no table.
    other = runs.split(f"<code>{untimed}</code>", 1)[1].split("</article>", 1)[0]
    assert "timings" not in other


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(fake_out: FakeOut, tmp_path: Path) -> None:
    report = render_report(fake_out.root)
    screenshot = tmp_path / "report.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={screenshot}",
        "--window-size=1200,2000",
        report.resolve().as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(screenshot).convert("L"))
    assert pixels.shape == (2000, 1200)
    # A blank page is one flat colour; the report has text, a table and black image grids.
    assert pixels.std() > 10
    assert (pixels < 40).mean() > 0.02  # the black backgrounds of the embedded grids


def test_report_when_every_run_failed(all_failed_out: Path) -> None:
    html = render_report(all_failed_out).read_text(encoding="utf-8")
    assert "No finished runs." in html
    assert "CUDA out of memory" in html
    assert 'id="summary-table"' not in html
