"""Reading a run directory for the report: safe paths, JSON files, the evaluation's timings and
PNGs as ``data:`` URIs.

The report must stay one self-contained file, so every image is embedded as a base64 ``data:``
URI rather than referenced by path. Run ids come from ``results.csv``, which is user data, so a
run directory is only ever looked up through :func:`run_dir`, which refuses ids that would
escape ``OUT/runs/``.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentbench.reports.schema import EvalTimings, RunFiles, SchemaError, parse_metrics

__all__ = ["EmbeddedImage", "embed_png", "png_size", "read_json", "read_timings", "run_dir"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class EmbeddedImage:
    """A PNG ready for an ``<img>`` tag.

    Attributes:
        title: Short name of what the image shows ("Prior samples").
        caption: Longer description, may be empty.
        alt: The ``alt`` text.
        data_uri: ``data:image/png;base64,…`` of the file's exact bytes.
        width: Display width in CSS pixels.
        height: Display height in CSS pixels.
        smooth: ``True`` when the display size is not a whole multiple of the pixel size, so
            the browser should interpolate rather than draw blocky, uneven pixels.
    """

    title: str
    caption: str
    alt: str
    data_uri: str
    width: int
    height: int
    smooth: bool = False


def run_dir(runs_dir: Path, run_id: str) -> Path | None:
    """The run's directory, or ``None`` if absent or if the id would escape ``runs/``."""
    candidate = runs_dir / run_id
    try:
        inside = candidate.resolve().is_relative_to(runs_dir.resolve())
    except OSError:
        return None
    # A run id comes from a CSV; never let "../../etc" read files outside the output directory.
    if not inside or candidate.resolve() == runs_dir.resolve() or not candidate.is_dir():
        return None
    return candidate


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or ``None`` if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_timings(directory: Path) -> EvalTimings | None:
    """The evaluation timings in the run's ``metrics.json``, or ``None`` when there are none:
    no file, a damaged one, one of a format the schema refuses, or a format-3 file (which
    predates timings). The report shows what it can rather than fail on one run's file."""
    document = read_json(directory / RunFiles.METRICS)
    if document is None:
        return None
    try:
        return parse_metrics(document).timings
    except SchemaError:
        return None


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or ``None`` if ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def embed_png(
    data: bytes,
    *,
    title: str,
    alt: str,
    caption: str = "",
    target_width: int,
    max_upscale: int = 4,
    fit: bool = False,
) -> EmbeddedImage | None:
    """Embed PNG bytes as a data URI with a display size suited to the page.

    Small grids (28 px digits) are enlarged by a whole factor so that they are legible while
    ``image-rendering: pixelated`` keeps every pixel square and equal.

    Args:
        data: The file's bytes; embedded unchanged.
        title: What the image shows.
        alt: The ``alt`` text.
        caption: A longer description.
        target_width: The width, in CSS pixels, to scale towards.
        max_upscale: The largest enlargement factor.
        fit: If ``False``, the factor is ``round(target_width / width)`` (at least 1), so the
            image may end up somewhat wider than ``target_width``. If ``True``,
            ``target_width`` is a hard limit, e.g. a table column: the image is enlarged only
            by factors that keep it within the limit, and shrunk to the limit if it is wider.

    Returns:
        The embedded image, or ``None`` if ``data`` is not a PNG.
    """
    size = png_size(data)
    if size is None:
        return None
    width, height = (max(1, v) for v in size)
    ratio = target_width / width
    scale = max(1, min(max_upscale, math.floor(ratio) if fit else round(ratio)))
    shown_width, shown_height, smooth = width * scale, height * scale, False
    if fit and shown_width > target_width:
        shown_width = target_width
        shown_height = max(1, round(height * target_width / width))
        smooth = True
    return EmbeddedImage(
        title=title,
        caption=caption,
        alt=alt,
        data_uri="data:image/png;base64," + base64.b64encode(data).decode("ascii"),
        width=shown_width,
        height=shown_height,
        smooth=smooth,
    )
