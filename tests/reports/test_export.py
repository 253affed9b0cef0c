"""Paper tables: the headline table and one per family, each compiled in a one-column article
(when a LaTeX engine is installed) without running off the page."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from latentbench.reports.export import write_tables
from latentbench.reports.families import MAX_COLUMNS

if TYPE_CHECKING:  # conftest is not importable at run time under --import-mode=importlib
    from conftest import FakeOut

PDFLATEX = shutil.which("pdflatex")
ARTICLE = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
\usepackage{graphicx}
\begin{document}
\input{%s}
\end{document}
"""


def test_headline_and_family_tables_are_written(fake_out: FakeOut) -> None:
    written = {p.name for p in write_tables(fake_out.root, ["latex", "markdown", "csv"])}
    assert {"table.tex", "table.md", "table.csv"} <= written
    families = {name for name in written if name.startswith("table-")}
    assert families, written
    for name in written - {"table.csv"}:
        text = (fake_out.root / name).read_text()
        header = next(line for line in text.splitlines()
                      if line.startswith(("dataset &", "| dataset |")))
        # 6 configuration columns (dataset, model, decoder, β, latent, n) and the metrics.
        columns = header.count("&") + 1 if name.endswith(".tex") else header.count("|") - 1
        assert 6 < columns <= 6 + MAX_COLUMNS, (name, columns)
    headline = (fake_out.root / "table.md").read_text()
    assert headline.index("recon_mse") < headline.index("fid[lenet-mnist]")


@pytest.mark.skipif(PDFLATEX is None, reason="needs pdflatex (Debian: texlive-latex-base, "
                                             "texlive-latex-recommended)")
def test_every_latex_table_fits_a_one_column_page(sweep_for_latex: Path, tmp_path: Path):
    tables = [p for p in write_tables(sweep_for_latex, ["latex"])]
    assert len(tables) >= 2
    for table in tables:
        document = tmp_path / f"{table.stem}-doc.tex"
        document.write_text(ARTICLE % table.resolve().as_posix())
        result = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error",
                                 document.name], cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)
        log = (tmp_path / f"{document.stem}.log").read_text(errors="replace")
        assert result.returncode == 0, log[-2000:]
        overfull = re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)
        assert not overfull, (table.name, overfull)
