"""``latentbench bench``: throughput of models on random images, as a table and as JSON.

One model from flags (``--model vae --decoder transposed --latent-dim 16 ...``) or every model
of a suite (``--suite quick``): the suite's runs are deduplicated by network, since β, its
schedule, σ and the seed change no computation (``vae`` at β = 1 and β = 4 is timed once). Each
is built from a fixed seed and timed on random images of the dataset's shape (no data is
loaded beyond one image to read the shape, nothing is trained): training, encoding, decoding,
batch-1 latency, peak memory, parameters and FLOPs — see
:mod:`latentbench.metrics.measurements` for how each is measured.

``--json PATH`` writes (atomically) the document of
:func:`latentbench.reports.schema.bench_document`, whose environment is
:func:`latentbench.benchmarks.environment.device_description`::

    {
      "format": "latentbench-bench/1",
      "environment": {"device", "device_name", "torch", "cuda", "cudnn", "threads", "cpus",
                      "cpu_name", "python", "platform", "peak_flop_s", "peak_basis", ...},
      "settings": {"batch_size", "repeats", "warmup", "amp", "channels_last", "compile"},
      "directions": {metric: true (higher is better) | false},
      "units": {metric: unit},
      "configs": [
        {"config": "vae/transposed", "model": {ModelSpec fields but β's}, "dataset",
         "image_shape", "batch_size",
         "metrics": {"train_img_s", "encode_img_s" (absent without an encoder), "decode_img_s",
                     "latency_ms", "peak_mem_mb", "params", "flops_per_img",
                     "train_flop_s", "encode_flop_s", "decode_flop_s"},
         "iqr": {timed metric: interquartile range, same unit},
         "flops": {"loss_forward_per_img", "train_step_per_img", "encode_per_img",
                   "decode_per_img"},
         "latency_path", "memory_method", "notes": [...]}
      ]
    }

``latentbench compare BASELINE.json CURRENT.json`` gates on the ``metrics`` of each ``config``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentbench.benchmarks.data import DataSpec
from latentbench.benchmarks.environment import device_description
from latentbench.benchmarks.run import cached_dataset
from latentbench.benchmarks.suite import load_suite
from latentbench.metrics import METRICS
from latentbench.metrics.measurements import ModelThroughput, measure_model
from latentbench.metrics.timing import CompileFailed, ThroughputOptions, check_amp
from latentbench.models import ModelSpec, build_model
from latentbench.models.registry import InputError, check_int
from latentbench.reports.atomic import write_json_atomic
from latentbench.reports.schema import bench_document

DEFAULT_BATCH_SIZE = 128
#: ``--repeats`` and ``--warmup`` default to the options' own defaults.
DEFAULT_OPTIONS = ThroughputOptions()
#: Settings of a model that change no computation: runs differing only in these are timed once.
NO_COMPUTE_FIELDS = ("beta", "beta_schedule", "warmup_steps", "cycle_steps", "cycle_ratio",
                     "sigma", "alpha", "gamma", "capacity", "capacity_steps")
#: Flags that describe one model; they cannot be combined with ``--suite``.
MODEL_FLAGS = {"name": "--model", "decoder": "--decoder", "encoder": "--encoder",
               "latent_dim": "--latent-dim", "width": "--width", "hidden": "--hidden"}
#: Achieved FLOP/s, measured beside the registered metrics; higher is better.
FLOP_S_KEYS = ("train_flop_s", "encode_flop_s", "decode_flop_s")


@dataclass(frozen=True)
class BenchTarget:
    """One network to time: its model section, the data whose image shape it takes, the batch.

    Attributes:
        label: the row's name in the table and the ``config`` key in the JSON.
        spec: the model section.
        data: the data section (only the image shape is used).
        batch_size: images per training step and per encode/decode call.
    """

    label: str
    spec: ModelSpec
    data: DataSpec
    batch_size: int


def network_fields(spec: ModelSpec) -> dict[str, Any]:
    """The settings of ``spec`` that determine the network's computation."""
    fields = dataclasses.asdict(spec)
    return {k: v for k, v in fields.items() if k not in NO_COMPUTE_FIELDS}


def _label(spec: ModelSpec) -> str:
    """``name/decoder`` plus every network setting that differs from the defaults."""
    defaults = network_fields(ModelSpec())
    extras = [f"{k}={v}" for k, v in network_fields(spec).items()
              if k not in ("name", "decoder") and v != defaults[k]]
    return " ".join([f"{spec.name}/{spec.decoder}", *extras])


