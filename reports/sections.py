"""The report's analysis sections that read per-run artifacts: β trade-offs, disentanglement,
the latent space, decoder power spectra and the environment.

Each function returns what its template section needs, or an empty value when the results hold
nothing for it (no β sweep, no encoder, no ``spectrum.json``), so the section is left out.

This module reads results only; it never imports models, metrics or benchmarks.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentbench.reports.figures import FIGURE_WIDTH_PX
from latentbench.reports.plots_disentangle import (
    MIPanel,
    disentanglement_vs_reconstruction,
    mutual_information_heatmaps,
)
from latentbench.reports.plots_latent import LatentPanel, latent_scatter
from latentbench.reports.plots_spectrum import spectra_by_decoder
from latentbench.reports.plots_tradeoff import metrics_vs_beta, rate_distortion
from latentbench.reports.rundir import EmbeddedImage, embed_png, read_json, run_dir
from latentbench.reports.schema import CONFIG_COLUMNS, RunFiles, config_label

__all__ = ["beta_figures", "decoder_spectra", "disentanglement", "environment",
           "latent_space", "read_latents"]

#: What environment.json holds, in display order, with the label shown.
_ENVIRONMENT_FIELDS = (
    ("device", "device"),
    ("device_name", "device name"),
    ("python", "Python"),
    ("torch", "torch"),
    ("cuda", "CUDA"),
    ("platform", "platform"),
    ("latentbench", "latentbench"),
    ("git_commit", "git commit"),
)


def _figure(png: bytes | None, title: str, alt: str) -> EmbeddedImage | None:
    if png is None:
        return None
    return embed_png(png, title=title, alt=alt, target_width=FIGURE_WIDTH_PX, fit=True)


def _done(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"].eq("done") & results["metric"].notna()]


def _first_runs(results: pd.DataFrame) -> list[dict[str, Any]]:
    """The lowest-seed finished run of each configuration, in table order (by config)."""
    done = results[results["status"].eq("done")].drop_duplicates("run_id")
    done = done.sort_values([*CONFIG_COLUMNS, "seed"], na_position="last")
    return list(done.drop_duplicates(list(CONFIG_COLUMNS)).to_dict("records"))


def beta_figures(results: pd.DataFrame, directions: Mapping[str, object]) -> dict[str, Any]:
    """The rate–distortion plane and the metrics-against-β panels (each ``None`` if absent)."""
    done = _done(results)
    return {
        "rate_distortion": _figure(rate_distortion(done), "Rate–distortion plane",
                                   "Distortion against rate per run, one line per model"),
        "metrics_vs_beta": _figure(metrics_vs_beta(done, directions), "Metrics against β",
                                   "Each metric against β with seed error bars"),
    }


#: The results' family of the disentanglement scores (the metric registry's name for it).
DISENTANGLEMENT_FAMILY = "disentanglement"


def disentanglement(runs_dir: Path, results: pd.DataFrame,
                    directions: Mapping[str, object]) -> dict[str, Any]:
    """The disentanglement section, for results with disentanglement scores (data with
    ground-truth factors): the scores against β, against reconstruction, and for each
    configuration's lowest seed its factor-labelled traversals and factor × latent information.

    Returns:
        ``{}`` when no finished run has a disentanglement score; else ``vs_beta``,
        ``tradeoff`` and ``heatmaps`` (:class:`EmbeddedImage` or ``None``), ``tradeoff_axis``
        (the reconstruction metric drawn) and ``traversals`` (``[EmbeddedImage]``).
    """
    done = _done(results)
    scores = done[done["family"].eq(DISENTANGLEMENT_FAMILY)]
    if scores.empty:
        return {}
    tradeoff = disentanglement_vs_reconstruction(done)
    panels: list[MIPanel] = []
    traversals: list[EmbeddedImage] = []
    for record in _first_runs(scores):
        directory = run_dir(runs_dir, str(record["run_id"]))
        if directory is None:
            continue
        label = config_label(record, with_seed=True)
        details = (read_json(directory / RunFiles.METRICS) or {}).get("details", {})
        panel = MIPanel.from_mig_details(label, details.get("mig") or {})
        if panel is not None:
            panels.append(panel)
        path = directory / RunFiles.TRAVERSALS
        if path.is_file():
            captions = read_json(directory / RunFiles.IMAGES) or {}
            image = embed_png(path.read_bytes(), title=label,
                              caption=str(captions.get(RunFiles.TRAVERSALS, "")),
                              alt=f"Latent traversals of {label}, labelled with factors",
                              target_width=420)
            if image is not None:
                traversals.append(image)
    return {
        "vs_beta": _figure(metrics_vs_beta(scores, directions), "Disentanglement against β",
                           "Each disentanglement score against β with seed error bars"),
        "tradeoff": _figure(tradeoff[0] if tradeoff else None,
                            "Disentanglement against reconstruction",
                            "Disentanglement scores against reconstruction error per run"),
        "tradeoff_axis": tradeoff[1] if tradeoff else None,
        "heatmaps": _figure(mutual_information_heatmaps(panels),
                            "Which latent holds which factor",
                            "Normalised mutual information between each factor and latent"),
        "traversals": traversals,
    }


def read_latents(path: Path) -> dict[str, np.ndarray] | None:
    """A run's ``latents.npz`` as arrays by name, or ``None`` when missing or damaged."""
    try:
        # The file is user data: never unpickle it.
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError):
        return None


