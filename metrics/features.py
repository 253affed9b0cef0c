"""Feature extractors: the networks whose feature space FID, KID and PRDC are measured in.

An extractor maps images to one feature vector each. Its :attr:`~FeatureExtractor.name` goes into
metric keys (``fid[lenet-mnist]``), so a score never travels without the space it was measured
in, and its :attr:`~FeatureExtractor.weights_sha256` goes into the cache key of real-data feature
statistics, so new weights never meet stale statistics.

Extractors come from :data:`FEATURES` (registered builders: ``lenet-mnist``, ``inception-v3``)
or from a plug-in name ``"package.module:Attr"`` naming any ``nn.Module`` (see
:func:`load_extractor`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentbench.models.protocol import module_device
from latentbench.models.registry import InputError, Registry, import_attribute


@dataclass(frozen=True)
class FeatureOptions:
    """What a registered extractor may need besides its name (the ``[eval]`` settings).

    Attributes:
        inception_weights: path of the ``pt_inception-2015-12-05-6726825d.pth`` file for
            ``inception-v3``; ``None``: the ``LATENTBENCH_INCEPTION_WEIGHTS`` environment
            variable, else a download if ``download`` is set.
        download: let an extractor fetch missing weights from the internet.
    """

    inception_weights: str | None = None
    download: bool = False


class FeatureExtractor(nn.Module):
    """Base class of every extractor: images in [0, 1] → float32 features ``[B, dim]``.

    Subclasses implement :meth:`extract`; :meth:`forward` checks the input, moves it to the
    extractor's device and runs :meth:`extract` without autograd. An extractor is always in eval
    mode (``train()`` is a no-op): features must not depend on the batch they arrive in, which
    BatchNorm or dropout in training mode would make them do.

    Attributes:
        name: the name in metric keys: the registered name, or the plug-in string as given.
        dim: feature dimension ``d``.
        weights_sha256: hex digest identifying the weights (a weights file's sha256, or a hash
            of the state_dict for a wrapped module).
    """

    def __init__(self, name: str, dim: int, weights_sha256: str) -> None:
        super().__init__()
        self.name = name
        self.dim = dim
        self.weights_sha256 = weights_sha256

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)

    @property
    def device(self) -> torch.device:
        """Where the extractor's weights live (CPU for a module without any)."""
        return module_device(self)

    def forward(self, images: Tensor) -> Tensor:
        """Features of a batch.

        Args:
            images: float ``[B, C, H, W]`` with values in [0, 1], ``C`` 1 or 3, any ``H``, ``W``
                the network can take after its own resizing.

        Returns:
            float32 ``[B, dim]`` on :attr:`device`.

        Raises:
            ValueError: ``images`` is not a float ``[B, 1|3, H, W]`` tensor, or the network
                returned a shape other than ``[B, dim]``.
        """
        check_images(images)
        with torch.no_grad():
            features = self.extract(images.to(self.device, torch.float32)).flatten(1)
        if features.shape != (len(images), self.dim):
            raise ValueError(f"feature extractor {self.name!r} returned shape "
                             f"{tuple(features.shape)}, expected ({len(images)}, {self.dim})")
        return features.float()

    def extract(self, images: Tensor) -> Tensor:
        """The network itself: checked float32 images on :attr:`device` → ``[B, dim]``."""
        raise NotImplementedError


def check_images(images: Tensor) -> None:
    """Raise ``ValueError`` unless ``images`` is a float ``[B, C, H, W]`` tensor with C 1 or 3."""
    if not isinstance(images, Tensor) or not images.is_floating_point() or images.ndim != 4:
        got = (f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor)
               else type(images).__name__)
        raise ValueError(f"images must be a float [B, C, H, W] tensor, got {got}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]}")


