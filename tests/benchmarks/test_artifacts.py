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


def test_prior_json_holds_the_prior_and_its_normalised_density_for_2d_codes(tmp_path: Path):
    """Every VAE writes prior.json; with 2 latents it holds log p(z) on a grid that spans the
    codes and the prior's draws, so the density integrates to ~1 over it (a Riemann sum: the
    widened 0.5–99.5 % box of a smooth 2-d density holds all but ~1 % of its mass)."""
    images = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for prior, dim in (("normal", 2), ("mog", 2), ("flow", 3)):
        torch.manual_seed(0)
        model = build_model(ModelSpec(name="vae", latent_dim=dim, width=4, hidden=16,
                                      prior=prior), (1, 28, 28)).eval()
        out = tmp_path / prior
        out.mkdir()
        captions = write_latent_artifacts(model, images, None, None, 256, out)
        document = json.loads((out / "prior.json").read_text())
        assert document["prior"] == prior and document["latent_dim"] == dim
        assert document["label"] == model.prior.describe()
        assert ("density" in document) == (dim == 2)
        if dim == 2:
            density = document["density"]
            z1, z2 = np.array(density["z1"]), np.array(density["z2"])
            mass = np.exp(np.array(density["log_prob"])).sum() * np.diff(z1)[0] * np.diff(z2)[0]
            assert 0.98 < mass < 1.01
            # The decoded grid steps through this prior's quantiles, not N(0, 1)'s.
            assert ("prior's marginals" in captions["latent_grid.png"]) == (prior == "mog")
    ae = build_model(ModelSpec(name="ae", latent_dim=2, width=4, hidden=16), (1, 28, 28)).eval()
    (tmp_path / "ae").mkdir()
    write_latent_artifacts(ae, images, None, None, 256, tmp_path / "ae")
    assert not (tmp_path / "ae" / "prior.json").exists()  # no prior, no file
