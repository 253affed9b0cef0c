"""The regression gate: compare CURRENT results with a BASELINE and fail on a worse metric.

``latentbench compare BASELINE CURRENT [--tolerances FILE] [--k 3] [--update-baseline]`` takes
two files of the same kind:

- two ``results.csv`` (long format, :mod:`latentbench.reports.schema`): rows of finished runs
  are grouped by configuration (dataset, model, decoder, β, latent size) and metric, over seeds,
  into a mean and a sample standard deviation;
- two ``latentbench bench --json`` files: one value per configuration and metric.

A metric **regresses** when it is worse than the baseline, in its direction (or further from its
target: checkerboard 1, density 1), by more than

    allowed = max(abs, rel × |baseline mean|, k × baseline seed std,
                  k × √(u_baseline² + u_current²))

(``abs`` and ``rel`` from the tolerances, ``k`` from ``--k``; the std term is 0 for one seed and
for bench files; ``u`` is a mean's uncertainty: seed std / √n over several seeds, else the
test-set standard error of the one value from results.csv's ``std_error``). A metric the
baseline has and the current lacks, or has from fewer seeds,
regresses too: a run that failed is a regression. Metrics without a known direction
(``higher_is_better`` empty in results.csv) are reported and never gate; metrics and
configurations only in CURRENT are reported as new.

Tolerances come from a TOML file; unknown keys are errors::

    [default]                       # every metric no pattern below matches
    rel = 0.0
    abs = 0.0

    [tolerances."recon_mse"]        # an exact metric key wins over any pattern
    rel = 0.05

    [tolerances."fid[*]"]           # "*" and "?" are wildcards; brackets are literal
    abs = 2.0

Patterns are tried in file order, then the built-in ones (:data:`BUILTIN_TOLERANCES`: 10%
relative for the timing metrics, which vary between runs), then ``[default]`` (zero unless the
file sets it).

Exit codes: 0 nothing regressed (or ``--update-baseline``), 1 a regression, 2 unusable input
(:class:`CompareInputError`: a missing file, a file that is neither kind, mismatched kinds, no
configuration in common, a bad tolerances file). This module reads result files only; it never
imports models, metrics or benchmarks.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from latentbench.reports.atomic import write_text_atomic
from latentbench.reports.schema import SchemaError, config_label, is_bench_document, parse_bench
from latentbench.reports.table import load_results

__all__ = [
    "BUILTIN_TOLERANCES",
    "CompareInputError",
    "Comparison",
    "Measurements",
    "Row",
    "Tolerance",
    "Tolerances",
    "add_compare_command",
    "compare",
    "format_comparison",
    "load_measurements",
    "load_tolerances",
    "run_compare",
]

DEFAULT_K = 3.0
#: Failing rows named in the closing summary line (the table lists them all).
SUMMARY_NAMES = 5


class CompareInputError(ValueError):
    """Unusable input to the gate (exit code 2); the message is one line naming the file."""


# --- tolerances ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the baseline a metric may get: ``abs`` in the metric's unit, ``rel``
    as a fraction of ``|baseline|``; the larger (and ``k`` × seed std) is allowed."""

    abs: float = 0.0
    rel: float = 0.0


