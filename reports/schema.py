"""The contract between the harness, which writes a suite's output, and the reports, which read it.

Everything a writer and a reader must agree on is defined here once, and both sides import it:

- the output folder's layout: :data:`RESULTS_FILE`, :data:`SUITE_FILE`, :data:`RUNS_DIR` and the
  file names inside a run folder (:class:`RunFiles`);
- ``results.csv``: its columns and their dtypes (:data:`RESULTS_DTYPES`), how a frame is made to
  follow them (:func:`results_frame_dtypes`) and read back (:func:`read_results_csv`);
- a run's ``status`` file (:func:`format_status`, :func:`parse_status`);
- ``metrics.json`` (:func:`metrics_document`, :func:`parse_metrics`);
- the JSON of ``latentbench bench --json`` (:func:`bench_document`, :func:`parse_bench`);
- the label of a configuration (:func:`config_label`).

It lives in ``reports`` because that package imports no other part of latentbench: the harness
may import the reports, never the other way round. It needs only the standard library and pandas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

__all__ = [
    "BENCH_FORMAT",
    "CONFIG_COLUMNS",
    "METRICS_FORMAT",
    "METRICS_FORMATS_READ",
    "REFERENCE_MODEL",
    "REPORT_FILE",
    "RESULTS_COLUMNS",
    "RESULTS_DTYPES",
    "RESULTS_FILE",
    "RUNS_DIR",
    "STATUS_DONE",
    "STATUS_FAILED",
    "SUITE_FILE",
    "BenchConfig",
    "BenchDocument",
    "EvalTimings",
    "MetricsDocument",
    "RunFiles",
    "SchemaError",
    "bench_document",
    "config_label",
    "format_beta",
    "format_status",
    "is_bench_document",
    "metrics_document",
    "parse_bench",
    "parse_metrics",
    "parse_status",
    "read_results_csv",
    "results_frame_dtypes",
]


class SchemaError(ValueError):
    """A file does not follow the contract (another version wrote it, or it is damaged)."""


# --- the output folder -----------------------------------------------------------------------

#: ``OUT/results.csv``: the long-format table of every run of a suite.
RESULTS_FILE: Final = "results.csv"
#: ``OUT/suite.json``: the suite's ``name`` and ``description``, for the report's heading.
SUITE_FILE: Final = "suite.json"
#: ``OUT/report.html``.
REPORT_FILE: Final = "report.html"
#: ``OUT/runs/<run-id>/``: one folder per run.
RUNS_DIR: Final = "runs"


class RunFiles:
    """The names of the files in ``OUT/runs/<run-id>/``."""

    CONFIG: Final = "config.json"  # the resolved RunConfig; the run id is a hash of it
    TRAIN: Final = "train.json"  # mean losses per epoch
    MODEL: Final = "model.pt"  # the trained state_dict (load with weights_only=True)
    CHECKPOINT: Final = "checkpoint.pt"  # while training; deleted once the run is done
    METRICS: Final = "metrics.json"  # see metrics_document
    STATUS: Final = "status"  # see format_status; written last
    ENVIRONMENT: Final = "environment.json"  # device, versions, git commit
    IMAGES: Final = "images.json"  # PNG file name -> caption
    LATENTS: Final = "latents.npz"  # posterior means of test images, labels, PCA
    SPECTRUM: Final = "spectrum.json"  # power spectra of samples and data
    RECONSTRUCTIONS: Final = "reconstructions.png"
    SAMPLES: Final = "samples.png"
    INTERPOLATIONS: Final = "interpolations.png"
    TRAVERSALS: Final = "traversals.png"
    LATENT_GRID: Final = "latent_grid.png"
    PRIOR: Final = "prior.json"  # the model's prior; its log-density on a grid for 2-d codes


# --- results.csv -----------------------------------------------------------------------------

#: Columns of ``results.csv`` and their pandas dtypes, in file order. One row per run × metric;
#: a run without metrics (failed, or nothing applied) has one row with an empty ``metric``.
#: ``family`` is the metric's table (reconstruction, likelihood, samples, interpolation, latent,
#: cost); ``beta`` is NaN for a model without a KL term; ``std_error`` is the value's standard error
#: over the test set (empty where none is computed); ``samples`` is how many images (or
#: generated samples) the value averages over; ``higher_is_better`` is empty where a metric has
#: no direction, and ``target`` holds the ideal value of a metric that is best at a value
#: (checkerboard 1): the two are never both set; ``caveat`` says why a value may not be compared
#: with other models' (a decoder that sees more than the code): such a value is never ranked;
#: ``reason`` is empty for a run that is ``done``.
RESULTS_DTYPES: Final[dict[str, str]] = {
    "run_id": "string",
    "suite": "string",
    "dataset": "string",
    "model": "string",
    "decoder": "string",
    "beta": "float64",
    "latent_dim": "Int64",
    "seed": "Int64",
    "metric": "string",
    "family": "string",
    "value": "float64",
    "std_error": "float64",
    "samples": "Int64",
    "higher_is_better": "boolean",
    "target": "float64",
    "caveat": "string",
    "status": "string",
    "reason": "string",
}
RESULTS_COLUMNS: Final[tuple[str, ...]] = tuple(RESULTS_DTYPES)
#: The ``model`` of the real-data reference rows: real images that are not the test set scored
#: as if they were a model's samples (the FID floor, the precision/recall ceilings). Shown in
#: every table, never ranked.
REFERENCE_MODEL: Final = "real-data"
#: Columns that identify a configuration; the seed varies within one.
CONFIG_COLUMNS: Final[tuple[str, ...]] = ("dataset", "model", "decoder", "beta", "latent_dim")
#: The values of ``status`` in results.csv and of a run's status file.
STATUS_DONE: Final = "done"
STATUS_FAILED: Final = "failed"

_BOOLEAN_TEXT = {"True": True, "False": False}


def results_frame_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the columns of :data:`RESULTS_DTYPES`, in order, with those dtypes.

    The writer calls it before ``to_csv`` and the reader after ``read_csv``, so that a frame
    written and read back compares equal: an empty text cell is a missing value (CSV cannot
    tell them apart).
    """
    typed = frame.reindex(columns=list(RESULTS_COLUMNS)).astype(RESULTS_DTYPES)
    for column, dtype in RESULTS_DTYPES.items():
        if dtype == "string":
            typed[column] = typed[column].mask(typed[column].eq(""))
    return typed


