"""Tests of the report's "Decoders side by side" section."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from io import BytesIO
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from PIL import Image

from latentbench.reports import render_report
from latentbench.reports.figures import FIGURE_WIDTH_PX, metrics_by_decoder

if TYPE_CHECKING:  # conftest is not importable at run time under --import-mode=importlib
    from conftest import DecoderOut, FakeOut

ALL_FIVE = ("transposed", "unpool-nearest", "unpool-zeros", "unpool-max", "upsample-bilinear")
DATA_URI = "data:image/png;base64,"


@dataclass
class Cell:
    decoder: str
    run: str | None
    images: list[dict[str, str]] = field(default_factory=list)  # img attributes
    text: str = ""


@dataclass
class Row:
    label: str
    cells: list[Cell] = field(default_factory=list)


class SectionParser(HTMLParser):
    """Pulls the headers, rows, cells and chart out of ``<section id="decoders">``."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False
        self.headers: list[str] = []
        self.rows: list[Row] = []
        self.charts: list[dict[str, str]] = []
        self._depth = 0  # <section> nesting while inside the decoders section
        self._in: str | None = None  # "header", "label" or "cell"
        self._in_chart = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            if self._depth or a.get("id") == "decoders":
                self.found = True
                self._depth += 1
            return
        if not self._depth:
            return
        if tag == "th" and "config" in a.get("class", "").split():
            self.rows.append(Row(label=""))
            self._in = "label"
        elif tag == "th" and a.get("scope") == "col":
            self.headers.append("")
            self._in = "header"
        elif tag == "td":
            self.rows[-1].cells.append(Cell(decoder=a["data-decoder"], run=a.get("data-run")))
            self._in = "cell"
        elif tag == "figure" and "chart" in a.get("class", ""):
            self._in_chart = True
        elif tag == "img" and self._in_chart:
            self.charts.append(a)
        elif tag == "img" and self._in == "cell":
            self.rows[-1].cells[-1].images.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._depth:
            self._depth -= 1
        elif tag in ("th", "td"):
            self._in = None
        elif tag == "figure":
            self._in_chart = False

    def handle_data(self, data: str) -> None:
        if self._in == "header":
            self.headers[-1] += data.strip()
        elif self._in == "label":
            self.rows[-1].label += data
        elif self._in == "cell":
            self.rows[-1].cells[-1].text += data


def _section(root: object) -> tuple[str, SectionParser]:
    html = render_report(root).read_text(encoding="utf-8")  # type: ignore[arg-type]
    parser = SectionParser()
    parser.feed(html)
    return html, parser


def _png(img: dict[str, str]) -> bytes:
    assert img["src"].startswith(DATA_URI)
    return base64.b64decode(img["src"][len(DATA_URI) :], validate=True)


def _label(row: Row) -> str:
    return " ".join(row.label.split())


@pytest.fixture(scope="module")
def rendered(decoder_out: DecoderOut) -> tuple[str, SectionParser]:
    return _section(decoder_out.root)


def test_no_section_with_a_single_decoder(make_decoder_out: Callable[..., DecoderOut]) -> None:
    html, parser = _section(make_decoder_out(decoders=("transposed",)).root)
    assert not parser.found
    assert "<h2>Decoders side by side</h2>" not in html
    assert 'href="#decoders"' not in html


def test_no_section_when_no_configuration_varies_its_decoder(fake_out: FakeOut) -> None:
    # The standard fake has two decoders, but on different models: nothing to compare.
    html, parser = _section(fake_out.root)
    assert not parser.found
    assert 'href="#decoders"' not in html


def test_section_follows_the_summary(rendered: tuple[str, SectionParser]) -> None:
    html, parser = rendered
    assert parser.found
    assert html.index('id="summary"') < html.index('id="decoders"') < html.index('id="runs"')
    assert '<a href="#decoders">Decoders side by side</a>' in html


def test_decoders_are_column_headers_in_order_of_appearance(
    rendered: tuple[str, SectionParser], decoder_out: DecoderOut
) -> None:
    _, parser = rendered
    assert parser.headers == list(decoder_out.decoders)  # unsorted: as first in results.csv
    for row in parser.rows:
        assert [cell.decoder for cell in row.cells] == list(decoder_out.decoders)


def test_one_row_per_configuration_without_its_decoder(
    rendered: tuple[str, SectionParser],
) -> None:
    _, parser = rendered
    assert [_label(row) for row in parser.rows] == [
        "mnist5k · ae · z=16 · seed 0",
        "mnist5k · dcgan · z=16 · seed 0",
        "mnist5k · vae · β=1 · z=16 · seed 0",
    ]


def test_each_cell_holds_its_runs_samples_above_its_reconstructions(
    rendered: tuple[str, SectionParser], decoder_out: DecoderOut
) -> None:
    _, parser = rendered
    compared = 0
    for row, (model, beta) in zip(
        parser.rows, [("ae", None), ("dcgan", None), ("vae", 1.0)], strict=True
    ):
        for cell in row.cells:
            run_id = decoder_out.run_ids.get((model, beta, cell.decoder, 0))
            if run_id is None:
                continue
            # Seed 1 was written first; the cell shows the lowest seed, 0.
            assert cell.run == run_id
            expected = decoder_out.images[run_id]
            found = [_png(img) for img in cell.images]
            assert found == [
                expected[n] for n in ("samples.png", "reconstructions.png") if n in expected
            ]
            assert cell.images[0]["alt"].startswith("Prior samples for ")
            assert cell.decoder in cell.images[0]["alt"]
            compared += 1
    assert compared == 3 + 3 + 2


