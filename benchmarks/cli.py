"""The ``latentbench`` command line.

Exit codes: 0 success, 1 failed runs (or a failed gate), 2 unusable input — always with a
one-line message that names the file, the field and what is allowed. An unexpected exception is
a bug: one line ``latentbench: internal error: ...`` and exit 1 (``--debug``: the traceback).

Start-up: importing torch takes longer than ``--help``, ``list suites`` or ``compare`` on two
CSVs take to run, so none of them imports it. This module imports nothing heavy; each command's
arguments are added when that command is parsed (:class:`CommandParser`: ``latentbench --help``
shows only each command's one-line help, from :data:`COMMANDS`), and each handler imports what
it computes with.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentbench.benchmarks import shipped_suites

if TYPE_CHECKING:
    import torch

DEFAULT_SUITE = "quick"
#: The exceptions that are unusable input (exit code 2), as (module, class). They are looked up
#: among the modules already imported: an exception can only be of a class whose module is
#: loaded, and importing ``latentbench.models`` to check would cost ``compare`` a torch import.
INPUT_ERRORS = (("latentbench.models.registry", "InputError"),
                ("latentbench.reports.compare", "CompareInputError"))


def is_input_error(err: BaseException) -> bool:
    """Whether ``err`` is one of :data:`INPUT_ERRORS` (or a subclass, as a full disk's)."""
    kinds = tuple(getattr(sys.modules[module], name) for module, name in INPUT_ERRORS
                  if hasattr(sys.modules.get(module), name))
    return isinstance(err, kinds)


# --- latentbench list ------------------------------------------------------------------------


def _first_doc_line(obj: object) -> str:
    lines = (obj.__doc__ or "").strip().splitlines()
    return lines[0] if lines else ""


def _registry_lines(module: str, name: str) -> Callable[[], list[str]]:
    """The lines of ``list``: each name in the registry ``module.name`` and the first line of
    its entry's docstring; the module is imported when the lines are asked for."""

    def lines() -> list[str]:
        registry = getattr(importlib.import_module(module), name)
        return [f"{n:<16} {_first_doc_line(registry.get(n))}" for n in registry]

    return lines


def _metric_lines() -> list[str]:
    from latentbench.metrics import METRICS

    def line(name: str) -> str:
        metric = METRICS.get(name)
        arrow = (f"best at {metric.target:g}" if metric.target is not None else
                 {True: "higher is better", False: "lower is better"}.get(
                     metric.higher_is_better, "no direction"))
        needs = ", ".join(sorted(metric.needs)) or "nothing"
        unit = f" [{metric.unit}]" if metric.unit else ""
        key = f"{name}[extractor]" if metric.feature_space else name
        notes = "".join([" (only when named)" if not metric.default else "",
                         f" (on {', '.join(sorted(metric.datasets))})" if metric.datasets else ""])
        return f"{key:<30} {arrow:<16} needs {needs:<22} {metric.description}{unit}{notes}"

    return [line(name) for name in METRICS]


def _model_lines() -> list[str]:
    from latentbench.models import MODELS
    from latentbench.models.zoo import load_entry_point_models

    load_entry_point_models()  # installed plug-ins join the registry on first use
    return [f"{n:<16} {getattr(MODELS.get(n), 'summary', '')}" for n in MODELS]


def _prior_lines() -> list[str]:
    from latentbench.models.priors import PRIORS

    return [f"{n:<16} {PRIORS.get(n).summary}" for n in PRIORS]


# What `latentbench list KIND` prints: one line per registered name.
LISTINGS: dict[str, Callable[[], list[str]]] = {
    "models": _model_lines,
    "encoders": _registry_lines("latentbench.models", "ENCODERS"),
    "decoders": _registry_lines("latentbench.models", "DECODERS"),
    "likelihoods": _registry_lines("latentbench.models", "LIKELIHOODS"),
    "priors": _prior_lines,
    "metrics": _metric_lines,
    "datasets": _registry_lines("latentbench.benchmarks.data", "DATASETS"),
    "features": _registry_lines("latentbench.metrics.features", "FEATURES"),
    "suites": lambda: [f"{n:<16} {d}" for n, d in shipped_suites().items()],
}


def command_list(args: argparse.Namespace) -> int:
    print("\n".join(LISTINGS[args.kind]()))
    return 0


# --- the other handlers ----------------------------------------------------------------------


def run_and_report(suite_of: Callable[[], Any], args: argparse.Namespace,
                   adds: bool = False) -> int:
    """Run the suite ``suite_of()`` builds into ``args.out`` (default ``runs/<suite>``) with
    the executor options of ``args``, then write the report; exit 1 when a run failed."""
    from latentbench.benchmarks.executors import ExecutorOptions
    from latentbench.benchmarks.results import run_label
    from latentbench.benchmarks.storage import reports_full_disk
    from latentbench.benchmarks.sweep import run_suite
    from latentbench.reports import render_report

    @reports_full_disk
    def run() -> int:
        suite = suite_of()
        device = args.device
        out_dir = Path(args.out) if args.out else Path("runs") / suite.name
        print(f"latentbench: suite {suite.name!r}, {len(suite.runs)} runs on {device} "
              f"({args.executor} executor), into {out_dir}")
        started = time.perf_counter()
        options = ExecutorOptions(workers=args.workers, scheduler=args.scheduler)
        results = run_suite(suite, out_dir, device, args.executor, options,
                            progress=not args.no_progress, adds=adds)
        report = render_report(out_dir)
        failed = [run_label(config) for config, outcome in results if outcome.status != "done"]
        print(f"latentbench: {len(results) - len(failed)} done, {len(failed)} failed in "
              f"{time.perf_counter() - started:.0f} s; results {out_dir / 'results.csv'}, "
              f"report {report}")
        return 1 if failed else 0

    return run()


def command_run(args: argparse.Namespace) -> int:
    from latentbench.benchmarks.suite import load_suite

    return run_and_report(lambda: load_suite(args.suite), args)


def command_eval(args: argparse.Namespace) -> int:
    from latentbench.benchmarks.one_run import eval_suite, parse_setting

    return run_and_report(lambda: eval_suite(args.model, args.dataset, args.weights,
                                             [parse_setting(s) for s in args.set]), args,
                          adds=True)


def command_score(args: argparse.Namespace) -> int:
    from latentbench.benchmarks.one_run import parse_setting, score_suite

    return run_and_report(lambda: score_suite(args.samples, args.dataset, args.count,
                                              [parse_setting(s) for s in args.set]), args,
                          adds=True)


def command_report(args: argparse.Namespace) -> int:
    from latentbench.benchmarks.storage import reports_full_disk
    from latentbench.models.registry import InputError
    from latentbench.reports import render_report
    from latentbench.reports.export import parse_formats, write_tables
    from latentbench.reports.table import load_results

    @reports_full_disk
    def report() -> int:
        out_dir = Path(args.dir)
        csv = out_dir / "results.csv"
        if not csv.is_file():
            raise InputError(f"DIR: {out_dir} holds no results.csv; give the --out folder of "
                             f"a run")
        try:  # read once up front: a file of another version is bad input, not a crash later
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

    return report()


def command_features_train(args: argparse.Namespace) -> int:
    from latentbench.benchmarks.cache import cache_dir
    from latentbench.benchmarks.data import DataSpec
    from latentbench.benchmarks.extractors import cached_lenet
    from latentbench.metrics.lenet import LeNetTraining

    training = LeNetTraining(seed=args.seed, epochs=args.epochs)
    found = cached_lenet(DataSpec(dataset=args.dataset, root=args.root), training, cache_dir())
    print(f"latentbench: lenet-{args.dataset} {'trained' if found.trained else 'from the cache'}: "
          f"{found.path}\nsha256 {found.extractor.weights_sha256}\n"
          f"test accuracy {found.test_accuracy:.4f}")
    return 0


# --- the parser ------------------------------------------------------------------------------


class CommandParser(argparse.ArgumentParser):
    """The parser of one command, whose arguments are added the first time it parses or shows
    its usage: the top-level ``--help`` needs none of them, and adding them may need the
    command's module (``bench``'s defaults come from its options, ``run`` names the executors),
    which imports torch.

    Args:
        add_arguments: called once with this parser, to add the command's arguments.
    """

    def __init__(self, *args: Any,
                 add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments

    def complete(self) -> None:
        """Add the command's arguments, if they are not yet there."""
        add, self._add_arguments = self._add_arguments, None
        if add is not None:
            add(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self.complete()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self.complete()
        return super().format_usage()

    def format_help(self) -> str:
        self.complete()
        return super().format_help()


class _ExistingParser:
    """Stands in for the subparsers action when a module's ``add_..._command(commands)`` adds
    its command: ``add_parser`` hands back the command's parser, which exists already, and
    gives it the description (the one-line help is in :data:`COMMANDS`)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._parser = parser

    def add_parser(self, name: str, *, help: str | None = None,
                   description: str | None = None) -> argparse.ArgumentParser:
        self._parser.description = description
        return self._parser


def _added_by(module: str, function: str) -> Callable[[argparse.ArgumentParser], None]:
    """Add a command's arguments with ``module.function(commands)``, which adds the command to
    a CLI's subparsers (``bench`` and ``compare`` keep theirs beside their code)."""

    def add(parser: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(module), function)(_ExistingParser(parser))

    return add


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("suite", nargs="?", default=DEFAULT_SUITE,
                     help=f"shipped suite name or path to a .toml file (default {DEFAULT_SUITE})")
    run.add_argument("--out", help="output folder (default runs/<suite>)")
    _execution_arguments(run)
    run.set_defaults(handler=command_run)


def _one_run_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument("--dataset", required=True, help="a dataset of `latentbench list "
                                                         "datasets`")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting as in a suite file: model.latent_dim=8, "
                             "model.options.path=DIR, eval.fake_samples=500, seed=1 "
                             "(repeatable; values are TOML, or plain text)")
    parser.add_argument("--out", help=f"output folder (default {default_out}); an existing "
                                      f"results folder keeps its runs and gains this one")
    _execution_arguments(parser)


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model of `latentbench list models`, or "
                                      "package.module:Class")
    parser.add_argument("--weights", help="a state_dict file to load (weights_only=True)")
    _one_run_arguments(parser, "runs/eval")
    parser.set_defaults(handler=command_eval)


def _score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("samples", help="a .npy/.npz/.pt tensor [N, C, H, W] (uint8 0-255 or "
                                        "float 0-1) or a folder of PNG/JPEG images")
    parser.add_argument("--count", type=_positive_int,
                        help="samples to score, the first ones (default: as many as the "
                             "test set, the count suites score models at, or all when fewer)")
    _one_run_arguments(parser, "runs/score")
    parser.set_defaults(handler=command_score)


def _execution_arguments(run: argparse.ArgumentParser) -> None:
    from latentbench.benchmarks.executors import EXECUTORS

    # Checked by the executor registry, not by argparse, for a one-line error naming the field.
    run.add_argument("--executor", default="local",
                     help=f"where runs execute: {', '.join(sorted(EXECUTORS))} (default local: "
                          f"this process, or a pool of --workers processes)")
    run.add_argument("--workers", type=int,
                     help="worker processes (default: on the CPU one per core, at most one per "
                          "run of the suite, each with cores/N torch threads; 1 on CUDA or with "
                          "OMP_NUM_THREADS set); with dask and no --scheduler, the size of the "
                          "LocalCluster it starts")
    run.add_argument("--scheduler", help="address of a running Dask scheduler to join "
                                         "(--executor dask), e.g. tcp://host:8786")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _report_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("dir", help="the --out folder of a run")
    report.add_argument("--format", default="html",
                        help="comma-separated: html (report.html), latex (table.tex), markdown "
                             "(table.md), csv (table.csv); default html")
    report.set_defaults(handler=command_report)


def _features_arguments(features: argparse.ArgumentParser) -> None:
    features_commands = features.add_subparsers(dest="features_command", required=True)
    train = features_commands.add_parser(
        "train", help="train lenet-DATASET on a dataset's training split (or find it in the cache)",
        add_arguments=_features_train_arguments)
    train.set_defaults(handler=command_features_train)


def _features_train_arguments(train: argparse.ArgumentParser) -> None:
    from latentbench.metrics.lenet import LeNetTraining

    defaults = LeNetTraining()
    train.add_argument("dataset", help="a dataset of `latentbench list datasets`")
    train.add_argument("--root", help="folder of a torchvision dataset's files")
    train.add_argument("--epochs", type=_positive_int, default=defaults.epochs,
                       help=f"training epochs (default {defaults.epochs})")
    train.add_argument("--seed", type=int, default=defaults.seed,
                       help=f"training seed (default {defaults.seed})")


def _list_arguments(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("kind", choices=sorted(LISTINGS))
    listing.set_defaults(handler=command_list)


#: The commands, in the order ``--help`` lists them: the one-line help shown there (written
#: here, since the modules of ``bench`` and ``compare`` import torch or pandas; a test checks
#: that they agree) and what adds the command's arguments when it is parsed.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("run a suite (resumes when run again)", _run_arguments),
    "eval": ("score a model trained elsewhere (weights, pythae folder) without training",
             _eval_arguments),
    "score": ("score a file or folder of samples on the sample metrics", _score_arguments),
    "report": ("rebuild report.html from a results folder", _report_arguments),
    "features": ("feature extractors of FID/KID/PRDC", _features_arguments),
    "list": ("list registered names", _list_arguments),
    "bench": ("time training, encoding and decoding of models on random images",
              _added_by("latentbench.benchmarks.bench", "add_bench_command")),
    "compare": ("regression gate: fail when CURRENT is worse than BASELINE",
                _added_by("latentbench.reports.compare", "add_compare_command")),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``latentbench`` parser; each command's arguments are added when it is parsed."""
    parser = argparse.ArgumentParser(
        prog="latentbench",
        description="Train and score generative latent models (AE, VAE/β-VAE) under one "
                    "protocol.")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the traceback instead of one line "
                             "(give it before the command: latentbench --debug run ...)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for name, (summary, add_arguments) in COMMANDS.items():
        commands.add_parser(name, help=summary, add_arguments=add_arguments)
    return parser


# --- running a command -----------------------------------------------------------------------


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
    import torch

    from latentbench.models.registry import InputError

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
    except KeyboardInterrupt:
        print("latentbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        if is_input_error(err):
            print(f"latentbench: error: {one_line(str(err))}", file=sys.stderr)
            return 2
        # Anything else is a bug in latentbench or a plug-in, not the user's input: say so on
        # one line (exit 1, as for failed runs) and keep the traceback for --debug.
        print(f"latentbench: internal error: {type(err).__name__}: {one_line(str(err))} "
              f"(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