def read_results_csv(path: Path | str) -> pd.DataFrame:
    """Read a ``results.csv`` written by the harness.

    Returns:
        The frame, with the dtypes of :data:`RESULTS_DTYPES`; ``metric`` is ``NA`` on the row of
        a run without metrics, ``reason`` ``NA`` for a finished run.

    Raises:
        FileNotFoundError: no file at ``path``.
        SchemaError: a column is missing (all missing ones are named), or a cell does not hold
            what its column allows.
        ValueError, UnicodeDecodeError: pandas cannot parse the file as CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {path}")
    # Everything as text first: a run id like "1e10" or a dataset "0" must not become a number,
    # and each column is then converted by one rule.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in RESULTS_COLUMNS if column not in frame.columns]
    if missing:
        raise SchemaError(f"{path} is missing column(s): {', '.join(missing)} "
                          f"(expected: {', '.join(RESULTS_COLUMNS)})")
    directions = frame["higher_is_better"]
    unknown = sorted(set(directions) - {"", *_BOOLEAN_TEXT})
    if unknown:
        raise SchemaError(f"{path}: higher_is_better must be True, False or empty, got "
                          f"{unknown[0]!r}")
    statuses = sorted(set(frame["status"]) - {STATUS_DONE, STATUS_FAILED})
    if statuses:
        raise SchemaError(f"{path}: status must be {STATUS_DONE} or {STATUS_FAILED}, got "
                          f"{statuses[0]!r}")
    converted = frame[list(RESULTS_COLUMNS)]
    converted = converted.mask(converted.eq(""))  # an empty cell is a missing value
    converted["higher_is_better"] = directions.map(_BOOLEAN_TEXT)
    for column, dtype in RESULTS_DTYPES.items():
        if dtype in ("float64", "Int64"):
            numbers = pd.to_numeric(converted[column], errors="coerce")
            bad = numbers.isna() & converted[column].notna()
            if bad.any():
                raise SchemaError(f"{path}: {column} must be a number, got "
                                  f"{converted[column][bad].iloc[0]!r}")
            converted[column] = numbers
    return results_frame_dtypes(converted)


# --- a run's status file ---------------------------------------------------------------------


def format_status(status: str, reason: str = "") -> str:
    """The text of a run's ``status`` file: ``done`` or ``failed: <reason>``, one line.

    Args:
        status: :data:`STATUS_DONE` or :data:`STATUS_FAILED`.
        reason: why a run failed, on one line (newlines are folded into spaces).
    """
    if status not in (STATUS_DONE, STATUS_FAILED):
        raise ValueError(f"status must be {STATUS_DONE} or {STATUS_FAILED}, got {status!r}")
    if status == STATUS_DONE:
        return f"{STATUS_DONE}\n"
    return f"{STATUS_FAILED}: {' '.join(reason.split())}\n"


def parse_status(text: str) -> tuple[str, str]:
    """``(status, reason)`` from the text of a ``status`` file (the reason ``""`` when done)."""
    status, _, reason = text.strip().partition(":")
    return status.strip(), reason.strip()


# --- metrics.json ----------------------------------------------------------------------------

#: Version of the metrics.json layout that this version writes. Format 3 added ``std_errors``
#: and ``caveats``; format 4 added ``timings``.
METRICS_FORMAT: Final = 4
#: The formats this version reads; another one is refused. A format-3 file is read without
#: timings (it predates them); everything else it holds is unchanged in format 4.
METRICS_FORMATS_READ: Final = (3, 4)
_METRICS_PARTS = ("values", "samples", "details", "errors", "std_errors", "caveats")


@dataclass(frozen=True)
class EvalTimings:
    """Where one evaluation's wall-clock time went, in seconds (device synchronised).

    Every second is counted once: a pass that several metrics share (the test-set pass, the
    generated samples, the features of one image set in one feature space, loading an
    extractor, a result such as PRDC's that gives several scores) is counted under
    :attr:`passes`, and a metric's seconds are its own work only, without the shared passes it
    triggered; a pass that triggers another excludes it likewise. So ``total`` ≈
    Σ ``metrics`` + Σ ``passes``, the small rest being the driver's own bookkeeping.

    Attributes:
        total: the whole evaluation.
        metrics: metric key → seconds of its own work (a metric that raised included).
        passes: pass name (``test_pass``, ``samples``, ``extractor[lenet-mnist]``,
            ``feature_set[lenet-mnist, test]``, ``prdc[lenet-mnist, 5]``) → seconds.
    """

    total: float
    metrics: dict[str, float] = field(default_factory=dict)
    passes: dict[str, float] = field(default_factory=dict)

    def slowest(self) -> list[tuple[str, str, float]]:
        """``(kind, name, seconds)`` of every metric (kind ``metric``) and shared pass (kind
        ``pass``), slowest first; equal times in name order, so the list is deterministic."""
        parts = [("metric", name, seconds) for name, seconds in self.metrics.items()]
        parts += [("pass", name, seconds) for name, seconds in self.passes.items()]
        return sorted(parts, key=lambda part: (-part[2], part[1], part[0]))


@dataclass(frozen=True)
class MetricsDocument:
    """The content of a run's ``metrics.json``.

    Attributes:
        values: metric key → the number that goes into results.csv.
        samples: key → how many images (or generated samples) the value averages over.
        details: key → what else the metric reported (KL per dimension, a KID std, ...).
        errors: key → why the metric could not be computed; that key has no value.
        std_errors: key → the standard error of the value over the test set, where computed.
        caveats: key → why the value may not be compared with other models' (it is kept,
            flagged, and never ranked).
        timings: the seconds each metric and shared pass took; ``None`` when not measured
            (a format-3 file, a document not written by an evaluation).
    """

    values: dict[str, float] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    std_errors: dict[str, float] = field(default_factory=dict)
    caveats: dict[str, str] = field(default_factory=dict)
    timings: EvalTimings | None = None


def metrics_document(metrics: MetricsDocument) -> dict[str, Any]:
    """The JSON object of ``metrics.json``: ``{"format": 4, "values", "samples", "details",
    "errors", "std_errors", "caveats", "timings"}``, ``timings`` being ``{"total": s,
    "metrics": {key: s}, "passes": {name: s}}`` or ``null``. :func:`parse_metrics` reads it
    back to an equal document."""
    timings = metrics.timings
    return {"format": METRICS_FORMAT,
            **{name: getattr(metrics, name) for name in _METRICS_PARTS},
            "timings": None if timings is None else {
                "total": timings.total, "metrics": timings.metrics, "passes": timings.passes}}


def parse_metrics(document: object) -> MetricsDocument:
    """Read the JSON object of a ``metrics.json`` of a format in :data:`METRICS_FORMATS_READ`.

    Raises:
        SchemaError: another format version, a part that is not a JSON object, or timings
            that are not non-negative numbers.
    """
    found = document.get("format") if isinstance(document, dict) else "?"
    if not isinstance(document, dict) or found not in METRICS_FORMATS_READ:
        raise SchemaError(f"metrics format {found}, this version reads "
                          f"{' or '.join(map(str, METRICS_FORMATS_READ))}")
    parts = {name: document.get(name, {}) for name in _METRICS_PARTS}
    for name in ("values", "samples"):
        if name not in document:
            raise SchemaError(f"metrics.json without {name!r}")
    for name, part in parts.items():
        if not isinstance(part, dict):
            raise SchemaError(f"metrics.json {name!r} is not an object")
    # Format 3 predates timings: whatever such a file holds under the name is not ours.
    timings = document.get("timings") if found != 3 else None
    return MetricsDocument(**parts, timings=None if timings is None else _parse_timings(timings))


def _parse_timings(timings: object) -> EvalTimings:
    if not isinstance(timings, dict) or not _is_seconds(timings.get("total")):
        raise SchemaError("metrics.json 'timings' needs a 'total' number of seconds")
    parts: dict[str, dict[str, float]] = {}
    for name in ("metrics", "passes"):
        part = timings.get(name, {})
        if not isinstance(part, dict) or not all(map(_is_seconds, part.values())):
            raise SchemaError(f"metrics.json 'timings.{name}' must map names to seconds")
        parts[name] = {key: float(seconds) for key, seconds in part.items()}
    return EvalTimings(total=float(timings["total"]), **parts)


def _is_seconds(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


# --- latentbench bench --json ----------------------------------------------------------------

#: The ``format`` of a bench document; the part after the slash is its version.
BENCH_FORMAT: Final = "latentbench-bench/1"
_BENCH_PREFIX = BENCH_FORMAT.partition("/")[0] + "/"


@dataclass(frozen=True)
class BenchConfig:
    """One measured network of a bench document: its ``config`` name and ``metrics``."""

    config: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class BenchDocument:
    """What ``compare`` and the readers need of a bench document."""

    configs: list[BenchConfig]
    directions: dict[str, bool | None]
    environment: dict[str, Any]
    settings: dict[str, Any]


def bench_document(environment: dict[str, Any], settings: dict[str, Any],
                   directions: dict[str, bool | None], units: dict[str, str],
                   configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON object that ``latentbench bench --json`` writes.

    Args:
        environment: the device description (``device``, ``device_name``, ``torch``,
            ``threads``, ...).
        settings: ``batch_size`` (a list), ``repeats``, ``warmup``, ``amp``,
            ``channels_last``, ``compile``.
        directions: metric → ``True`` when higher is better.
        units: metric → unit.
        configs: one entry per network, each with at least ``config`` (its name) and
            ``metrics`` (name → number), and whatever else the bench measured (``iqr``,
            ``flops``, ``notes``, ...).
    """
    return {"format": BENCH_FORMAT, "environment": environment, "settings": settings,
            "directions": directions, "units": units, "configs": configs}