#: Applied after the file's patterns: timings differ from run to run on the same machine.
BUILTIN_TOLERANCES: tuple[tuple[str, Tolerance], ...] = (
    ("*_img_s", Tolerance(rel=0.10)),
    ("*_flop_s", Tolerance(rel=0.10)),
    ("latency_ms", Tolerance(rel=0.10)),
    ("peak_mem_mb", Tolerance(rel=0.10)),
)


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` one; everything else literal (``fid[*]`` matches
    ``fid[lenet-mnist]``, where :mod:`fnmatch` would read the brackets as a character set)."""
    parts = {"*": ".*", "?": "."}
    return re.compile("".join(parts.get(c, re.escape(c)) for c in pattern) + r"\Z")


@dataclass(frozen=True)
class Tolerances:
    """The tolerance of every metric key: exact keys, then patterns in order, then default.

    Attributes:
        default: for keys that nothing else matches.
        patterns: ``(pattern, tolerance)`` in the order tried, the built-ins last.
    """

    default: Tolerance = Tolerance()
    patterns: tuple[tuple[str, Tolerance], ...] = BUILTIN_TOLERANCES

    def for_metric(self, key: str) -> Tolerance:
        """The tolerance of metric ``key`` (``recon_mse``, ``fid[lenet-mnist]``)."""
        for pattern, tolerance in self.patterns:
            if pattern == key:
                return tolerance
        for pattern, tolerance in self.patterns:
            if _glob(pattern).match(key):
                return tolerance
        return self.default


def _tolerance(table: Any, where: str) -> Tolerance:
    if not isinstance(table, dict):
        raise CompareInputError(f"{where}: expected a table with rel and/or abs, got {table!r}")
    unknown = sorted(set(table) - {"abs", "rel"})
    if unknown:
        raise CompareInputError(f"{where}.{unknown[0]}: unknown key; allowed: abs, rel")
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise CompareInputError(f"{where}.{key}: must be a number >= 0, got {value!r}")
    return Tolerance(abs=float(table.get("abs", 0.0)), rel=float(table.get("rel", 0.0)))


def load_tolerances(path: Path | str | None) -> Tolerances:
    """Read a tolerances TOML file (module docstring); ``None`` gives the built-ins.

    Raises:
        CompareInputError: a missing or invalid file, an unknown key, a negative tolerance.
    """
    if path is None:
        return Tolerances()
    where = f"--tolerances {path}"
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompareInputError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise CompareInputError(f"{where}: not a readable TOML file ({err})") from None
    unknown = sorted(set(table) - {"default", "tolerances"})
    if unknown:
        raise CompareInputError(f"{where}: unknown key {unknown[0]!r}; allowed: default, "
                                f"tolerances")
    default = _tolerance(table.get("default", {}), f"{where}: default")
    patterns = table.get("tolerances", {})
    if not isinstance(patterns, dict):
        raise CompareInputError(f"{where}: tolerances must be tables such as "
                                f"[tolerances.\"recon_mse\"]")
    own = tuple((pattern, _tolerance(t, f"{where}: tolerances.{pattern!r}"))
                for pattern, t in patterns.items())
    return Tolerances(default=default, patterns=own + BUILTIN_TOLERANCES)


# --- the two kinds of input ------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """One configuration's metric: mean and sample std over ``n`` finite values (seeds), the
    metric's direction (``None`` unknown) or target, and the standard error of a single seed's
    value over its test set (``0`` where none was computed)."""

    mean: float
    std: float
    n: int
    higher_is_better: bool | None
    target: float | None = None
    std_error: float = 0.0

    @property
    def uncertainty(self) -> float:
        """How uncertain the mean is: ``std / √n`` over several seeds, else the test-set
        standard error of the one value."""
        return self.std / math.sqrt(self.n) if self.n > 1 else self.std_error


@dataclass
class Measurements:
    """What one file holds, in a form both kinds share.

    Attributes:
        kind: ``"results.csv"`` or ``"bench JSON"``.
        path: the file.
        stats: ``(config, metric) → Stat``; a metric every seed failed is absent.
        configs: every configuration in the file, including those whose runs all failed.
        settings: what the measurement ran on (bench JSON: device and settings), to warn when
            the two sides differ.
    """

    kind: str
    path: Path
    stats: dict[tuple[str, str], Stat] = field(default_factory=dict)
    configs: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def _results_measurements(path: Path, where: str) -> Measurements:
    try:
        frame = load_results(path)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CompareInputError(f"{where}: not a results.csv or bench JSON "
                                f"({str(err).splitlines()[0]})") from None
    measurements = Measurements("results.csv", path)
    if frame.empty:
        return measurements
    frame = frame.assign(config=frame.apply(config_label, axis=1))
    measurements.configs = list(dict.fromkeys(frame["config"]))
    done = frame[(frame["status"] == "done") & frame["metric"].notna()]
    for (config, metric), group in done.groupby(["config", "metric"], sort=False):
        finite = group[group["value"].map(math.isfinite)]
        directions = group["higher_is_better"].dropna()
        direction = None if directions.empty else bool(directions.iloc[0])
        targets = group["target"].dropna()
        if finite.empty:
            continue
        values = finite["value"]
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        std_error = finite["std_error"].dropna()
        measurements.stats[(config, str(metric))] = Stat(
            float(values.mean()), std, len(values), direction,
            None if targets.empty else float(targets.iloc[0]),
            float(std_error.iloc[0]) if len(values) == 1 and len(std_error) else 0.0)
    return measurements


def _bench_measurements(path: Path, document: Any, where: str) -> Measurements:
    try:
        bench = parse_bench(document)
    except SchemaError as err:
        kind = "" if is_bench_document(document) else "JSON but "
        raise CompareInputError(f"{where}: {kind}{err}") from None
    environment = bench.environment
    measurements = Measurements("bench JSON", path, settings={
        "device": environment.get("device_name"), "threads": environment.get("threads"),
        "torch": environment.get("torch"), **bench.settings})
    for entry in bench.configs:
        measurements.configs.append(entry.config)
        for metric, value in entry.metrics.items():
            if math.isfinite(value):
                measurements.stats[(entry.config, metric)] = Stat(
                    float(value), 0.0, 1, bench.directions.get(metric))
    return measurements


def load_measurements(path: Path | str, role: str) -> Measurements:
    """Read a ``results.csv`` or a bench JSON file (the kind is read from the content).

    Args:
        path: the file.
        role: ``BASELINE`` or ``CURRENT``, for the messages.

    Raises:
        CompareInputError: missing file, or neither kind.
    """
    path = Path(path)
    where = f"{role} {path}"
    if not path.is_file():
        raise CompareInputError(f"{where}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CompareInputError(f"{where}: not a readable text file ({err})") from None
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise CompareInputError(f"{where}: invalid JSON ({err})") from None
        return _bench_measurements(path, document, where)
    return _results_measurements(path, where)


# --- the comparison --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the comparison.

    Attributes:
        config, metric: what is compared.
        baseline, current: the means (``None`` where a side lacks the metric).
        delta: current − baseline.
        allowed: how much worse it may get (``None`` where no gate applies).
        verdict: ``improved``, ``ok``, ``regressed``, ``missing``, ``fewer runs (n of m)``,
            ``no direction``, ``new`` or ``no baseline``.
        failed: whether the row fails the gate.
    """

    config: str
    metric: str
    baseline: float | None
    current: float | None
    delta: float | None
    allowed: float | None
    verdict: str
    failed: bool = False


@dataclass(frozen=True)
class Comparison:
    """All rows, in order (configs of the baseline first), and warnings on differing setups."""

    rows: tuple[Row, ...]
    warnings: tuple[str, ...] = ()

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.failed]


def _row(config: str, metric: str, base: Stat | None, cur: Stat | None,
         tolerances: Tolerances, k: float) -> Row:
    if base is None:
        return Row(config, metric, None, cur.mean if cur else None, None, None, "new")
    if cur is None:
        return Row(config, metric, base.mean, None, None, None, "missing", failed=True)
    delta = cur.mean - base.mean
    if abs(delta) <= 1e-12 * max(abs(cur.mean), abs(base.mean)):
        delta = 0.0  # the same values summed in another order: round-off, not a change
    # Runs that failed are a regression whatever the metric's direction: it is the run, not
    # the value, that broke.
    fewer = f"fewer runs ({cur.n} of {base.n})" if cur.n < base.n else None
    if base.higher_is_better is None and base.target is None:
        return Row(config, metric, base.mean, cur.mean, delta, None, fewer or "no direction",
                   failed=fewer is not None)
    tolerance = tolerances.for_metric(metric)
    # Both numbers are estimates: a change within k combined standard errors is noise.
    noise = k * math.hypot(base.uncertainty, cur.uncertainty)
    allowed = max(tolerance.abs, tolerance.rel * abs(base.mean), k * base.std, noise)
    if base.target is not None:  # worse = further from the target
        worse_by = abs(cur.mean - base.target) - abs(base.mean - base.target)
    else:
        worse_by = -delta if base.higher_is_better else delta
    if worse_by > allowed:
        return Row(config, metric, base.mean, cur.mean, delta, allowed, "regressed", True)
    if fewer:
        return Row(config, metric, base.mean, cur.mean, delta, allowed, fewer, True)
    verdict = "improved" if -worse_by > allowed else "ok"
    return Row(config, metric, base.mean, cur.mean, delta, allowed, verdict)


def compare(baseline: Measurements, current: Measurements, tolerances: Tolerances,
            k: float = DEFAULT_K) -> Comparison:
    """Compare two loaded files (see the module docstring for the rule).

    Raises:
        CompareInputError: the files are of different kinds, or share no configuration.
    """
    if baseline.kind != current.kind:
        raise CompareInputError(f"CURRENT {current.path}: a {current.kind}, but BASELINE "
                                f"{baseline.path} is a {baseline.kind}; compare like with like")
    common = set(baseline.configs) & set(current.configs)
    if not common:
        raise CompareInputError(f"CURRENT {current.path}: no configuration in common with "
                                f"BASELINE {baseline.path}")
    keys = list(dict.fromkeys([*baseline.stats, *current.stats]))
    order = {config: i for i, config in enumerate(dict.fromkeys(
        [*baseline.configs, *current.configs]))}
    keys.sort(key=lambda key: order[key[0]])  # stable: metrics keep their order per config
    rows = [_row(config, metric, baseline.stats.get((config, metric)),
                 current.stats.get((config, metric)), tolerances, k)
            for config, metric in keys]
    warnings = tuple(
        f"settings differ: {name} {baseline.settings[name]!r} in BASELINE, "
        f"{current.settings.get(name)!r} in CURRENT"
        for name in baseline.settings
        if baseline.settings[name] != current.settings.get(name))
    return Comparison(tuple(rows), warnings)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _delta(row: Row) -> str:
    if row.delta is None:
        return "—"
    relative = (f" ({row.delta / abs(row.baseline):+.1%})"
                if row.baseline not in (None, 0.0) else "")
    return f"{row.delta:+.4g}{relative}"


def format_comparison(comparison: Comparison, baseline: Measurements,
                      current: Measurements) -> str:
    """The comparison as a table (failing rows first) and a one-line summary."""
    rows = sorted(comparison.rows, key=lambda row: not row.failed)
    table = [["config", "metric", "baseline", "current", "delta", "allowed", "verdict"]]
    table += [[row.config, row.metric, _number(row.baseline), _number(row.current), _delta(row),
               _number(row.allowed), row.verdict.upper() if row.failed else row.verdict]
              for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    numeric = {2, 3, 4, 5}
    lines = [f"compare: {baseline.kind} BASELINE {baseline.path} against CURRENT {current.path}"]
    lines += [f"warning: {warning}" for warning in comparison.warnings]
    for index, line in enumerate(table):
        lines.append("  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(line, widths, strict=True))))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    failures = comparison.failures
    named = ", ".join(f"{r.config} {r.metric}" for r in failures[:SUMMARY_NAMES])
    more = f" and {len(failures) - SUMMARY_NAMES} more" if len(failures) > SUMMARY_NAMES else ""
    lines.append(f"compare: {len(failures)} regression(s) in {len(comparison.rows)} "
                 f"comparison(s)" + (f": {named}{more}" if failures else ""))
    return "\n".join(lines)


def run_compare(baseline_path: Path | str, current_path: Path | str,
                tolerances_path: Path | str | None = None, k: float = DEFAULT_K,
                update_baseline: bool = False, echo: Callable[[str], None] = print) -> int:
    """Compare, print the table through ``echo`` and return the exit code (module docstring).

    With ``update_baseline`` the current file then replaces the baseline (atomically) and the
    exit code is 0 whatever the verdicts.

    Raises:
        CompareInputError: unusable input (exit code 2).
    """
    if isinstance(k, bool) or not isinstance(k, int | float) or not k >= 0:
        raise CompareInputError(f"--k: must be a number >= 0, got {k!r}")
    tolerances = load_tolerances(tolerances_path)
    baseline = load_measurements(baseline_path, "BASELINE")
    current = load_measurements(current_path, "CURRENT")
    comparison = compare(baseline, current, tolerances, k)
    echo(format_comparison(comparison, baseline, current))
    if update_baseline:
        write_text_atomic(baseline.path, current.path.read_text(encoding="utf-8"))
        echo(f"compare: baseline {baseline.path} updated from {current.path}")
        return 0
    return 1 if comparison.failures else 0


def add_compare_command(commands: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand to the CLI's subparsers."""
    parser = commands.add_parser(
        "compare", help="regression gate: fail when CURRENT is worse than BASELINE",
        description="Compare two results.csv files (grouped over seeds) or two bench JSON "
                    "files; exit 1 when a metric got worse by more than its tolerance.")
    parser.add_argument("baseline", metavar="BASELINE", help="results.csv or bench JSON")
    parser.add_argument("current", metavar="CURRENT", help="a file of the same kind")
    parser.add_argument("--tolerances", metavar="FILE",
                        help="TOML: [default] and [tolerances.\"pattern\"] with rel, abs")
    parser.add_argument("--k", type=float, default=DEFAULT_K,
                        help=f"seed standard deviations of the baseline allowed "
                             f"(default {DEFAULT_K:g})")
    parser.add_argument("--update-baseline", action="store_true",
                        help="after printing the comparison, replace BASELINE by CURRENT")
    parser.set_defaults(handler=lambda args: run_compare(
        args.baseline, args.current, args.tolerances, args.k, args.update_baseline))
