"""LeNet: a small domain classifier whose penultimate layer is the feature space of small images.

Inception-v3 features mean little for 28×28 grey digits; the usual feature space for such data is
a classifier trained on the domain itself. ``lenet-mnist`` ships trained (4,000 mnist5k training
digits, 97.8 % on the 1,000 test digits; retrain with ``python -m
latentbench.benchmarks.train_lenet_mnist``); ``latentbench features train DATASET`` trains one for
any other dataset.

The features are the 128 pre-ReLU penultimate activations, *standardised* with the per-feature
mean and standard deviation of the network's own training split (docs/metrics.md, "Samples").
Raw, they have a std of ≈ 6 per unit and a norm of ≈ 100, which puts KID's cubic kernel (xᵀy/d + 1)³
at ~1e4 where Inception features give 1e-3–1e-1, and makes FID depend on how a retrain happened
to scale its units. The statistics live in the weights file, so a file's features are fixed by
its bytes (and by its sha256, which keys the real-feature and reference caches).

A weights file is ``torch.save`` of a plain dict, loadable with ``weights_only=True``::

    {"state_dict": ..., "input_shape": [C, H, W], "classes": K, "architecture": 2,
     "feature_mean": float64 [128], "feature_std": float64 [128], ...metadata}
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentbench.metrics.features import (
    FEATURES,
    FeatureExtractor,
    FeatureOptions,
    adapt_images,
    check_images,
)

# Bump when the layers or the checkpoint layout change: files of another version are never
# loaded. 2: the training split's feature mean and std stored beside the weights.
ARCHITECTURE_VERSION = 2
FEATURE_DIM = 128
# The checkpoint's own keys; metadata may not use them.
_RESERVED_KEYS = frozenset({"state_dict", "input_shape", "classes", "architecture",
                            "feature_mean", "feature_std"})
# Images per forward pass of the training-split statistics: fixed, so that their bits are.
_STATISTICS_BATCH = 500

LENET_MNIST_FILE = "lenet-mnist.pt"
# sha256 of the shipped weights file; `python -m latentbench.benchmarks.train_lenet_mnist` prints
# the digest of a retrained file. Bytes are reproducible with one thread on one torch build; a
# different CPU or torch version may round differently and needs this constant updated.
LENET_MNIST_SHA256 = "90afb95d7b377bda66ce35f842fd390c24ebe55d5f7f2d46f844977afcd99e51"


@dataclass(frozen=True)
class LeNetTraining:
    """How a LeNet is trained (these settings are part of the cache key of trained weights).

    Attributes:
        seed: seeds the initial weights and the batch order.
        epochs: passes over the training images.
        batch_size: images per Adam step.
        lr: Adam learning rate.
    """

    seed: int = 0
    epochs: int = 15
    batch_size: int = 32
    lr: float = 1e-3


# The recipe of the shipped lenet-mnist weights (mnist5k train split, 4,000 digits).
LENET_MNIST_TRAINING = LeNetTraining()


class LeNet(nn.Module):
    """conv5-ReLU-pool2-conv5-ReLU-pool2-avgpool(4)-Linear(1024→128) | ReLU-Linear(128→K).

    The two unpadded 5×5 convolutions and pools bring 28 px to 4×4 exactly; the adaptive pool
    makes 32 or 64 px (or anything from 16 px) land on the same 64·4·4 = 1024 inputs.

    Args:
        input_shape: ``(C, H, W)`` of the training images (C 1 or 3); kept so that an extractor
            can bring other images to it.
        classes: number of classes ``K``.
    """

    def __init__(self, input_shape: tuple[int, int, int], classes: int) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.classes = classes
        self.body = nn.Sequential(
            nn.Conv2d(input_shape[0], 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(1024, FEATURE_DIM),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(FEATURE_DIM, classes))

    def features(self, images: Tensor) -> Tensor:
        """The 128-d activations *before* the ReLU, ``[B, 128]``.

        After the ReLU, units are exactly zero on many images and some on all of them (48 of 128
        on every mnist5k test digit for ``lenet-mnist``), which leaves the feature covariance
        singular: FID then needs a slower route and PRDC distances lose directions. The
        pre-activations are an affine map of 1,024 inputs and their covariance is full rank.
        """
        return self.body(images)

    def forward(self, images: Tensor) -> Tensor:
        """Class logits ``[B, K]``."""
        return self.head(self.body(images))


def _check_labelled(images: Tensor, labels: Tensor) -> None:
    if images.ndim != 4 or not images.is_floating_point() or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be float [N, 1|3, H, W], got {tuple(images.shape)} "
                         f"{images.dtype}")
    if labels.shape != (len(images),) or labels.dtype != torch.int64:
        raise ValueError(f"labels must be int64 [{len(images)}], got {tuple(labels.shape)} "
                         f"{labels.dtype}")


def train_lenet(images: Tensor, labels: Tensor, *, seed: int, epochs: int, batch_size: int,
                lr: float) -> LeNet:
    """Train a :class:`LeNet` classifier with Adam and cross-entropy, on the CPU.

    Deterministic: the same inputs, settings and torch thread count give the same weights bit
    for bit. The caller's global RNG is left untouched.

    Args:
        images: float32 ``[N, C, H, W]`` in [0, 1], C 1 or 3.
        labels: int64 ``[N]`` class indices; the number of classes is ``max + 1``.
        seed: seeds the initial weights and the batch order.
        epochs, batch_size, lr: see :class:`LeNetTraining`.

    Returns:
        The trained network, in eval mode, on the CPU.

    Raises:
        ValueError: badly shaped inputs or non-positive settings.
    """
    _check_labelled(images, labels)
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"epochs, batch_size and lr must be positive, got {epochs}, "
                         f"{batch_size}, {lr}")
    images, labels = images.cpu().float(), labels.cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = LeNet(tuple(images.shape[1:]), int(labels.max()) + 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    # Batch order from our own generator: reproducible whatever else draws random numbers.
    order_rng = torch.Generator().manual_seed(seed)

    net.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=order_rng).split(batch_size):
            loss = F.cross_entropy(net(images[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Fraction of ``images`` whose arg-max logit is the label.

    Args:
        model: a classifier ``[B, C, H, W] → [B, K]`` logits (put in eval mode here).
        images: float ``[N, C, H, W]`` as the model takes them.
        labels: int64 ``[N]``.
        batch_size: images per forward pass.
    """
    _check_labelled(images, labels)
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        correct = sum(int((model(x.to(device)).argmax(1).cpu() == y).sum())
                      for x, y in zip(images.split(batch_size), labels.split(batch_size),
                                      strict=True))
    return correct / len(images)