def latent_space(runs_dir: Path, results: pd.DataFrame) -> dict[str, Any]:
    """A class-coloured scatter of each configuration's codes and the decoded 2-d grids.

    Returns:
        ``{"scatter": EmbeddedImage | None, "grids": [EmbeddedImage]}``; both empty when no run
        wrote ``latents.npz``.
    """
    panels: list[LatentPanel] = []
    grids: list[EmbeddedImage] = []
    for record in _first_runs(results):
        directory = run_dir(runs_dir, str(record["run_id"]))
        if directory is None:
            continue
        latents = read_latents(directory / RunFiles.LATENTS)
        label = config_label(record, with_seed=True)
        if latents is not None and "mean" in latents and latents["mean"].ndim == 2:
            projected = "pca" in latents and latents["mean"].shape[1] > 2
            points = latents["pca"] if projected else latents["mean"][:, :2]
            ratio = latents.get("explained_variance_ratio")
            panels.append(LatentPanel(
                title=label + (" · PCA" if projected else ""),
                points=np.asarray(points, float),
                labels=latents.get("labels"),
                explained=tuple(float(v) for v in ratio[:2]) if projected and ratio is not None
                else None,
            ))
        grid = directory / RunFiles.LATENT_GRID
        if grid.is_file():
            captions = read_json(directory / RunFiles.IMAGES) or {}
            image = embed_png(grid.read_bytes(), title=label,
                              caption=str(captions.get(RunFiles.LATENT_GRID, "")),
                              alt=f"Decoded latent grid for {label}", target_width=420)
            if image is not None:
                grids.append(image)
    scatter = _figure(latent_scatter(panels), "Latent space",
                      "Posterior means of test images coloured by class, per configuration")
    return {"scatter": scatter, "grids": grids}


def decoder_spectra(runs_dir: Path, results: pd.DataFrame) -> EmbeddedImage | None:
    """Power spectra of samples vs data, one panel per configuration without its decoder."""
    panels: dict[str, dict[str, dict[str, Any]]] = {}
    decoders: list[str] = []
    for record in _first_runs(results):
        directory = run_dir(runs_dir, str(record["run_id"]))
        spectrum = read_json(directory / RunFiles.SPECTRUM) if directory else None
        if not spectrum or not {"frequency", "samples", "data"} <= spectrum.keys():
            continue
        label = config_label(record, with_decoder=False)
        panels.setdefault(label, {})[str(record["decoder"])] = spectrum
        decoders.append(str(record["decoder"]))
    decoders = list(dict.fromkeys(decoders))
    return _figure(spectra_by_decoder(panels, decoders), "Power spectra",
                   "Azimuthally averaged power spectrum of samples per decoder and of test images")


def environment(runs_dir: Path, results: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, value) pairs from the first run's ``environment.json`` (every run writes one)."""
    found = None
    for run_id in pd.unique(results["run_id"].dropna().astype(str)):
        directory = run_dir(runs_dir, run_id)
        found = read_json(directory / RunFiles.ENVIRONMENT) if directory else None
        if found:
            break
    if not found:
        return []
    return [(label, str(found[key])) for key, label in _ENVIRONMENT_FIELDS
            if found.get(key) not in (None, "")]