def is_bench_document(document: object) -> bool:
    """Whether ``document`` says it is a bench document (of any version)."""
    return isinstance(document, dict) and str(document.get("format", "")).startswith(
        _BENCH_PREFIX)


def parse_bench(document: object) -> BenchDocument:
    """Read a bench document.

    Raises:
        SchemaError: not a bench document, no list of configs, or a config without a name, a
            metrics table, or with a metric that is not a number.
    """
    if not is_bench_document(document):
        raise SchemaError(f"not a latentbench bench file (no \"format\": \"{_BENCH_PREFIX}…\")")
    assert isinstance(document, dict)
    directions = document.get("directions", {})
    configs = document.get("configs")
    if not isinstance(configs, list) or not isinstance(directions, dict):
        raise SchemaError("bench file without a configs list")
    parsed = []
    for entry in configs:
        if not (isinstance(entry, dict) and isinstance(entry.get("config"), str)
                and isinstance(entry.get("metrics"), dict)):
            raise SchemaError("each config needs a \"config\" name and a \"metrics\" table")
        for metric, value in entry["metrics"].items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SchemaError(f"{entry['config']} {metric} is not a number")
        parsed.append(BenchConfig(entry["config"], dict(entry["metrics"])))
    environment = document.get("environment", {})
    settings = document.get("settings", {})
    return BenchDocument(
        configs=parsed,
        directions={k: v if isinstance(v, bool) else None for k, v in directions.items()},
        environment=environment if isinstance(environment, dict) else {},
        settings=settings if isinstance(settings, dict) else {})


