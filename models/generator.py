"""Models that only generate: a plug-in with just ``sample(n, generator)``, and a fixed sequence
of images (a file of samples, the real-data reference).

A GAN or diffusion sampler trained elsewhere is scored on the sample metrics (FID, KID,
precision/recall, density/coverage, checkerboard, data copying) without an encoder, a decoder
of codes or a loss: subclass :class:`GeneratorModel` and implement :meth:`sample`. It has the
capability ``"sample"`` only, so every metric that needs ``encode``, ``variational`` or
``decode`` is absent for it, and latentbench never trains it (``train.epochs = 0``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentbench.models.protocol import LatentModel, LossTerms, ModelSpec

__all__ = ["GeneratorModel", "ImageSequence"]


class GeneratorModel(LatentModel):
    """Base class of generator-only models: implement :meth:`sample`, nothing else.

    ``sample(n, generator)`` returns ``n`` images ``[n, C, H, W]``, float in [0, 1], on
    :attr:`device` (the device of the model's parameters or buffers; the CPU for a model with
    none), drawing its randomness from ``generator`` (a CPU ``torch.Generator`` seeded by the
    evaluation) so that a seed gives the same samples. The evaluation calls it in batches of
    ``eval.batch_size`` until it has ``eval.fake_samples`` images (default: as many as the test
    set).

    A plug-in is built as every plug-in is: ``Class.from_spec(spec, image_shape)`` when it
    defines that, else ``Class(spec, image_shape)``; its settings come from
    ``[model.options]``, and ``[model] weights`` loads a ``state_dict`` into it.

    Example:
        >>> import torch
        >>> class Noise(GeneratorModel):
        ...     def __init__(self, spec, image_shape):
        ...         super().__init__()
        ...         self.image_shape = image_shape
        ...     def sample(self, n, generator=None):
        ...         return torch.rand(n, *self.image_shape, generator=generator)
        >>> Noise(ModelSpec(), (1, 4, 4)).sample(2).shape
        torch.Size([2, 1, 4, 4])
    """

    capabilities = frozenset({"sample"})
    trained_here = False
    latent_dim = 0
    sampling = "drawn by the model's own sampler (a generator-only model)"
    summary = "generator-only plug-in base class: implement sample(n, generator)"

    @classmethod
    def identity(cls, spec: ModelSpec) -> dict[str, Any]:
        """No decoder or latent size of latentbench's: both shown as –."""
        return {"decoder": None, "latent_dim": None}

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement sample(n, generator)")

    def decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} generates images only: no decoder "
                                  f"of latent codes")

    def loss(self, x: Tensor) -> LossTerms:
        raise NotImplementedError(f"{type(self).__name__} is scored as loaded, not trained")


class ImageSequence(GeneratorModel):
    """A "model" whose samples are fixed images, handed out in order.

    Each :meth:`sample` call returns the next ``n`` images of ``images``; after the last one
    it starts again from the first, so an evaluation that asks for at most ``len(images)``
    sees each image once, and the report's sample grid drawn after it shows the first ones.
    The ``generator`` is ignored: the images are what they are.

    Args:
        images: float32 ``[N, C, H, W]`` in [0, 1].
        sampling: how the images came about, for the report's caption.
    """

    def __init__(self, images: Tensor, sampling: str) -> None:
        super().__init__()
        if images.dim() != 4 or len(images) == 0:
            raise ValueError(f"images: expected a non-empty [N, C, H, W] tensor, got "
                             f"{list(images.shape)}")
        self.images, self.cursor, self.sampling = images, 0, sampling

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        taken = []
        while n > 0:
            part = self.images[self.cursor:self.cursor + n]
            taken.append(part)
            n -= len(part)
            self.cursor = (self.cursor + len(part)) % len(self.images)
        return torch.cat(taken).to(self.device)