def adapt_images(images: Tensor, channels: int, size: tuple[int, int]) -> Tensor:
    """``images`` with ``channels`` channels and spatial ``size``, as a network expects them.

    Grey → colour repeats the channel; colour → grey averages the three. Resizing is bilinear
    with ``align_corners=False`` and no antialiasing, the legacy FID convention, so features of
    upsampled small images match the reference implementations.
    """
    if images.shape[1] != channels:
        images = images.repeat(1, 3, 1, 1) if channels == 3 else images.mean(1, keepdim=True)
    if tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False,
                               antialias=False)
    return images


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks (weights files are ~100 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 over a module's class and its ``state_dict`` (key, dtype, shape, bytes; key order).

    The class name is hashed too, so that two parameter-free modules doing different things do
    not share a digest (and thereby cached real-data statistics).
    """
    digest = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for key, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"\0{key}\0{flat.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _ModuleExtractor(FeatureExtractor):
    """A user's ``nn.Module`` as an extractor; it receives the images as given."""

    def __init__(self, name: str, module: nn.Module, dim: int) -> None:
        super().__init__(name, dim, state_dict_sha256(module))
        self.module = module
        self.eval()

    def extract(self, images: Tensor) -> Tensor:
        return self.module(images)


def wrap_module(name: str, module: nn.Module, dim: int | None = None,
                example_shape: tuple[int, int, int] = (1, 28, 28)) -> FeatureExtractor:
    """Turn any ``nn.Module`` into a :class:`FeatureExtractor`.

    Args:
        name: the extractor's name in metric keys.
        module: maps float ``[B, C, H, W]`` images in [0, 1] (C 1 or 3, passed on unchanged, so
            it must adapt them itself) to ``[B, d]`` (or ``[B, d, 1, 1]``, flattened) features.
        dim: ``d``; ``None``: the module's own ``dim`` attribute if it has one, else found by a
            forward pass on two black images of ``example_shape``.
        example_shape: ``(C, H, W)`` of the images of that forward pass.

    Returns:
        The extractor, in eval mode; ``weights_sha256`` is :func:`state_dict_sha256`.

    Raises:
        InputError: ``module`` is not an ``nn.Module``, or the forward pass fails or does not
            return one feature vector per image.
    """
    if not isinstance(module, nn.Module):
        raise InputError(f"eval.features: {name!r} is not a torch.nn.Module class or instance "
                         f"(got {type(module).__name__})")
    dim = dim if dim is not None else getattr(module, "dim", None)
    if dim is None:
        dim = _probe_dim(name, module.eval(), example_shape)
    return _ModuleExtractor(name, module, int(dim))


def _probe_dim(name: str, module: nn.Module, example_shape: tuple[int, int, int]) -> int:
    device = next((t.device for t in (*module.parameters(), *module.buffers())), None)
    example = torch.zeros((2, *example_shape), device=device)
    try:
        with torch.no_grad():
            out = module(example)
    except Exception as err:
        raise InputError(f"eval.features: {name!r} failed on a batch of shape "
                         f"{tuple(example.shape)} ({type(err).__name__}: {err}); give it a `dim` "
                         f"attribute or make it accept any [B, 1|3, H, W] images") from None
    if not isinstance(out, Tensor) or out.ndim < 2 or len(out) != 2:
        raise InputError(f"eval.features: {name!r} must return a [B, d] tensor of features")
    return out.flatten(1).shape[1]


Builder = Callable[[FeatureOptions], FeatureExtractor]
FEATURES: Registry[Builder] = Registry("feature extractor", "eval.features")


def load_extractor(name: str, options: FeatureOptions | None = None) -> FeatureExtractor:
    """The extractor called ``name``.

    Args:
        name: a registered name (``latentbench list features``), or ``"package.module:Attr"``
            naming an ``nn.Module`` class (instantiated without arguments) or instance (used as
            is); see :func:`wrap_module` for what such a module must do.
        options: settings of the registered builders (Inception weights, downloads).

    Raises:
        InputError: unknown name, unimportable plug-in, or a plug-in that is no ``nn.Module``;
            the message lists the registered names.
    """
    options = options or FeatureOptions()
    if name in FEATURES:
        return FEATURES.get(name)(options)
    if ":" not in name:
        raise InputError(f"eval.features: unknown feature extractor {name!r}"
                         f"{FEATURES.did_you_mean(name)}; choose one of: "
                         f"{', '.join(FEATURES)}, or a plug-in 'package.module:Attr'")
    obj = import_attribute(name, "eval.features")
    if isinstance(obj, type) and issubclass(obj, nn.Module):
        obj = obj()
    return wrap_module(name, obj)
