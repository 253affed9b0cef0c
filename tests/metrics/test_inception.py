"""inception-v3: weights loading, and features equal to pytorch-fid's on the same weights.

The real pt_inception weights need the internet, so the network is compared on a random state
dict scaled to keep activations O(1) (default init shrinks them to ~1e-7 over 90 layers, where
any two networks would agree). pytorch-fid builds its network from the same file: only its
download function is replaced, not the network under comparison.
"""

import hashlib

import pytest
import torch
from torch import nn

from latentbench.metrics.features import FeatureOptions, load_extractor
from latentbench.metrics.inception import WEIGHTS_ENV, WEIGHTS_FILE
from latentbench.metrics.inception_net import fid_inception_v3
from latentbench.models.registry import InputError


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    torch.manual_seed(0)
    net = fid_inception_v3()
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            # Non-trivial running statistics and affine parameters, so that BN is exercised.
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.8, 1.2)
            module.weight.data.uniform_(0.8, 1.2)
            module.bias.data.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def extractor(weights_file):
    return load_extractor("inception-v3", FeatureOptions(inception_weights=str(weights_file)))


def test_it_loads_a_local_file_and_names_it_by_its_sha256(extractor, weights_file):
    assert (extractor.name, extractor.dim) == ("inception-v3", 2048)
    assert extractor.weights_sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()


def test_features_equal_pytorch_fids_on_the_same_weights(extractor, weights_file, monkeypatch):
    import pytorch_fid.inception as reference

    monkeypatch.setattr(reference, "load_state_dict_from_url",
                        lambda url, **kwargs: torch.load(weights_file, weights_only=True))
    theirs_net = reference.InceptionV3([reference.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    images = torch.rand(3, 3, 37, 45, generator=torch.Generator().manual_seed(1))
    grey = images[:1, :1]

    ours = extractor(torch.cat([images, grey.repeat(1, 3, 1, 1)]))
    with torch.no_grad():
        theirs = theirs_net(torch.cat([images, grey.repeat(1, 3, 1, 1)]))[0].flatten(1)
    assert ours.abs().mean() > 0.1  # activations survived 90 layers: the comparison means something
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-4 * float(theirs.abs().max()))
    # A grey image is repeated to three channels, as pytorch-fid callers do by hand.
    assert torch.allclose(extractor(grey), theirs[3:], rtol=1e-4,
                          atol=1e-4 * float(theirs.abs().max()))


def test_torchvisions_own_blocks_would_give_other_features(extractor, weights_file):
    # The check above can fail: the TF pooling of the FID blocks changes the features.
    from torchvision.models.inception import Inception3

    stock = Inception3(num_classes=1008, aux_logits=False, init_weights=False).eval()
    stock.load_state_dict(torch.load(weights_file, weights_only=True))
    stock.fc = nn.Identity()
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        theirs = stock(nn.functional.interpolate(image, size=(299, 299), mode="bilinear") * 2 - 1)
    ours = extractor(image)
    assert not torch.allclose(ours, theirs, rtol=1e-2, atol=1e-2 * float(ours.abs().max()))


def test_the_environment_variable_names_the_file(weights_file, monkeypatch, extractor):
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_file))
    assert load_extractor("inception-v3", FeatureOptions()).weights_sha256 == \
        extractor.weights_sha256


def test_without_weights_or_downloads_one_line_says_what_to_set(monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(InputError) as caught:
        load_extractor("inception-v3", FeatureOptions())
    message = str(caught.value)
    assert "\n" not in message and message.startswith("eval.inception_weights: ")
    assert WEIGHTS_ENV in message and WEIGHTS_FILE in message


@pytest.mark.parametrize("content, words", [
    (None, "is not a file"),
    (b"not a torch file", "is not a readable state_dict"),
    ({"fc.weight": torch.zeros(3)}, "is not the pt_inception-2015-12-05-6726825d.pth state_dict: "
                                    "\\d+ missing keys .*, 1 wrong shapes \\(e.g. 'fc.weight'\\)"),
    ({"extra": torch.zeros(1)}, "1 unexpected keys \\(e.g. 'extra'\\)"),
    ([1, 2], "holds a list, not a state_dict"),
])
def test_unusable_weights_files_are_input_errors(tmp_path, content, words):
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(InputError, match=f"eval.inception_weights: .*{words}"):
        load_extractor("inception-v3", FeatureOptions(inception_weights=str(path)))


def test_downloads_reuse_a_file_already_in_the_torch_hub_cache(weights_file, monkeypatch,
                                                               tmp_path, extractor):
    # The online path itself cannot run here; the file pytorch-fid or an earlier run fetched can.
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / WEIGHTS_FILE).symlink_to(weights_file)
    found = load_extractor("inception-v3", FeatureOptions(download=True))
    assert found.weights_sha256 == extractor.weights_sha256
