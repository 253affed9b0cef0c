"""A realistic fake benchmark output directory for the report tests.

Two configurations (a plain AE without β and a β-VAE) × two seeds, plus one failed run, laid
out as the harness writes them (ARCHITECTURE.md, "Run directory"): ``results.csv`` in long
format and ``runs/<run-id>/`` with ``config.json``, ``metrics.json``, ``status`` and PNG grids.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

SUITE = "beta-sweep"
DESCRIPTION = "AE vs β-VAE on the embedded MNIST subset"

#: metric -> higher_is_better. Chosen so that the best row differs by direction: the AE wins
#: the lower-is-better recon_mse, the VAE wins the higher-is-better prior_coverage.
DIRECTIONS = {"recon_mse": False, "fid[lenet-mnist]": False, "prior_coverage": True}

#: (model, decoder, beta, seed) -> metric values.
VALUES: dict[tuple[str, str, float | None, int], dict[str, float]] = {
    ("ae", "transposed", None, 0): {
        "recon_mse": 0.0102,
        "fid[lenet-mnist]": 41.3,
        "prior_coverage": 0.31,
    },
    ("ae", "transposed", None, 1): {
        "recon_mse": 0.0118,
        "fid[lenet-mnist]": 44.9,
        "prior_coverage": 0.36,
    },
    ("vae", "unpool", 4.0, 0): {
        "recon_mse": 0.0231,
        "fid[lenet-mnist]": 25.2,
        "prior_coverage": 0.83,
    },
    ("vae", "unpool", 4.0, 1): {
        "recon_mse": 0.0245,
        "fid[lenet-mnist]": 27.8,
        "prior_coverage": 0.88,
    },
}
FAILED = ("vae", "unpool", 8.0, 0)
FAILED_REASON = "non-finite loss at epoch 3 (NaN guard)"


@dataclass
class FakeOut:
    """Paths and ground truth of a fake output directory."""

    root: Path
    values: dict[tuple[str, str, float | None, int], dict[str, float]]
    directions: dict[str, bool]
    failed_reason: str
    run_ids: dict[tuple[str, str, float | None, int], str] = field(default_factory=dict)
    failed_run_id: str = ""
    # run id -> {file name: exact PNG bytes written}
    images: dict[str, dict[str, bytes]] = field(default_factory=dict)


def grid_png(rows: int, cols: int, seed: int, size: int = 28) -> bytes:
    """A small grayscale image grid with blobs in each cell, as PNG bytes."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (cols * size, rows * size), 0)
    draw = ImageDraw.Draw(image)
    for r in range(rows):
        for c in range(cols):
            x, y = c * size + rng.integers(4, 10), r * size + rng.integers(4, 10)
            w, h = rng.integers(8, 16), rng.integers(10, 16)
            draw.ellipse((x, y, x + w, y + h), outline=255, width=2)
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_out(
    root: Path,
    *,
    description: str = DESCRIPTION,
    suite_as_table: bool = True,
    reason_in_csv: bool = True,
) -> FakeOut:
    """Write a fake benchmark output directory under ``root`` and return its ground truth."""
    fake = FakeOut(root=root, values=VALUES, directions=DIRECTIONS, failed_reason=FAILED_REASON)
    rows = []
    configs = [*VALUES, FAILED]
    for index, (model, decoder, beta, seed) in enumerate(configs):
        run_id = f"{model}{index:02d}{seed}a7"
        run_dir = root / "runs" / run_id
        run_dir.mkdir(parents=True)
        suite = {"name": SUITE, "description": description} if suite_as_table else SUITE
        config = {
            "suite": suite,
            "data": {"dataset": "mnist5k"},
            "model": {"name": model, "decoder": decoder, "latent_dim": 16, "beta": beta},
            "train": {"epochs": 2, "batch_size": 128, "lr": 1e-3},
            "eval": {"metrics": list(DIRECTIONS)},
            "seed": seed,
        }
        if not suite_as_table:
            config["description"] = description
        (run_dir / "config.json").write_text(json.dumps(config))
        base = {
            "run_id": run_id,
            "suite": SUITE,
            "dataset": "mnist5k",
            "model": model,
            "decoder": decoder,
            "beta": beta,
            "latent_dim": 16,
            "seed": seed,
        }
        key = (model, decoder, beta, seed)
        if key == FAILED:
            fake.failed_run_id = run_id
            (run_dir / "status").write_text(f"failed: {FAILED_REASON}\n")
            rows.append(
                {
                    **base,
                    "metric": "",
                    "value": np.nan,
                    "higher_is_better": "",
                    "status": "failed",
                    "reason": FAILED_REASON if reason_in_csv else "",
                }
            )
            continue
        fake.run_ids[key] = run_id
        metrics = VALUES[key]
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        (run_dir / "status").write_text("done\n")
        images = {
            "reconstructions.png": grid_png(2, 8, seed=100 + index),
            "samples.png": grid_png(4, 8, seed=200 + index),
        }
        if index == 0:  # one run also has an extra grid, as later harness versions will
            images["interpolations.png"] = grid_png(3, 8, seed=300)
        for name, data in images.items():
            (run_dir / name).write_bytes(data)
        (run_dir / "model.pt").write_bytes(b"not a real checkpoint")
        fake.images[run_id] = images
        rows += [
            {
                **base,
                "metric": metric,
                "value": value,
                "higher_is_better": DIRECTIONS[metric],
                "status": "done",
                "reason": "",
            }
            for metric, value in metrics.items()
        ]
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return fake


