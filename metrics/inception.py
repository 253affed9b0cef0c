"""``inception-v3``: the standard FID feature space (pool3, 2,048-d, ``pt_inception-2015-12-05``).

Offline use needs the weights file ``pt_inception-2015-12-05-6726825d.pth`` (the TF Inception
graph ported by pytorch-fid, 95 MB): give its path as ``eval.inception_weights`` or in
``LATENTBENCH_INCEPTION_WEIGHTS``. With ``FeatureOptions(download=True)`` and neither set, the file
is fetched into the torch.hub cache, where pytorch-fid keeps it too.

Preprocessing follows legacy FID exactly: grey images are repeated to three channels, resized to
299×299 bilinearly without antialiasing (``align_corners=False``), then mapped from [0, 1] to
[−1, 1]. torchmetrics ≥ 1.8 antialiases by default and so gives other values.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from latentbench.metrics.features import (
    FEATURES,
    FeatureExtractor,
    FeatureOptions,
    adapt_images,
    file_sha256,
)
from latentbench.models.registry import InputError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"
WEIGHTS_ENV = "LATENTBENCH_INCEPTION_WEIGHTS"
# torch.hub's convention: the part of the file name after the last dash starts the file's sha256.
WEIGHTS_SHA256_PREFIX = "6726825d"
INPUT_SIZE = 299
FEATURE_DIM = 2048


class InceptionExtractor(FeatureExtractor):
    """Pool3 features of the FID Inception-v3 (the 2,048-d average pool before the classifier).

    Args:
        net: :func:`~latentbench.metrics.inception_net.fid_inception_v3` with weights loaded;
            its classifier is replaced by the identity here.
        weights_sha256: sha256 of the weights file.
    """

    def __init__(self, net: nn.Module, weights_sha256: str) -> None:
        super().__init__("inception-v3", FEATURE_DIM, weights_sha256)
        net.fc = nn.Identity()
        self.net = net
        self.eval()

    def extract(self, images: Tensor) -> Tensor:
        images = adapt_images(images, 3, (INPUT_SIZE, INPUT_SIZE))
        return self.net(2 * images - 1)


def inception_weights_path(options: FeatureOptions) -> Path:
    """The local weights file: ``options.inception_weights``, else the environment, else a download.

    Raises:
        InputError: the named file does not exist, or none is named and downloads are off; one
            line naming ``eval.inception_weights``, ``LATENTBENCH_INCEPTION_WEIGHTS`` and the file.
    """
    field, given = "eval.inception_weights", options.inception_weights
    if not given:
        field, given = WEIGHTS_ENV, os.environ.get(WEIGHTS_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise InputError(f"{field}: {path} is not a file; it should be {WEIGHTS_FILE}")
        return path
    if options.download:
        return _download_weights()
    raise InputError(f"eval.inception_weights: inception-v3 needs {WEIGHTS_FILE}; set "
                     f"eval.inception_weights or {WEIGHTS_ENV} to its path (it is at "
                     f"{WEIGHTS_URL})")


def _download_weights() -> Path:
    # The folder torch.hub.load_state_dict_from_url uses, so a file that pytorch-fid already
    # fetched is found; we download to a path (not to a state_dict) because its sha256 is needed.
    path = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(WEIGHTS_URL, str(path), hash_prefix=WEIGHTS_SHA256_PREFIX)
    return path


def load_inception(path: Path) -> InceptionExtractor:
    """The FID Inception-v3 with the weights in ``path``.

    Raises:
        InputError: the file is not a state_dict (read with ``weights_only=True``) or its keys or
            shapes are not those of ``pt_inception-2015-12-05``.
    """
    from latentbench.metrics.inception_net import fid_inception_v3  # torchvision: ~1 s import

    field = "eval.inception_weights"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = (str(err).strip().splitlines() or [""])[0]
        raise InputError(f"{field}: {path} is not a readable state_dict "
                         f"({type(err).__name__}: {reason})") from None
    if not isinstance(state, dict):
        raise InputError(f"{field}: {path} holds a {type(state).__name__}, not a state_dict")
    net = fid_inception_v3()
    expected = net.state_dict()
    # BatchNorm's batch counter is unused in eval mode; files ported from TF may lack it.
    state = {**{k: v for k, v in expected.items() if k.endswith("num_batches_tracked")}, **state}
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected)
    wrong_shape = sorted(k for k in expected.keys() & state.keys()
                         if not isinstance(state[k], Tensor) or state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        problems = [f"{len(keys)} {what} (e.g. {keys[0]!r})" for what, keys in
                    (("missing keys", missing), ("unexpected keys", unexpected),
                     ("wrong shapes", wrong_shape)) if keys]
        raise InputError(f"{field}: {path} is not the {WEIGHTS_FILE} state_dict: "
                         f"{', '.join(problems)}")
    net.load_state_dict(state)
    return InceptionExtractor(net, file_sha256(path))


@FEATURES.register("inception-v3")
def build_inception(options: FeatureOptions) -> InceptionExtractor:
    """FID Inception-v3 pool3, 2048-d (needs pt_inception-2015-12-05 weights; 299 px input)."""
    return load_inception(inception_weights_path(options))