def bench_targets(args: argparse.Namespace) -> list[BenchTarget]:
    """The networks that ``args`` ask for, each once, in order.

    Raises:
        InputError: ``--suite`` combined with model flags, a bad ``--batch-size``, an unknown
            suite, or a model spec that fails validation.
    """
    # ModelSpec field → the flag's value (argparse names each attribute after its flag).
    settings = {name: getattr(args, flag[2:].replace("-", "_"))
                for name, flag in MODEL_FLAGS.items()}
    settings = {name: value for name, value in settings.items() if value is not None}
    if args.batch_size is not None:
        check_int(args.batch_size, "--batch-size", minimum=1)
    if args.suite is None:
        spec = ModelSpec(**settings)
        data = DataSpec(dataset=args.dataset or "mnist5k")
        return [BenchTarget(_label(spec), spec, data, args.batch_size or DEFAULT_BATCH_SIZE)]
    if settings:
        given = ", ".join(MODEL_FLAGS[name] for name in settings)
        raise InputError(f"--suite: times the suite's own models; drop {given}")
    targets: dict[str, BenchTarget] = {}
    for config in load_suite(args.suite).runs:
        data = config.data if args.dataset is None else DataSpec(dataset=args.dataset)
        batch_size = args.batch_size or config.train.batch_size
        key = json.dumps([network_fields(config.model), dataclasses.asdict(data), batch_size],
                         sort_keys=True, default=str)
        if key not in targets:
            targets[key] = BenchTarget(_label(config.model), config.model, data, batch_size)
    return _disambiguated(list(targets.values()))


def _disambiguated(targets: list[BenchTarget]) -> list[BenchTarget]:
    """Add the dataset, then the batch size, to labels shared by several targets."""
    for extra in (lambda t: f"on {t.data.dataset}", lambda t: f"batch {t.batch_size}"):
        labels = [t.label for t in targets]
        targets = [dataclasses.replace(t, label=f"{t.label} {extra(t)}")
                   if labels.count(t.label) > 1 else t for t in targets]
    return targets


def image_shape(data: DataSpec) -> tuple[int, int, int]:
    """``(C, H, W)`` of ``data``'s images, from one image of each split (a generator draws
    just that; an embedded set is loaded once per process)."""
    return cached_dataset(dataclasses.replace(data, n_train=1, n_test=1)).image_shape


def run_bench(targets: list[BenchTarget], device: torch.device,
              options: ThroughputOptions) -> dict[str, Any]:
    """Measure every target on ``device`` and return the JSON document (module docstring)."""
    configs = []
    for target in targets:
        shape = image_shape(target.data)
        torch.manual_seed(0)  # the same initial weights on every run of the command
        model = build_model(target.spec, shape).to(device)
        measured = measure_model(model, shape, target.batch_size, options)
        configs.append(_config_entry(target, shape, measured))
        del model
    keys = [k for entry in configs for k in entry["metrics"]]
    directions = {k: METRICS.get(k).higher_is_better if k in METRICS else k in FLOP_S_KEYS
                  for k in dict.fromkeys(keys)}
    units = {k: METRICS.get(k).unit if k in METRICS else "FLOP/s" for k in directions}
    settings = {"batch_size": sorted({t.batch_size for t in targets}),
                "repeats": options.repeats, "warmup": options.warmup, "amp": options.amp,
                "channels_last": options.channels_last, "compile": options.compile}
    return bench_document(device_description(device), settings, directions, units, configs)


def _config_entry(target: BenchTarget, shape: tuple[int, int, int],
                  measured: ModelThroughput) -> dict[str, Any]:
    return {
        "config": target.label,
        "model": network_fields(target.spec),
        "dataset": target.data.dataset,
        "image_shape": list(shape),
        "batch_size": target.batch_size,
        "metrics": measured.metrics,
        "iqr": measured.iqr,
        "flops": measured.flops,
        "latency_path": measured.latency_path,
        "memory_method": measured.memory_method,
        "notes": measured.notes,
    }


# --- the table -------------------------------------------------------------------------------

#: Columns: header, metric key, scale, decimals, with the IQR after a ±.
_COLUMNS: tuple[tuple[str, str, float, int, bool], ...] = (
    ("train img/s", "train_img_s", 1.0, 0, True),
    ("train GFLOP/s", "train_flop_s", 1e-9, 1, False),
    ("encode img/s", "encode_img_s", 1.0, 0, True),
    ("decode img/s", "decode_img_s", 1.0, 0, True),
    ("latency ms", "latency_ms", 1.0, 3, True),
    ("peak MiB", "peak_mem_mb", 1.0, 1, False),
    ("params", "params", 1.0, 0, False),
    ("MFLOP/img", "flops_per_img", 1e-6, 2, False),
)


def _cell(entry: dict[str, Any], key: str, scale: float, decimals: int, spread: bool) -> str:
    value = entry["metrics"].get(key)
    if value is None:
        return "—"  # the measurement does not apply (encoding a GAN): absent, not zero
    text = f"{value * scale:,.{decimals}f}"
    if spread and key in entry["iqr"]:
        text += f" ±{entry['iqr'][key] * scale:,.{decimals}f}"
    return text


