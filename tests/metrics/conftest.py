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