# --- labels ----------------------------------------------------------------------------------


def format_beta(beta: object) -> str | None:
    """β to four significant digits, or ``None`` for a model without one (a plain AE)."""
    if beta is None or pd.isna(beta):  # type: ignore[arg-type]
        return None
    return f"{float(beta):.4g}"  # type: ignore[arg-type]


def config_label(record: Mapping[str, Any], *, with_decoder: bool = True,
                 with_seed: bool = False) -> str:
    """The one label of a configuration, e.g. ``mnist5k · vae · transposed · β=1 · z=16``.

    Used by the sweep's progress lines, the report, the tables and ``compare``.

    Args:
        record: a results row, or any mapping with the :data:`CONFIG_COLUMNS` (and ``seed``
            when ``with_seed``).
        with_decoder: include the decoder; off when the decoders are the columns of a table.
        with_seed: append `` · seed 0``.
    """
    parts = [str(record["dataset"]), str(record["model"])]
    if with_decoder and not _missing(record["decoder"]):
        parts.append(str(record["decoder"]))
    beta = format_beta(record["beta"])
    if beta is not None:
        parts.append(f"β={beta}")
    if not _missing(record["latent_dim"]):
        parts.append(f"z={record['latent_dim']}")
    if with_seed and not _missing(record["seed"]):
        parts.append(f"seed {record['seed']}")
    return " · ".join(parts)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