def format_table(document: dict[str, Any]) -> str:
    """The readable table of a bench document: a header on the device, one row per config,
    and a legend saying what each column measured."""
    env, settings = document["environment"], document["settings"]
    precision = settings["amp"] or "float32"
    extras = [flag for flag in ("channels_last", "compile") if settings[flag]]
    lines = [
        f"latentbench bench on {env['device']} ({env['device_name']}): torch {env['torch']}, "
        f"CUDA {env['cuda'] or '—'}, {env['threads']} thread{'s' * (env['threads'] != 1)}; batch "
        f"{'/'.join(map(str, settings['batch_size']))}, {precision}"
        f"{''.join(', ' + e.replace('_', '-') for e in extras)}; median ± IQR of "
        f"{settings['repeats']} calls after {settings['warmup']} warm-up",
    ]
    if env.get("peak_basis"):
        lines.append(f"CPU peak estimate: {env['peak_basis']}")
    rows = [["config", *(c[0] for c in _COLUMNS)]]
    rows += [[entry["config"], *(_cell(entry, *c[1:]) for c in _COLUMNS)]
             for entry in document["configs"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    peak = env.get("peak_flop_s")
    for entry in document["configs"]:
        flop_s = entry["metrics"].get("train_flop_s")
        facts = [f"training at {flop_s / peak:.0%} of the CPU peak estimate"] if (
            peak and flop_s) else []
        facts += [f"latency = {entry['latency_path']}", *entry["notes"]]
        lines.append(f"  {entry['config']}: {'; '.join(facts)}")
    lines.append(
        "train = forward + backward + optimiser step (the model's train_step); GFLOP/s = its "
        "FLOPs (FlopCounterMode: matmuls and convolutions) × img/s; MFLOP/img = one forward of "
        "the training loss; latency at batch 1; peak = memory the training steps add "
        f"({document['configs'][0]['memory_method'] if document['configs'] else ''}); "
        "— = does not apply")
    return "\n".join(lines)


# --- the command -----------------------------------------------------------------------------


def bench_options(args: argparse.Namespace) -> ThroughputOptions:
    """The :class:`ThroughputOptions` that the flags ask for.

    Raises:
        InputError: a bad ``--repeats``, ``--warmup`` or ``--amp``, naming the flag.
    """
    return ThroughputOptions(repeats=check_int(args.repeats, "--repeats", minimum=1),
                             warmup=check_int(args.warmup, "--warmup", minimum=1),
                             amp=check_amp(args.amp, "--amp"),
                             channels_last=args.channels_last, compile=args.compile)


def command_bench(args: argparse.Namespace) -> int:
    """Run ``latentbench bench`` on ``args.device`` (resolved by the CLI): print the table,
    write ``--json`` if given; exit code 0.

    Raises:
        InputError: unusable flags (see :func:`bench_options`, :func:`bench_targets`), or
            ``--compile`` and compilation failed.
    """
    options = bench_options(args)
    targets = bench_targets(args)
    try:
        document = run_bench(targets, args.device, options)
    except CompileFailed as err:
        raise InputError(f"--compile: {err.reason}; run without --compile") from None
    print(format_table(document))
    if args.json:
        write_json_atomic(Path(args.json), document)
        print(f"latentbench: wrote {args.json}")
    return 0


def add_bench_command(commands: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand to the CLI's subparsers."""
    bench = commands.add_parser(
        "bench", help="time training, encoding and decoding of models on random images",
        description="Throughput of one model (--model ...) or of each model of a suite "
                    "(--suite), on random images of the dataset's shape.")
    bench.add_argument("--suite", help="time each model of this suite (name or .toml path)")
    bench.add_argument("--model", help="registered model or package.module:Class (default vae)")
    bench.add_argument("--decoder", help="registered decoder (default transposed)")
    bench.add_argument("--encoder", help="registered encoder (default: what the decoder needs)")
    bench.add_argument("--latent-dim", type=int, help="latent size (default 16)")
    bench.add_argument("--width", type=int, help="channels of the first conv stage (default 32)")
    bench.add_argument("--hidden", type=int, help="units of the fully connected layer "
                                                  "(default 256)")
    bench.add_argument("--dataset", help="dataset whose image shape is used (default mnist5k, "
                                         "or the suite's)")
    bench.add_argument("--batch-size", type=int, help=f"images per call (default "
                                                      f"{DEFAULT_BATCH_SIZE}, or the suite's)")
    bench.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    bench.add_argument("--repeats", type=int, default=DEFAULT_OPTIONS.repeats,
                       help=f"timed calls (default {DEFAULT_OPTIONS.repeats})")
    bench.add_argument("--warmup", type=int, default=DEFAULT_OPTIONS.warmup,
                       help=f"untimed calls first (default {DEFAULT_OPTIONS.warmup})")
    bench.add_argument("--amp", help="mixed precision: bf16 or fp16 (torch.autocast; fp16 "
                                     "training with a GradScaler)")
    bench.add_argument("--channels-last", action="store_true",
                       help="weights and inputs in channels-last memory format")
    bench.add_argument("--compile", action="store_true",
                       help="torch.compile each submodule (on the CPU needs a C++ compiler)")
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    bench.set_defaults(handler=command_bench)


__all__ = ["BenchTarget", "add_bench_command", "bench_options", "bench_targets",
           "command_bench", "format_table", "run_bench"]