@pytest.fixture
def fake_out(tmp_path: Path) -> FakeOut:
    """The standard fake output directory."""
    return write_out(tmp_path / "out")


@pytest.fixture
def make_out(tmp_path: Path) -> Callable[..., FakeOut]:
    """A factory of variants: ``make_out(description=..., suite_as_table=..., ...)``."""
    counter = iter(range(1_000))

    def make(**options: Any) -> FakeOut:
        return write_out(tmp_path / f"variant{next(counter)}", **options)

    return make


#: Decoders of the side-by-side fixture, in the (deliberately unsorted) order they first appear.
DECODERS = ("unpool-max", "transposed", "unpool-nearest")

#: (model, beta) -> does it reconstruct (have an encoder)? The GAN-like model does not.
DECODER_MODELS: dict[tuple[str, float | None], bool] = {
    ("ae", None): True,
    ("vae", 1.0): True,
    ("gan", None): False,
}


@dataclass
class DecoderOut:
    """Ground truth of a fake output directory that compares decoders."""

    root: Path
    decoders: tuple[str, ...]
    #: (model, beta, decoder, seed) -> run id, finished runs only.
    run_ids: dict[tuple[str, float | None, str, int], str] = field(default_factory=dict)
    #: run id -> {file name: exact PNG bytes}.
    images: dict[str, dict[str, bytes]] = field(default_factory=dict)
    failed: dict[tuple[str, float | None, str, int], str] = field(default_factory=dict)


def write_decoder_out(
    root: Path,
    *,
    decoders: tuple[str, ...] = DECODERS,
    seeds: tuple[int, ...] = (1, 0),
    failed: tuple[tuple[str, float | None, str, int], ...] = (),
    gan_decoders: int = 2,
) -> DecoderOut:
    """Write AE and VAE × ``decoders`` × ``seeds`` plus a GAN-like model (no encoder, no
    reconstructions, its first ``gan_decoders`` decoders only) in long format.

    Seeds are written in the given order (seed 1 first by default) so that a report which
    shows "the first finished seed" has to pick the lowest, not the first row. Every run also
    measures ``checkerboard`` with the first decoder only: a metric no chart should draw.
    """
    fake = DecoderOut(root=root, decoders=decoders)
    rows = []
    index = 0
    for (model, beta), has_encoder in DECODER_MODELS.items():
        model_decoders = decoders if has_encoder else decoders[:gan_decoders]
        for decoder in model_decoders:
            for seed in seeds:
                index += 1
                key = (model, beta, decoder, seed)
                run_id = f"{model}-{index:03d}"
                run_dir = root / "runs" / run_id
                run_dir.mkdir(parents=True)
                config = {
                    "suite": {"name": "decoders", "description": "decoders side by side"},
                    "data": {"dataset": "mnist5k"},
                    "model": {"name": model, "decoder": decoder, "latent_dim": 16, "beta": beta},
                    "seed": seed,
                }
                (run_dir / "config.json").write_text(json.dumps(config))
                base = {
                    "run_id": run_id,
                    "suite": "decoders",
                    "dataset": "mnist5k",
                    "model": model,
                    "decoder": decoder,
                    "beta": beta,
                    "latent_dim": 16,
                    "seed": seed,
                }
                if key in failed:
                    reason = f"CUDA out of memory in {run_id}"
                    fake.failed[key] = reason
                    (run_dir / "status").write_text(f"failed: {reason}\n")
                    rows.append(
                        {**base, "metric": "", "value": np.nan, "higher_is_better": ""}
                        | {"status": "failed", "reason": reason}
                    )
                    continue
                fake.run_ids[key] = run_id
                (run_dir / "status").write_text("done\n")
                images = {"samples.png": grid_png(3, 8, seed=1000 + index)}
                if has_encoder:
                    images["reconstructions.png"] = grid_png(2, 8, seed=2000 + index)
                for name, data in images.items():
                    (run_dir / name).write_bytes(data)
                fake.images[run_id] = images
                rng = np.random.default_rng(index)
                metrics = {"fid[lenet-mnist]": (False, 20 + 30 * rng.random())}
                metrics["prior_coverage"] = (True, rng.random())
                if has_encoder:
                    metrics["recon_mse"] = (False, 0.01 + 0.02 * rng.random())
                if decoder == decoders[0]:
                    metrics["checkerboard"] = (False, rng.random())
                (run_dir / "metrics.json").write_text(
                    json.dumps({name: value for name, (_, value) in metrics.items()})
                )
                rows += [
                    {**base, "metric": name, "value": value, "higher_is_better": higher}
                    | {"status": "done", "reason": ""}
                    for name, (higher, value) in metrics.items()
                ]
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return fake


@pytest.fixture
def make_decoder_out(tmp_path: Path) -> Callable[..., DecoderOut]:
    """A factory of decoder-comparison output directories: ``make_decoder_out(decoders=...)``."""
    counter = iter(range(1_000))

    def make(**options: Any) -> DecoderOut:
        return write_decoder_out(tmp_path / f"decoders{next(counter)}", **options)

    return make


@pytest.fixture(scope="module")
def decoder_out(tmp_path_factory: pytest.TempPathFactory) -> DecoderOut:
    """The standard decoder comparison, written once per test module (tests only read it)."""
    return write_decoder_out(tmp_path_factory.mktemp("decoders") / "out")