def feature_statistics(net: LeNet, images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-feature mean and standard deviation of ``net``'s raw (pre-ReLU) features on
    ``images``: the standardisation a weights file stores, computed on its training split.

    The features are computed in eval mode, in batches of 500 on the network's device, and
    reduced in float64; the std has the N − 1 normaliser. A feature that is constant over the
    images (std 0) gets std 1: it is centred but not scaled, rather than divided by zero.

    Args:
        net: the trained network.
        images: float ``[N, C, H, W]`` in the network's input shape, N ≥ 2.

    Returns:
        float64 ``(mean, std)``, each ``[128]``, on the CPU.
    """
    if images.ndim != 4 or not images.is_floating_point() or len(images) < 2:
        raise ValueError(f"images must be float [N ≥ 2, C, H, W], got {tuple(images.shape)} "
                         f"{images.dtype}")
    net.eval()
    device = next(net.parameters()).device
    with torch.no_grad():
        features = torch.cat([net.features(x.to(device)).double().cpu()
                              for x in images.split(_STATISTICS_BATCH)])
    std = features.std(0)
    return features.mean(0), torch.where(std > 0, std, torch.ones_like(std))


def lenet_checkpoint(net: LeNet, feature_mean: Tensor, feature_std: Tensor,
                     **metadata: Any) -> bytes:
    """The bytes of a weights file: ``torch.save`` of the state_dict, shape, classes, the
    feature standardisation and the metadata.

    Serialised to memory, not to a path: torch names the archive inside after the file, so
    saving to a path would make the digest depend on the file's name.

    Args:
        net: the trained network.
        feature_mean, feature_std: ``[128]`` statistics of its raw features on its training
            split (:func:`feature_statistics`); stored as float64. The std must be positive.
        **metadata: plain values (numbers, strings, lists, dicts) to store beside the weights,
            such as the training settings and test accuracy.

    Raises:
        ValueError: statistics of the wrong shape, non-finite, or a std that is not positive;
            a metadata key that is one of the checkpoint's own.
    """
    mean, std = _check_statistics(feature_mean, feature_std, "feature statistics")
    clash = _RESERVED_KEYS & set(metadata)
    if clash:
        raise ValueError(f"metadata may not use the checkpoint's keys {sorted(clash)}")
    buffer = io.BytesIO()
    torch.save({"state_dict": net.state_dict(), "input_shape": list(net.input_shape),
                "classes": net.classes, "architecture": ARCHITECTURE_VERSION,
                "feature_mean": mean, "feature_std": std, **metadata}, buffer)
    return buffer.getvalue()


def _check_statistics(mean: Any, std: Any, what: str) -> tuple[Tensor, Tensor]:
    """``mean`` and ``std`` as contiguous float64 CPU tensors ``[128]``, else ``ValueError``."""
    for name, value in (("mean", mean), ("std", std)):
        if not isinstance(value, Tensor) or value.shape != (FEATURE_DIM,):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{what}: feature {name} must be a [{FEATURE_DIM}] tensor, got {got}")
    mean, std = mean.detach().cpu().double().contiguous(), std.detach().cpu().double().contiguous()
    if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
        raise ValueError(f"{what}: the feature mean must be finite and the std finite and > 0")
    return mean, std


class LeNetExtractor(FeatureExtractor):
    """Features of a trained :class:`LeNet`: its 128-d pre-ReLU penultimate layer, standardised
    per feature, (f − μ) / σ, with the mean and std of its training split.

    Images are brought to the training shape first: 3 → 1 channel by the mean, 1 → 3 by
    repetition, and bilinear resizing (no antialiasing) to the training size.

    Args:
        name: the name in metric keys (``lenet-mnist``).
        net: the trained network.
        weights_sha256: sha256 of the weights file it was loaded from.
        feature_mean, feature_std: ``[128]`` statistics of the raw features on the training
            split (:func:`feature_statistics`); kept as float32 buffers :attr:`feature_mean`
            and :attr:`feature_std`, which move with the extractor.
        metadata: what the file stores beside the weights (dataset, training settings, test
            accuracy), as :attr:`metadata`.
    """

    feature_mean: Tensor
    feature_std: Tensor

    def __init__(self, name: str, net: LeNet, weights_sha256: str, feature_mean: Tensor,
                 feature_std: Tensor, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(name, FEATURE_DIM, weights_sha256)
        mean, std = _check_statistics(feature_mean, feature_std, name)
        self.net = net
        self.register_buffer("feature_mean", mean.float())
        self.register_buffer("feature_std", std.float())
        self.metadata = dict(metadata or {})
        self.eval()

    def raw_features(self, images: Tensor) -> Tensor:
        """Like calling the extractor, but the pre-ReLU features as the network gives them,
        unstandardised: float32 ``[B, 128]`` on :attr:`device`."""
        check_images(images)
        with torch.no_grad():
            return self._raw(images.to(self.device, torch.float32)).float()

    def _raw(self, images: Tensor) -> Tensor:
        channels, height, width = self.net.input_shape
        return self.net.features(adapt_images(images, channels, (height, width)))

    def extract(self, images: Tensor) -> Tensor:
        return (self._raw(images) - self.feature_mean) / self.feature_std


class WeightsMismatchError(RuntimeError):
    """A weights file whose sha256 is not the one expected (corrupt or replaced)."""


def load_lenet(path: Path, name: str, expected_sha256: str | None = None) -> LeNetExtractor:
    """A :class:`LeNetExtractor` from a weights file written from :func:`lenet_checkpoint`.

    The file is read once, so the bytes whose digest is checked are the bytes loaded.

    Args:
        path: the weights file.
        name: the extractor's name in metric keys.
        expected_sha256: if given, the file's sha256 must equal it.

    Raises:
        WeightsMismatchError: the file's sha256 is not ``expected_sha256``.
        ValueError: the file is not a LeNet checkpoint of this architecture version (an older
            file lacks the feature statistics), or its statistics are unusable.
    """
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise WeightsMismatchError(
            f"{path}: sha256 {digest} is not the expected {expected_sha256}; the file is "
            f"corrupt or was replaced (reinstall latentbench, or retrain it)")
    checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("architecture") != ARCHITECTURE_VERSION:
        raise ValueError(f"{path}: not a LeNet checkpoint of architecture version "
                         f"{ARCHITECTURE_VERSION}")
    net = LeNet(tuple(checkpoint["input_shape"]), int(checkpoint["classes"]))
    net.load_state_dict(checkpoint.pop("state_dict"))
    mean, std = checkpoint.pop("feature_mean", None), checkpoint.pop("feature_std", None)
    return LeNetExtractor(name, net.eval(), digest, *_check_statistics(mean, std, str(path)),
                          metadata=checkpoint)


def shipped_weights(file_name: str) -> Path:
    """Path of a weights file installed with the package (``latentbench/metrics/weights``)."""
    return Path(str(resources.files("latentbench.metrics").joinpath("weights", file_name)))


@FEATURES.register("lenet-mnist")
def build_lenet_mnist(options: FeatureOptions) -> LeNetExtractor:
    """LeNet on mnist5k digits (97.8 % test accuracy), 128-d standardised pre-ReLU features."""
    return load_lenet(shipped_weights(LENET_MNIST_FILE), "lenet-mnist",
                      expected_sha256=LENET_MNIST_SHA256)
