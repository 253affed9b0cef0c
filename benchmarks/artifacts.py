"""Per-run files the report draws from: the image grids of :func:`write_images`, and
``latents.npz`` (posterior means of test images with their class labels and, for codes wider
than two, a 2-d PCA projection), ``traversals.png`` (one latent dimension varied per row),
``latent_grid.png`` (a decoded grid over a 2-d latent plane), ``prior.json`` (the model's
prior and, for 2-d codes, its log-density on a grid) and ``spectrum.json`` (the
azimuthally averaged power spectrum of samples and of test images, Durall et al. 2020, "Watch
your up-convolution"). All are cheap (well under a second on a CPU for MNIST-sized models)
because the report is rebuilt from them without touching a model.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from latentbench.benchmarks.config import EvalSpec
from latentbench.metrics import EvalContext
from latentbench.metrics.interpolation import interpolation_strips
from latentbench.models.priors import Prior, StandardNormal
from latentbench.models.protocol import LatentModel
from latentbench.reports.atomic import write_bytes_atomic, write_json_atomic
from latentbench.reports.schema import RunFiles

__all__ = ["LATENT_IMAGES", "png_grid", "power_spectrum", "write_images", "write_latent_artifacts"]

#: At most this many test images are encoded for ``latents.npz``: enough for a scatter plot.
LATENT_IMAGES = 2000
#: Traversal steps from −3σ to +3σ (odd, so the middle column is the unmodified code).
TRAVERSAL_STEPS = 7
#: Rows of ``traversals.png``: wider codes show their most-used dimensions only.
TRAVERSAL_ROWS = 16
#: Points per side of ``latent_grid.png``.
GRID_SIDE = 15
#: Images each power spectrum averages over.
SPECTRUM_IMAGES = 256
#: Prior draws behind the quantiles of a learned prior's latent grid and the extent of its
#: density grid.
PRIOR_DRAWS = 20_000
#: Points per side of the prior's log-density grid in ``prior.json`` (2-d codes).
DENSITY_SIDE = 101


def power_spectrum(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthally averaged power spectrum of images, averaged over the images.

    For each image (channels averaged to grey, mean removed so the DC term does not dwarf the
    rest) ``P(u, v) = |F(u, v)|² / (H·W)``; ``P`` is averaged over the ring of integer radius
    ``r = round(√(u² + v²))`` around the centre of the shifted spectrum, for
    ``r = 0 … min(H, W)/2``, then over images.

    Args:
        images: ``[N, C, H, W]`` in [0, 1], ``N ≥ 1``.

    Returns:
        ``(frequency, power)``: frequencies in cycles per pixel (``r / min(H, W)``, up to the
        Nyquist frequency 0.5) and the mean power at each, float64 arrays of equal length.
    """
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be [N, C, H, W] with N ≥ 1, got {tuple(images.shape)}")
    grey = images.detach().double().cpu().mean(dim=1)
    grey = grey - grey.mean(dim=(1, 2), keepdim=True)
    height, width = grey.shape[-2:]
    power = torch.fft.fftshift(torch.fft.fft2(grey).abs() ** 2, dim=(-2, -1)) / (height * width)
    power = power.mean(dim=0).numpy()
    v, u = np.indices((height, width))
    radius = np.rint(np.hypot(u - width // 2, v - height // 2)).astype(int).ravel()
    limit = min(height, width) // 2
    sums = np.bincount(radius, weights=power.ravel())[: limit + 1]
    counts = np.bincount(radius)[: limit + 1]
    return np.arange(limit + 1) / min(height, width), sums / np.maximum(counts, 1)


def _encode_means(model: LatentModel, images: torch.Tensor, batch_size: int) -> np.ndarray:
    means = [model.encode(images[i : i + batch_size].to(model.device)).mean.double().cpu()
             for i in range(0, len(images), batch_size)]
    return torch.cat(means).numpy()


def _decode(model: LatentModel, codes: np.ndarray) -> torch.Tensor:
    z = torch.as_tensor(codes, dtype=torch.float32, device=model.device)
    return torch.sigmoid(model.decode(z)).cpu()


def _labelled_grid(images: torch.Tensor, nrow: int, labels: list[str]) -> bytes:
    """A grid PNG with a text label left of each row (the margin fits the longest label)."""
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    grid = make_grid(images.float().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    pixels = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    tile = images.shape[-2] + 2
    margin = max(40, 8 + 6 * max(map(len, labels), default=0))  # PIL's default font: ~6 px
    canvas = Image.new("RGB", (pixels.shape[1] + margin, pixels.shape[0]), "white")
    canvas.paste(Image.fromarray(pixels), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for row, label in enumerate(labels):
        draw.text((4, row * tile + tile // 2 - 5), label, fill="black")
    buffer = io.BytesIO()
    canvas.save(buffer, format="png")
    return buffer.getvalue()


#: A latent is labelled with a factor only when it holds at least this fraction of the
#: factor's entropy (normalised mutual information); below it the row says "-".
FACTOR_LABEL_MIN_MI = 0.05


def factor_labels(mi_matrix: np.ndarray, entropies: np.ndarray,
                  names: list[str]) -> dict[int, str]:
    """The factor each latent captures best, by normalised mutual information: latent j gets
    ``"<factor> <I(z_j; v_k)/H(v_k)>"`` for its ``k`` of largest ratio (``mi_matrix`` ``[d, K]``
    and ``entropies`` ``[K]`` in nats, as ``mig`` records them), or ``"-"`` when no ratio
    reaches :data:`FACTOR_LABEL_MIN_MI`."""
    ratio = np.asarray(mi_matrix, float) / np.maximum(np.asarray(entropies, float), 1e-12)
    labels = {}
    for j, row in enumerate(ratio):
        k = int(np.argmax(row))
        labels[j] = f"{names[k]} {row[k]:.2f}" if row[k] >= FACTOR_LABEL_MIN_MI else "-"
    return labels


def _traversals(model: LatentModel, means: np.ndarray,
                latent_labels: dict[int, str] | None = None) -> tuple[bytes, str]:
    spread = means.std(axis=0)
    # The most-spread dimensions carry the information; collapsed ones show identical columns.
    dims = np.sort(np.argsort(-spread, kind="stable")[:TRAVERSAL_ROWS])
    steps = np.linspace(-3.0, 3.0, TRAVERSAL_STEPS)
    codes = np.repeat(means[:1], len(dims) * TRAVERSAL_STEPS, axis=0)
    for row, dim in enumerate(dims):
        codes[row * TRAVERSAL_STEPS : (row + 1) * TRAVERSAL_STEPS, dim] += steps * spread[dim]
    names = [f"z{d}" + (f" {latent_labels[d]}" if latent_labels and d in latent_labels else "")
             for d in dims]
    png = _labelled_grid(_decode(model, codes), TRAVERSAL_STEPS, names)
    shown = ("every dimension" if len(dims) == means.shape[1]
             else f"the {len(dims)} of {means.shape[1]} dimensions with the largest spread")
    caption = (f"row zk: dimension k of the first test image's code moved from −3σ to +3σ in "
               f"{TRAVERSAL_STEPS} steps (σ: that dimension's standard deviation over the test "
               f"codes); {shown}")
    if latent_labels:
        caption += (f"; beside zk the factor it captures best and I(zk; factor) / H(factor) "
                    f"(“-”: below {FACTOR_LABEL_MIN_MI} for every factor)")
    return png, caption


def _latent_grid(model: LatentModel, means: np.ndarray) -> tuple[bytes, str]:
    prior = getattr(model, "prior", None)
    levels = np.linspace(0.05, 0.95, GRID_SIDE)
    if isinstance(prior, Prior) and not isinstance(prior, StandardNormal):
        # Equal-probability steps of the prior's marginals, from its draws: a learned prior has
        # no closed-form quantiles, and a grid over N(0, 1)'s would miss where it puts its mass.
        draws = prior.sample(PRIOR_DRAWS, torch.Generator().manual_seed(0)).double().cpu()
        span = [np.quantile(draws[:, d].numpy(), levels) for d in (0, 1)]
        where = (f"quantiles 5 %–95 % of the prior's marginals ({prior.describe()}; "
                 f"{PRIOR_DRAWS:,} draws) on each axis")
    elif "variational" in model.capabilities:
        from scipy.stats import norm

        # Equal-probability steps of the N(0, I) prior, as in Kingma & Welling's Fig. 4.
        axis = norm.ppf(levels)
        span = [axis, axis]
        where = "prior quantiles 5 %–95 % of N(0, 1) on each axis"
    else:
        # An AE has no prior: cover the range its codes actually occupy.
        span = [np.linspace(*np.percentile(means[:, d], [1, 99]), GRID_SIDE) for d in (0, 1)]
        where = "1st–99th percentile of the test codes on each axis"
    z1, z2 = np.meshgrid(span[0], span[1][::-1])  # z2 grows upwards, as on a plot
    codes = np.stack([z1.ravel(), z2.ravel()], axis=1)
    caption = (f"{GRID_SIDE}×{GRID_SIDE} codes decoded: z1 left→right, z2 bottom→top, "
               f"{where}")
    return png_grid(_decode(model, codes), nrow=GRID_SIDE, padding=1), caption


def prior_document(prior: Prior, means: np.ndarray) -> dict[str, object]:
    """``prior.json``: which prior the model has (``prior``: its ``model.prior`` name,
    ``label``: :meth:`Prior.describe`, ``latent_dim``) and, for 2-d codes, its log-density on a
    :data:`DENSITY_SIDE`² grid (``density``: axes ``z1``, ``z2`` and ``log_prob[i][j]`` at
    ``(z1[j], z2[i])``) spanning the 0.5–99.5 % range of the test codes ``means`` and of
    prior draws, widened by a fifth: the report draws it as contours under the codes."""
    document: dict[str, object] = {"prior": prior.registry_name, "label": prior.describe(),
                                   "latent_dim": prior.latent_dim}
    if prior.latent_dim == 2:
        draws = prior.sample(PRIOR_DRAWS, torch.Generator().manual_seed(0)).double().cpu()
        points = np.concatenate([means, draws.numpy()])
        low, high = np.percentile(points, [0.5, 99.5], axis=0)
        pad = 0.2 * (high - low)
        axes = [np.linspace(low[d] - pad[d], high[d] + pad[d], DENSITY_SIDE) for d in (0, 1)]
        z1, z2 = np.meshgrid(*axes)
        codes = torch.as_tensor(np.stack([z1.ravel(), z2.ravel()], axis=1))
        log_prob = prior.log_prob(prior.cast(codes)).double().cpu().numpy()
        document["density"] = {"z1": axes[0].tolist(), "z2": axes[1].tolist(),
                               "log_prob": log_prob.reshape(z1.shape).tolist()}
    return document


@torch.no_grad()
def write_latent_artifacts(model: LatentModel, test_images: torch.Tensor,
                           test_labels: torch.Tensor | None, samples: torch.Tensor | None,
                           batch_size: int, run_dir: Path,
                           latent_labels: dict[int, str] | None = None) -> dict[str, str]:
    """Write the latent-space files and the power spectrum of a trained model into ``run_dir``.

    Args:
        model: The trained model, in eval mode.
        test_images: ``[N, C, H, W]`` test images in [0, 1].
        test_labels: ``[N]`` class labels of ``test_images`` (stored beside the codes for the
            report's coloured scatter), or ``None`` if the dataset has none.
        samples: Images the model sampled (``None`` for a model that does not sample): their
            spectrum is compared with the test images'.
        batch_size: Encoding batch size.
        run_dir: The run directory.
        latent_labels: text beside latent ``j``'s traversal row (:func:`factor_labels`), or
            ``None``.

    Returns:
        Captions of the PNGs written, by file name (for ``images.json``).
    """
    captions: dict[str, str] = {}
    if "encode" in model.capabilities:
        images = test_images[:LATENT_IMAGES]
        means = _encode_means(model, images, batch_size)
        arrays: dict[str, np.ndarray] = {"mean": means.astype(np.float32)}
        if test_labels is not None:
            arrays["labels"] = test_labels[: len(images)].cpu().numpy().astype(np.int64)
        if means.shape[1] > 2:
            from sklearn.decomposition import PCA

            pca = PCA(n_components=2, random_state=0).fit(means)
            arrays["pca"] = pca.transform(means).astype(np.float32)
            arrays["explained_variance_ratio"] = pca.explained_variance_ratio_
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        write_bytes_atomic(run_dir / RunFiles.LATENTS, buffer.getvalue())
        png, captions[RunFiles.TRAVERSALS] = _traversals(model, means, latent_labels)
        write_bytes_atomic(run_dir / RunFiles.TRAVERSALS, png)
        if means.shape[1] == 2:
            png, captions[RunFiles.LATENT_GRID] = _latent_grid(model, means)
            write_bytes_atomic(run_dir / RunFiles.LATENT_GRID, png)
        prior = getattr(model, "prior", None)
        if isinstance(prior, Prior):
            # Every model with a prior component says which (the report compares priors).
            write_json_atomic(run_dir / RunFiles.PRIOR, prior_document(prior, means))
    if samples is not None:
        frequency, sample_power = power_spectrum(samples[:SPECTRUM_IMAGES])
        _, data_power = power_spectrum(test_images[:SPECTRUM_IMAGES])
        write_json_atomic(run_dir / RunFiles.SPECTRUM, {
            "frequency": frequency.tolist(), "samples": sample_power.tolist(),
            "data": data_power.tolist(), "n_samples": min(len(samples), SPECTRUM_IMAGES),
            "n_data": min(len(test_images), SPECTRUM_IMAGES),
            "unit": "frequency in cycles/pixel; power: mean |FFT|²/(H·W) of grey, mean-removed "
                    "images over rings of equal radius"})
    return captions


def png_grid(images: torch.Tensor, nrow: int, padding: int = 2) -> bytes:
    """PNG bytes of ``images`` (``[N, C, H, W]`` in [0, 1]) tiled ``nrow`` to a row on white."""
    # Imported here: torchvision takes ~2 s to import, which every CLI call would otherwise pay.
    from torchvision.utils import make_grid, save_image

    buffer = io.BytesIO()
    save_image(make_grid(images.float().cpu().clamp(0, 1), nrow=nrow, padding=padding,
                         pad_value=1.0), buffer, format="png")
    return buffer.getvalue()


def write_interpolations(model: LatentModel, test_images: torch.Tensor, spec: EvalSpec,
                         seed: int, run_dir: Path, written: dict[str, str]) -> None:
    """``interpolations.png``: one latent path per row, its caption added to ``written``."""
    strips = interpolation_strips(EvalContext(model, test_images, test_images, spec.batch_size,
                                              seed, settings=spec), rows=spec.grid_images)
    write_bytes_atomic(run_dir / RunFiles.INTERPOLATIONS, png_grid(strips, nrow=spec.interp_steps))
    side_channel = getattr(model, "side_channel", None)
    if "encode" not in model.capabilities:
        ends = "two latent draws"
    elif side_channel:  # the path decodes codes alone, so its ends are not reconstructions
        ends = ("the codes of two test images, decoded without the encoder's side channel "
                f"({side_channel})")
    else:
        ends = "the reconstructions of two test images"
    written[RunFiles.INTERPOLATIONS] = (f"each row: {spec.interp_steps} decodes along a "
                                     f"{spec.interp_path} path between {ends}")


@torch.no_grad()
def write_images(model: LatentModel, test_images: torch.Tensor, spec: EvalSpec, seed: int,
                 run_dir: Path, test_labels: torch.Tensor | None = None,
                 latent_labels: dict[int, str] | None = None) -> dict[str, str]:
    """Write ``reconstructions.png`` (inputs above their reconstructions) for models with an
    encoder, ``samples.png`` (prior samples) for models that sample, ``interpolations.png``
    (one latent path per row), the latent-space files and power spectrum of
    :func:`write_latent_artifacts` (``test_labels`` colour the latent scatter,
    ``latent_labels`` name the traversal rows) and ``images.json`` with a caption for each PNG;
    return the captions."""
    model.eval()
    side_channel = getattr(model, "side_channel", None)
    written: dict[str, str] = {}
    samples = None
    if "encode" in model.capabilities:
        inputs = test_images[: spec.grid_images].to(model.device)
        grid = torch.cat([inputs, model.reconstruct(inputs)])
        write_bytes_atomic(run_dir / RunFiles.RECONSTRUCTIONS, png_grid(grid, nrow=len(inputs)))
        written[RunFiles.RECONSTRUCTIONS] = "top row: test inputs; row below: their reconstructions"
        if side_channel:
            written[RunFiles.RECONSTRUCTIONS] += f" ({side_channel}: not a bottleneck's)"
    if "sample" in model.capabilities:
        samples = model.sample(spec.samples, generator=torch.Generator().manual_seed(seed))
        nrow = max(1, round(spec.samples**0.5))
        write_bytes_atomic(run_dir / RunFiles.SAMPLES, png_grid(samples, nrow=nrow))
        written[RunFiles.SAMPLES] = model.sampling
    if "decode" in model.capabilities:  # a generator-only model has no latent paths
        write_interpolations(model, test_images, spec, seed, run_dir, written)
    written.update(write_latent_artifacts(model, test_images, test_labels, samples,
                                          spec.batch_size, run_dir, latent_labels))
    write_json_atomic(run_dir / RunFiles.IMAGES, written)
    return written
