"""The ``latentbench`` command line.

Exit codes: 0 success, 1 failed runs (or a failed gate), 2 unusable input — always with a
one-line message that names the file, the field and what is allowed. An unexpected exception is
a bug: one line ``latentbench: internal error: ...`` and exit 1 (``--debug``: the traceback).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from latentbench.benchmarks.bench import add_bench_command
from latentbench.benchmarks.data import DATASETS, DataSpec
from latentbench.benchmarks.executors import EXECUTORS, ExecutorOptions
from latentbench.benchmarks.extractors import cache_dir, cached_lenet
from latentbench.benchmarks.results import run_label
from latentbench.benchmarks.storage import reports_full_disk
from latentbench.benchmarks.suite import load_suite, shipped_suites
from latentbench.benchmarks.sweep import run_suite
from latentbench.metrics import METRICS
from latentbench.metrics.features import FEATURES
from latentbench.metrics.lenet import LeNetTraining
from latentbench.models import DECODERS, ENCODERS, LIKELIHOODS, MODELS
from latentbench.models.registry import InputError
from latentbench.models.zoo import load_entry_point_models
from latentbench.reports.compare import CompareInputError, add_compare_command

DEFAULT_SUITE = "quick"


def _first_doc_line(obj: object) -> str:
    lines = (obj.__doc__ or "").strip().splitlines()
    return lines[0] if lines else ""


def _metric_line(name: str) -> str:
    metric = METRICS.get(name)
    arrow = {True: "higher is better", False: "lower is better"}.get(
        metric.higher_is_better, "ideal at 0")
    needs = ", ".join(sorted(metric.needs)) or "nothing"
    unit = f" [{metric.unit}]" if metric.unit else ""
    key = f"{name}[extractor]" if metric.feature_space else name
    notes = "".join([" (only when named)" if not metric.default else "",
                     f" (on {', '.join(sorted(metric.datasets))})" if metric.datasets else ""])
    return f"{key:<30} {arrow:<16} needs {needs:<22} {metric.description}{unit}{notes}"


def _model_lines() -> list[str]:
    load_entry_point_models()  # installed plug-ins join the registry on first use
    return [f"{n:<16} {getattr(MODELS.get(n), 'summary', '')}" for n in MODELS]


# What `latentbench list KIND` prints: one line per registered name.
LISTINGS: dict[str, Callable[[], list[str]]] = {
    "models": _model_lines,
    "encoders": lambda: [f"{n:<16} {_first_doc_line(ENCODERS.get(n))}" for n in ENCODERS],
    "decoders": lambda: [f"{n:<16} {_first_doc_line(DECODERS.get(n))}" for n in DECODERS],
    "likelihoods": lambda: [f"{n:<16} {_first_doc_line(LIKELIHOODS.get(n))}" for n in LIKELIHOODS],
    "metrics": lambda: [_metric_line(n) for n in METRICS],
    "datasets": lambda: [f"{n:<16} {_first_doc_line(DATASETS.get(n))}" for n in DATASETS],
    "features": lambda: [f"{n:<16} {_first_doc_line(FEATURES.get(n))}" for n in FEATURES],
    "suites": lambda: [f"{n:<16} {d}" for n, d in shipped_suites().items()],
}


def command_list(args: argparse.Namespace) -> int:
    print("\n".join(LISTINGS[args.kind]()))
    return 0


@reports_full_disk
def command_run(args: argparse.Namespace) -> int:
    from latentbench.reports import render_report

    suite = load_suite(args.suite)
    device = args.device
    out_dir = Path(args.out) if args.out else Path("runs") / suite.name
    print(f"latentbench: suite {suite.name!r}, {len(suite.runs)} runs on {device} "
          f"({args.executor} executor), into {out_dir}")
    started = time.perf_counter()
    options = ExecutorOptions(workers=args.workers, scheduler=args.scheduler)
    results = run_suite(suite, out_dir, device, args.executor, options,
                        progress=not args.no_progress)
    report = render_report(out_dir)
    failed = [run_label(config) for config, outcome in results if outcome.status != "done"]
    print(f"latentbench: {len(results) - len(failed)} done, {len(failed)} failed in "
          f"{time.perf_counter() - started:.0f} s; results {out_dir / 'results.csv'}, "
          f"report {report}")
    return 1 if failed else 0


@reports_full_disk
def command_report(args: argparse.Namespace) -> int:
    from latentbench.reports import render_report
    from latentbench.reports.export import parse_formats, write_tables
    from latentbench.reports.table import load_results

    out_dir = Path(args.dir)
    csv = out_dir / "results.csv"
    if not csv.is_file():
        raise InputError(f"DIR: {out_dir} holds no results.csv; give the --out folder of a run")
    try:  # read once up front: a file of another version is bad input, not a crash mid-report
        load_results(csv)
    except ValueError as err:  # also pandas' parser errors and undecodable bytes
        reason = one_line(str(err)).removeprefix(f"{csv} ")
        raise InputError(f"{csv}: not a results.csv this version of latentbench reads "
                         f"({reason}); rerun the suite into a new --out folder") from None
    try:
        formats = parse_formats(args.format)
    except ValueError as error:
        raise InputError(str(error)) from None
    if "html" in formats:
        print(render_report(out_dir))
    for path in write_tables(out_dir, formats):
        print(path)
    return 0


def command_features_train(args: argparse.Namespace) -> int:
    training = LeNetTraining(seed=args.seed, epochs=args.epochs)
    found = cached_lenet(DataSpec(dataset=args.dataset, root=args.root), training, cache_dir())
    print(f"latentbench: lenet-{args.dataset} {'trained' if found.trained else 'from the cache'}: "
          f"{found.path}\nsha256 {found.extractor.weights_sha256}\n"
          f"test accuracy {found.test_accuracy:.4f}")
    return 0


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentbench",
        description="Train and score generative latent models (AE, VAE/β-VAE) under one "
                    "protocol.")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the traceback instead of one line "
                             "(give it before the command: latentbench --debug run ...)")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a suite (resumes when run again)")
    run.add_argument("suite", nargs="?", default=DEFAULT_SUITE,
                     help=f"shipped suite name or path to a .toml file (default {DEFAULT_SUITE})")
    run.add_argument("--out", help="output folder (default runs/<suite>)")
    # Checked by the executor registry, not by argparse, for a one-line error naming the field.
    run.add_argument("--executor", default="local",
                     help=f"where runs execute: {', '.join(sorted(EXECUTORS))} (default local: "
                          f"this process, or a pool of --workers processes)")
    run.add_argument("--workers", type=int,
                     help="worker processes (default 1; with dask and no --scheduler, the size "
                          "of the LocalCluster it starts)")
    run.add_argument("--scheduler", help="address of a running Dask scheduler to join "
                                         "(--executor dask), e.g. tcp://host:8786")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    run.set_defaults(handler=command_run)

    report = commands.add_parser("report", help="rebuild report.html from a results folder")
    report.add_argument("dir", help="the --out folder of a run")
    report.add_argument("--format", default="html",
                        help="comma-separated: html (report.html), latex (table.tex), markdown "
                             "(table.md), csv (table.csv); default html")
    report.set_defaults(handler=command_report)

    features = commands.add_parser("features", help="feature extractors of FID/KID/PRDC")
    features_commands = features.add_subparsers(dest="features_command", required=True)
    train = features_commands.add_parser(
        "train", help="train lenet-DATASET on a dataset's training split (or find it in the cache)")
    train.add_argument("dataset", help="a dataset of `latentbench list datasets`")
    train.add_argument("--root", help="folder of a torchvision dataset's files")
    train.add_argument("--epochs", type=_positive_int, default=LeNetTraining().epochs,
                       help=f"training epochs (default {LeNetTraining().epochs})")
    train.add_argument("--seed", type=int, default=LeNetTraining().seed,
                       help=f"training seed (default {LeNetTraining().seed})")
    train.set_defaults(handler=command_features_train)

    listing = commands.add_parser("list", help="list registered names")
    listing.add_argument("kind", choices=sorted(LISTINGS))
    listing.set_defaults(handler=command_list)

    add_bench_command(commands)
    add_compare_command(commands)
    return parser


def one_line(text: str) -> str:
    """``text`` with its control characters escaped, so that a message quoting user input (a
    key with a newline in it) stays on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def resolve_device(device: str) -> torch.device:
    """``--device``: ``auto`` picks CUDA when available, else the CPU; ``cuda`` without CUDA is
    an error.

    Raises:
        InputError: an unknown name, or ``cuda`` on a machine where torch sees no CUDA device.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device: must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device: cuda was asked for but torch sees no CUDA device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``latentbench`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if isinstance(getattr(args, "device", None), str):  # commands that compute somewhere
            args.device = resolve_device(args.device)
        return args.handler(args)
    except (InputError, CompareInputError) as err:
        if args.debug:
            raise
        print(f"latentbench: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as err:
        # Anything else is a bug in latentbench or a plug-in, not the user's input: say so on
        # one line (exit 1, as for failed runs) and keep the traceback for --debug.
        if args.debug:
            raise
        print(f"latentbench: internal error: {type(err).__name__}: {one_line(str(err))} "
              f"(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
