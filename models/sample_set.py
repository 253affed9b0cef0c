"""``samples``: a file or folder of images generated elsewhere, scored as a model's samples.

``latentbench score SAMPLES --dataset D`` builds a one-run suite with ``model.name =
"samples"`` and ``model.options.path = SAMPLES``; a suite can name it too. Accepted:

- a ``.npy``, ``.npz`` (one array, or one named ``samples`` or ``images``) or ``.pt`` file
  (a tensor, loaded with ``weights_only=True``) of shape ``[N, C, H, W]`` — ``uint8`` in
  0–255, or floating point in [0, 1];
- a folder of ``.png``/``.jpg``/``.jpeg`` images (greyscale for a 1-channel dataset, RGB for a
  3-channel one), read in file-name order.

The images must have the dataset's channels, height and width: nothing is resized, since a
resize changes the features every sample metric is computed on (torch-fidelity refuses
mismatched sizes for the same reason).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from latentbench.models.generator import ImageSequence
from latentbench.models.protocol import ModelSpec
from latentbench.models.registry import InputError
from latentbench.models.zoo import MODELS

__all__ = ["IMAGE_SUFFIXES", "TENSOR_SUFFIXES", "SampleSet", "read_samples"]

TENSOR_SUFFIXES = (".npy", ".npz", ".pt")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_FIELD = "model.options.path"
#: Image modes PIL reads as the dataset's channels: greyscale or RGB, nothing converted.
_MODES = {1: ("L",), 3: ("RGB",)}


def _array_from_file(path: Path) -> Any:
    """The array or tensor stored in a ``.npy``, ``.npz`` or ``.pt`` file."""
    try:
        if path.suffix == ".pt":
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(loaded, dict) and len(loaded) == 1:
                (loaded,) = loaded.values()
            if not isinstance(loaded, Tensor):
                raise InputError(f"{_FIELD}: {path} holds a {type(loaded).__name__}, not a "
                                 f"tensor [N, C, H, W]")
            return loaded
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as loaded:
            names = list(loaded.files)
            chosen = [n for n in names if n in ("samples", "images")] or names
            if len(chosen) != 1:
                raise InputError(f"{_FIELD}: {path} holds arrays {', '.join(names) or 'none'}; "
                                 f"give one array, or name it 'samples'")
            return loaded[chosen[0]]
    except InputError:
        raise
    except Exception as err:  # numpy and torch raise many kinds for a damaged file
        raise InputError(f"{_FIELD}: cannot read {path} ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:160]})") from None


def _images_from_folder(folder: Path, channels: int) -> np.ndarray:
    """The folder's PNG/JPEG images, in file-name order, as uint8 ``[N, C, H, W]``."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{_FIELD}: {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    arrays = []
    for file in files:
        try:
            with Image.open(file) as image:
                image.load()
        except (OSError, UnidentifiedImageError) as err:
            raise InputError(f"{_FIELD}: cannot read image {file} ({err})") from None
        if image.mode not in _MODES.get(channels, ()):
            raise InputError(f"{_FIELD}: {file} is a {image.mode!r} image; the dataset has "
                             f"{channels} channel(s), so give {' or '.join(_MODES[channels])} "
                             f"images")
        array = np.asarray(image)
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        if arrays and array.shape != arrays[0].shape:
            raise InputError(f"{_FIELD}: {file} is {array.shape[2]}x{array.shape[1]}, "
                             f"{files[0].name} is {arrays[0].shape[2]}x{arrays[0].shape[1]}: "
                             f"all images must have one size")
        arrays.append(array)
    return np.stack(arrays)


def read_samples(path: Path, image_shape: tuple[int, int, int]) -> Tensor:
    """The samples at ``path`` as float32 ``[N, C, H, W]`` in [0, 1], checked against the
    dataset's ``image_shape`` ``(C, H, W)``.

    Raises:
        InputError: a missing or unreadable file, a suffix not accepted, a shape that is not
            ``[N, C, H, W]`` with the dataset's channels and size, a dtype other than uint8 or
            floating point, float values outside [0, 1] or not finite; each on one line naming
            ``model.options.path``.
    """
    channels, height, width = image_shape
    if path.is_dir():
        array: Any = _images_from_folder(path, channels)
    elif not path.is_file():
        raise InputError(f"{_FIELD}: no file or folder at {path}")
    elif path.suffix not in TENSOR_SUFFIXES:
        raise InputError(f"{_FIELD}: {path.name} is not a {', '.join(TENSOR_SUFFIXES)} file or "
                         f"a folder of {'/'.join(IMAGE_SUFFIXES)} images")
    else:
        array = _array_from_file(path)
    tensor = torch.as_tensor(np.asarray(array)) if not isinstance(array, Tensor) else array
    if tensor.dim() != 4:
        raise InputError(f"{_FIELD}: samples must be [N, C, H, W], got shape "
                         f"{list(tensor.shape)}")
    if tuple(tensor.shape[1:]) != (channels, height, width):
        raise InputError(f"{_FIELD}: samples are [N, {', '.join(map(str, tensor.shape[1:]))}] "
                         f"(C, H, W); the dataset's images are [N, {channels}, {height}, "
                         f"{width}]")
    if len(tensor) == 0:
        raise InputError(f"{_FIELD}: {path} holds no samples (N = 0)")
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.dtype.is_floating_point:
        raise InputError(f"{_FIELD}: samples are {str(tensor.dtype).removeprefix('torch.')}; "
                         f"give uint8 in 0-255 or floating point in [0, 1]")
    tensor = tensor.float()
    if not torch.isfinite(tensor).all():
        raise InputError(f"{_FIELD}: samples hold NaN or infinite values")
    low, high = tensor.min().item(), tensor.max().item()
    if low < 0 or high > 1:
        raise InputError(f"{_FIELD}: float samples must lie in [0, 1], found values in "
                         f"[{low:.4g}, {high:.4g}] (uint8 images: keep them uint8 in 0-255)")
    return tensor


@MODELS.register("samples")
class SampleSet(ImageSequence):
    """Images generated elsewhere, from a file or folder: scored on the sample metrics.

    ``model.options.path`` names the file or folder (see the module docstring for the
    formats); the run id holds its contents' sha256. The images are the samples, in order:
    the evaluation takes the first ``eval.fake_samples`` (default: as many as the test set,
    the count the suite's models are scored at; ``latentbench score`` lowers it to the file's
    size when the file holds fewer).
    """

    summary = "a file or folder of samples generated elsewhere (options.path; sample metrics)"
    file_options = ("path",)

    @classmethod
    def identity(cls, spec: ModelSpec) -> dict[str, Any]:
        """``model`` ``samples:<file name>``; no decoder or latent size."""
        return {"model": f"samples:{Path(str(spec.options.get('path', ''))).name}",
                "decoder": None, "latent_dim": None}

    @classmethod
    def from_spec(cls, spec: ModelSpec, image_shape: tuple[int, int, int]) -> SampleSet:
        unknown = sorted(set(spec.options) - {"path"})
        if unknown:
            raise InputError(f"model.options.{unknown[0]}: unknown option; allowed: path")
        path = spec.options.get("path")
        if not isinstance(path, str) or not path:
            raise InputError(f"{_FIELD}: give the file or folder of samples")
        images = read_samples(Path(path), image_shape)
        return cls(images, f"{len(images)} images read from {Path(path).name}")
