"""``lines``: the ACAI synthetic lines benchmark (Berthelot et al. 2019, ``brain-research/acai``).

Each image is 32×32×1 and shows one 2-px anti-aliased line of length 15 px that starts at the
image centre and points at angle θ ~ U[0, 2π). The angle is the single ground-truth factor, so a
good interpolation between two lines is a line rotating from one angle to the other (see the
"Interpolation" section of docs/metrics.md).

Two pixel conventions meet here:

* :func:`draw_lines` renders in the ACAI convention, background −1 and ink +1, exactly as the
  reference ``lib/data.py`` ``draw_line`` does. It lives in
  :mod:`latentbench.metrics.line_images`, so that the ACAI scores draw their true lines with the
  very renderer that drew the data; this module re-exports it.
* The registered dataset stores ``(x + 1) / 2`` in [0, 1], like every other dataset of the suite.
  Metric code that compares with ACAI numbers maps back with :func:`lines_to_acai`.

The coordinates (θ counter-clockwise as seen on screen, θ = 0 pointing right) are those of
:mod:`latentbench.metrics.line_images`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from latentbench.benchmarks.data.registry import DATASETS, DataSpec, ImageData, generated_dataset

# Also the public `latentbench.benchmarks.data.draw_lines`, re-exported through this module.
from latentbench.metrics.line_images import draw_lines

N_CLASSES = 10
DEFAULT_N_TRAIN = 8192
DEFAULT_N_TEST = 2048


def lines_to_acai(images01: torch.Tensor) -> torch.Tensor:
    """Map stored ``lines`` images from [0, 1] back to the ACAI convention [−1, 1]: ``2x − 1``."""
    return images01 * 2.0 - 1.0


def angle_labels(theta: np.ndarray) -> np.ndarray:
    """ACAI class labels ``⌊10θ / 2π⌋`` as int64 in 0…9 (θ in [0, 2π)).

    The reference divides by ``2π − 1e-6`` to keep θ → 2π out of class 10; clipping does the
    same without shifting the bin edges.
    """
    bins = np.floor(theta * (N_CLASSES / (2.0 * math.pi))).astype(np.int64)
    return np.clip(bins, 0, N_CLASSES - 1)


def _split(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` lines from ``rng``: images in [0, 1], labels, and θ as a ``[n, 1]`` factor."""
    # random(n) draws doubles one after another, so the first k of n equal a draw of k: a
    # smaller n_train is a prefix of the default split.
    theta = rng.random(n) * (2.0 * math.pi)
    images = draw_lines(theta).add_(1.0).mul_(0.5)
    labels = torch.from_numpy(angle_labels(theta))
    factors = torch.from_numpy(theta.astype(np.float32)).unsqueeze(1)
    return images, labels, factors


@DATASETS.register("lines")
def load_lines(spec: DataSpec) -> ImageData:
    """The ACAI lines dataset, generated from ``spec.seed``.

    θ ~ U[0, 2π) from ``numpy.random.Generator``; train and test use two independent child
    streams of ``SeedSequence(spec.seed)``, so they do not overlap and one does not depend on
    the other's size.

    Args:
        spec: ``n_train`` / ``n_test`` (default 8192 / 2048) images are drawn; ``seed`` fixes
            them. ``root``, ``download`` and ``channels`` are ignored.

    Returns:
        ``ImageData`` with 1×32×32 images in [0, 1] (``(x + 1) / 2`` of :func:`draw_lines`,
        whose output is in [−1, 1]; use :func:`lines_to_acai` to map back), int64 labels
        ``⌊10θ/2π⌋`` in 0…9, and float32 factors ``[N, 1]`` = θ in radians named ``("angle",)``.
    """
    return generated_dataset(spec, "lines", _split, ("angle",), DEFAULT_N_TRAIN, DEFAULT_N_TEST)
