"""Per-run artifacts of the report: latents, traversals, latent grid and power spectrum."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from latentbench.benchmarks.artifacts import power_spectrum, write_latent_artifacts
from latentbench.models import build_model
from latentbench.models.protocol import ModelSpec


def test_spectrum_of_a_pure_frequency_peaks_there() -> None:
    x = torch.arange(32, dtype=torch.float64)
    wave = torch.cos(2 * torch.pi * 8 * x / 32).expand(32, 32)  # 8 cycles across the width
    frequency, power = power_spectrum(wave[None, None].float())
    assert frequency[-1] == 0.5 and frequency[np.argmax(power)] == 0.25


def test_artifacts_are_written_fast(tmp_path: Path) -> None:
    images = torch.rand(300, 1, 28, 28)
    labels = torch.randint(0, 10, (300,))
    for name, dim in (("vae", 2), ("ae", 6)):
        model = build_model(ModelSpec(name=name, latent_dim=dim), (1, 28, 28)).eval()
        out = tmp_path / f"{name}{dim}"
        out.mkdir()
        started = time.perf_counter()
        captions = write_latent_artifacts(model, images, labels, model.sample(64), 256, out)
        elapsed = time.perf_counter() - started
        with np.load(out / "latents.npz") as latents:
            assert latents["mean"].shape == (300, dim)
            assert (latents["labels"] == labels.numpy()).all()
            assert ("pca" in latents.files) == (dim > 2)
        assert ("latent_grid.png" in captions) == (dim == 2)
        spectrum = json.loads((out / "spectrum.json").read_text())
        assert len(spectrum["samples"]) == len(spectrum["data"]) == 15
        if name == "ae":  # imports paid by the first model
            assert elapsed < 1.0
