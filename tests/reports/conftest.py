"""Benchmark output folders for the report tests, written by the harness's own writers.

Two configurations (a plain AE without β and a β-VAE) × two seeds, plus one failed run: real
:class:`RunConfig` objects, their run folders written through :class:`RunFolder` (config.json,
metrics.json, status), ``results.csv`` through :func:`write_results` and ``suite.json`` through
the sweep's :func:`write_suite_file`, so that a report test cannot pass on a layout the harness
does not write. Only the metric values and the PNG grids are made up.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from latentbench.benchmarks.config import EvalSpec, RunConfig, TrainSpec
from latentbench.benchmarks.data import DataSpec
from latentbench.benchmarks.results import write_results
from latentbench.benchmarks.run import RunOutcome
from latentbench.benchmarks.run_folder import RunFolder
from latentbench.benchmarks.storage import save_torch_atomic
from latentbench.benchmarks.sweep import write_suite_file
from latentbench.models import ModelSpec
from latentbench.reports.atomic import write_bytes_atomic
from latentbench.reports.schema import RESULTS_FILE, MetricsDocument, RunFiles

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


def write_run(root: Path, config: RunConfig, metrics: dict[str, float] | None,
              images: dict[str, bytes] | None = None, reason: str = "") -> RunOutcome:
    """One run folder as :func:`~latentbench.benchmarks.run.execute_run` leaves it: finished
    with ``metrics`` (and ``images``), or failed with ``reason`` when ``metrics`` is None."""
    folder = RunFolder(root, config.run_id)
    folder.prepare()
    folder.write_json(RunFiles.CONFIG, config.to_dict())
    if metrics is None:
        folder.write_status("failed", reason)
        return RunOutcome(config.run_id, "failed", reason)
    save_torch_atomic(folder.model, {"weight": torch.zeros(2)})
    samples = dict.fromkeys(metrics, 1000)
    # A standard error of 1 % of each value: small against the gaps between the fixture's
    # configurations, so that their best cells are clear.
    std_errors = {key: 0.01 * abs(value) for key, value in metrics.items()}
    folder.write_metrics(MetricsDocument(values=dict(metrics), samples=samples,
                                         std_errors=std_errors))
    for name, data in (images or {}).items():
        write_bytes_atomic(folder.file(name), data)
    folder.write_status("done")
    return RunOutcome(config.run_id, "done", metrics=dict(metrics), samples=samples,
                      std_errors=std_errors)


def run_config(suite: str, model: str, decoder: str, beta: float | None, seed: int,
               metrics: list[str]) -> RunConfig:
    return RunConfig(suite=suite, data=DataSpec(dataset="mnist5k"),
                     model=ModelSpec(name=model, decoder=decoder, latent_dim=16, beta=beta),
                     train=TrainSpec(epochs=2, batch_size=128, lr=1e-3),
                     eval=EvalSpec(metrics=metrics), seed=seed)


def write_out(root: Path, *, description: str = DESCRIPTION) -> FakeOut:
    """Write a benchmark output directory under ``root`` and return its ground truth."""
    fake = FakeOut(root=root, values=VALUES, directions=DIRECTIONS, failed_reason=FAILED_REASON)
    write_suite_file(root, SUITE, description)
    runs = []
    for index, key in enumerate([*VALUES, FAILED]):
        model, decoder, beta, seed = key
        config = run_config(SUITE, model, decoder, beta, seed, list(DIRECTIONS))
        if key == FAILED:
            fake.failed_run_id = config.run_id
            runs.append((config, write_run(root, config, None, reason=FAILED_REASON)))
            continue
        fake.run_ids[key] = config.run_id
        images = {
            RunFiles.RECONSTRUCTIONS: grid_png(2, 8, seed=100 + index),
            RunFiles.SAMPLES: grid_png(4, 8, seed=200 + index),
        }
        if index == 0:  # one run also has an extra grid
            images[RunFiles.INTERPOLATIONS] = grid_png(3, 8, seed=300)
        fake.images[config.run_id] = images
        runs.append((config, write_run(root, config, VALUES[key], images)))
    write_results(root / RESULTS_FILE, runs)
    return fake


@pytest.fixture
def fake_out(tmp_path: Path) -> FakeOut:
    """The standard fake output directory."""
    return write_out(tmp_path / "out")


@pytest.fixture
def make_out(tmp_path: Path) -> Callable[..., FakeOut]:
    """A factory of variants: ``make_out(description=...)``."""
    counter = iter(range(1_000))

    def make(**options: Any) -> FakeOut:
        return write_out(tmp_path / f"variant{next(counter)}", **options)

    return make


@pytest.fixture
def writers() -> SimpleNamespace:
    """The glue above, for test modules (a conftest is not importable under importlib mode)."""
    return SimpleNamespace(run_config=run_config, write_run=write_run,
                           write_suite_file=write_suite_file)


@pytest.fixture
def all_failed_out(tmp_path: Path) -> Path:
    """An output folder whose one run failed (out of memory)."""
    out = tmp_path / "failed"
    config = run_config("quick", "vae", "transposed", 1.0, 0, ["recon_mse"])
    write_results(out / RESULTS_FILE,
                  [(config, write_run(out, config, None, reason="CUDA out of memory"))])
    return out


@pytest.fixture
def sweep_for_latex(tmp_path: Path) -> Path:
    """A wide results table: three models × every metric of the fake output, plus fifteen more
    made-up metrics of one family, so that the family tables are split and scaled."""
    out = tmp_path / "wide"
    write_suite_file(out, "wide_suite", "many columns")
    runs = []
    for index, (model, beta) in enumerate([("ae", None), ("vae", 1.0), ("vae", 4.0)]):
        metrics = {**VALUES[("ae", "transposed", None, 0)],
                   **{f"fid[extractor_{i}]": 40.0 + i + index for i in range(15)}}
        config = run_config("wide_suite", model, "unpool-nearest", beta, 0, list(metrics))
        runs.append((config, write_run(out, config, metrics)))
    write_results(out / RESULTS_FILE, runs)
    return out


#: Decoders of the side-by-side fixture, in the (deliberately unsorted) order they first appear.
DECODERS = ("unpool-max", "transposed", "unpool-nearest")

#: (model, beta) -> does it reconstruct (have an encoder)? The GAN-like model does not.
DECODER_MODELS: dict[tuple[str, float | None], bool] = {
    ("ae", None): True,
    ("vae", 1.0): True,
    ("dcgan", None): False,
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
    write_suite_file(root, "decoders", "decoders side by side")
    runs = []
    index = 0
    for (model, beta), has_encoder in DECODER_MODELS.items():
        model_decoders = decoders if has_encoder else decoders[:gan_decoders]
        for decoder in model_decoders:
            for seed in seeds:
                index += 1
                key = (model, beta, decoder, seed)
                rng = np.random.default_rng(index)
                metrics = {"fid[lenet-mnist]": 20 + 30 * rng.random(),
                           "prior_coverage": rng.random()}
                if has_encoder:
                    metrics["recon_mse"] = 0.01 + 0.02 * rng.random()
                if decoder == decoders[0]:
                    metrics["checkerboard"] = rng.random()
                config = run_config("decoders", model, decoder, beta, seed, list(metrics))
                if key in failed:
                    reason = f"CUDA out of memory in run {index}"
                    fake.failed[key] = reason
                    runs.append((config, write_run(root, config, None, reason=reason)))
                    continue
                fake.run_ids[key] = config.run_id
                images = {RunFiles.SAMPLES: grid_png(3, 8, seed=1000 + index)}
                if has_encoder:
                    images[RunFiles.RECONSTRUCTIONS] = grid_png(2, 8, seed=2000 + index)
                fake.images[config.run_id] = images
                runs.append((config, write_run(root, config, metrics, images)))
    write_results(root / RESULTS_FILE, runs)
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


CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium driven by selenium through chromedriver (Debian's chromium and
    chromium-driver, which .ci/run installs); the test skips where they are missing."""
    if CHROMEDRIVER is None or CHROMIUM is None:
        pytest.skip("needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,3000",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
