"""Validation of the feature matrices that the feature-space metrics (KID, PRDC) take."""

from __future__ import annotations

import numpy as np
import torch


def feature_matrix(name: str, value: np.ndarray | torch.Tensor,
                   device: torch.device | None = None, min_rows: int = 1) -> torch.Tensor:
    """``value`` as a float64 ``[N, d]`` tensor on ``device``, checked.

    Raises:
        ValueError: not 2-D, fewer than ``min_rows`` rows, or non-finite entries; the message
            names the argument.
    """
    if isinstance(value, torch.Tensor):
        value = value.detach()
    else:
        value = torch.as_tensor(np.asarray(value))
    value = value.to(dtype=torch.float64, device=device)
    if value.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [N, d] array of features, got shape "
                         f"{tuple(value.shape)}")
    if len(value) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {len(value)}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} has NaN or infinite entries")
    return value