def test_model_without_encoder_says_so(
    rendered: tuple[str, SectionParser], decoder_out: DecoderOut
) -> None:
    _, parser = rendered
    gan = next(row for row in parser.rows if " dcgan " in row.label)
    ran, not_run = gan.cells[:2], gan.cells[2:]
    for cell in ran:
        assert len(cell.images) == 1  # samples only
        assert "no encoder" in cell.text
        assert "—" in cell.text
    for cell in not_run:  # the GAN never ran with the third decoder
        assert cell.run is None and not cell.images
        assert "not run" in cell.text


def test_missing_reconstructions_of_an_encoder_model_are_not_blamed_on_the_model(
    make_decoder_out: Callable[..., DecoderOut],
) -> None:
    fake = make_decoder_out(seeds=(0,))
    run_id = fake.run_ids[("ae", None, "transposed", 0)]
    (fake.root / "runs" / run_id / "reconstructions.png").unlink()
    _, parser = _section(fake.root)
    cell = next(c for row in parser.rows for c in row.cells if c.run == run_id)
    assert "reconstructions not saved" in cell.text
    assert "no encoder" not in cell.text


def test_row_prefers_a_seed_every_decoder_finished(
    make_decoder_out: Callable[..., DecoderOut],
) -> None:
    failed = ("vae", 1.0, "transposed", 0)
    fake = make_decoder_out(failed=(failed,))
    _, parser = _section(fake.root)
    vae = next(row for row in parser.rows if " vae " in row.label)
    assert _label(vae).endswith("seed 1")
    assert [c.run for c in vae.cells] == [fake.run_ids[("vae", 1.0, d, 1)] for d in fake.decoders]


def test_failed_cell_shows_the_reason(make_decoder_out: Callable[..., DecoderOut]) -> None:
    failed = ("ae", None, "unpool-max", 0)
    fake = make_decoder_out(seeds=(0,), failed=(failed,))
    _, parser = _section(fake.root)
    ae = next(row for row in parser.rows if " ae " in row.label)
    cell = ae.cells[fake.decoders.index("unpool-max")]
    assert cell.run is None and not cell.images
    assert "run failed" in cell.text and fake.failed[failed] in cell.text


def test_five_decoder_columns_fit_the_page(make_decoder_out: Callable[..., DecoderOut]) -> None:
    _, parser = _section(make_decoder_out(decoders=ALL_FIVE, seeds=(0,)).root)
    assert parser.headers == list(ALL_FIVE)
    widths = [int(img["width"]) for row in parser.rows for c in row.cells for img in c.images]
    assert widths and max(widths) * 5 <= 1184 - 5 * 20  # content width less cell padding
    # Grids shrunk to fit are interpolated rather than drawn with uneven pixels.
    assert all(
        "smooth" in img.get("class", "")
        for row in parser.rows
        for c in row.cells
        for img in c.images
    )


def test_chart_is_an_embedded_png_of_the_shared_metrics(
    rendered: tuple[str, SectionParser],
) -> None:
    html, parser = rendered
    assert len(parser.charts) == 1
    data = _png(parser.charts[0])
    with Image.open(BytesIO(data)) as image:
        image.verify()
    with Image.open(BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.width == FIGURE_WIDTH_PX and 200 < image.height < 1200
        assert image.convert("L").getextrema()[0] < 100  # not blank: bars and text drawn
    alt = parser.charts[0]["alt"]
    for metric in ("fid[lenet-mnist]", "prior_coverage", "recon_mse"):
        assert metric in alt
    assert "checkerboard" not in alt  # measured with one decoder only
    assert "±1 sample standard deviation" in html  # two seeds → error bars


def test_chart_needs_a_metric_shared_by_two_decoders() -> None:
    values = pd.DataFrame(
        {
            "decoder": ["transposed", "unpool-max"],
            "configuration": ["ae", "ae"],
            "metric": ["fid", "psnr"],
            "value": [1.0, 2.0],
        }
    )
    assert metrics_by_decoder(values, ["transposed", "unpool-max"], ["ae"], {}) is None
    values.loc[1, "metric"] = "fid"
    drawn = metrics_by_decoder(values, ["transposed", "unpool-max"], ["ae"], {"fid": False})
    assert drawn is not None and drawn[1] == ["fid"]
    assert drawn[0].startswith(b"\x89PNG\r\n\x1a\n")


def test_section_keeps_the_report_self_contained(
    rendered: tuple[str, SectionParser], decoder_out: DecoderOut
) -> None:
    html, _ = rendered
    lowered = html.lower()
    for forbidden in ("http:", "https:", "file:", "url(", "<link", "<script src", 'src="/', ".png"):
        assert forbidden not in lowered, forbidden
    assert str(decoder_out.root) not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith(DATA_URI) for s in sources)
    # Every href is an in-page anchor that exists.
    ids = set(re.findall(r'id="([^"]+)"', html))
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert all(h.startswith("#") and h[1:] in ids for h in hrefs)


def test_cells_link_to_their_runs(rendered: tuple[str, SectionParser]) -> None:
    html, _ = rendered
    section = html.split('<section id="decoders">', 1)[1].split('<section id="runs">', 1)[0]
    links = re.findall(
        r'<a class="run-link" href="#(config-\d+)"><code>([^<]+)</code></a>', section
    )
    assert len(links) == 3 + 2 + 3
    for anchor, run_id in links:
        gallery = html.split(f'id="{anchor}"', 1)[1].split("</section>", 1)[0]
        assert f"<code>{run_id}</code>" in gallery
