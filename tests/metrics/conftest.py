"""Shared test models of the metric tests."""

import pytest
import torch
from torch import nn

from latentbench.models.protocol import LatentModel


class Replay(LatentModel):
    """'Generates' the given images in order: a perfect model of a set, or a copier of one."""

    capabilities = frozenset({"sample"})
    latent_dim = 1

    def __init__(self, images):
        super().__init__()
        self.images, self.cursor = images, 0
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device

    def sample(self, n, generator=None):
        out = self.images[self.cursor:self.cursor + n]
        self.cursor += n
        return out

    def decode(self, z):
        raise NotImplementedError

    def loss(self, x):
        raise NotImplementedError


@pytest.fixture(scope="session")  # a class, no state: module fixtures may use it too
def replay():
    """``replay(images)``: a model whose samples are ``images``, in order."""
    return Replay


def _oracle_codes(sizes: tuple[int, ...], n: int = 900) -> dict:
    """Representations of ``n`` factor draws (seed 0) whose scores are known: the factors
    themselves, a rotation of the standardised factors, noise, and the factors with the
    first one duplicated."""
    import numpy as np

    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    truth = factors.astype(float)
    q, _ = np.linalg.qr(rng.standard_normal((len(sizes), len(sizes))))
    return {"factors": factors, "truth": truth,
            "rotation": (truth - truth.mean(0)) / truth.std(0) @ q,
            "noise": rng.standard_normal((n, len(sizes))),
            "duplicate": np.concatenate([truth, truth[:, :1]], axis=1)}


@pytest.fixture(scope="session")
def factor_oracle():
    """``factor_oracle(sizes)``: the oracle representations of the DCI and SAP tests."""
    return _oracle_codes
