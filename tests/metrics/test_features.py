"""The extractor base class, user modules as extractors, and name lookup."""

import copy
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentbench.metrics.features import (
    FEATURES,
    FeatureExtractor,
    FeatureOptions,
    adapt_images,
    load_extractor,
    state_dict_sha256,
    wrap_module,
)
from latentbench.models.registry import InputError


class GreyPool(nn.Module):
    """A user network that adapts any [B, 1|3, H, W] itself: grey, 4×4 pool, linear."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(16, 5)
        self.dropout = nn.Dropout(0.5)  # must be off in an extractor

    def forward(self, images):
        pooled = F.adaptive_avg_pool2d(images.mean(1, keepdim=True), 4).flatten(1)
        return self.dropout(self.linear(pooled))


def test_a_wrapped_module_infers_its_dim_and_gives_float32_features_in_eval_mode():
    extractor = wrap_module("grey-pool", GreyPool())
    extractor.train()  # a no-op: dropout would make features depend on the draw
    images = torch.rand(6, 3, 20, 24, dtype=torch.float64)
    first, second = extractor(images), extractor(images)
    assert (extractor.name, extractor.dim) == ("grey-pool", 5)
    assert first.shape == (6, 5) and first.dtype == torch.float32
    assert torch.equal(first, second) and not extractor.training and not first.requires_grad


def test_dim_comes_from_the_argument_or_the_modules_dim_attribute_before_a_probe():
    class Fixed(GreyPool):
        dim = 5

        def forward(self, images):
            if images.shape[-1] == 28:  # the probe's shape: proves that no probe ran
                raise AssertionError("probed")
            return super().forward(images)

    assert wrap_module("a", Fixed()).dim == 5
    assert wrap_module("b", Fixed(), dim=5).dim == 5


def test_the_weights_digest_follows_the_weights_and_the_class():
    module = GreyPool()
    same = copy.deepcopy(module)
    assert wrap_module("x", module).weights_sha256 == state_dict_sha256(same)
    with torch.no_grad():
        same.linear.bias[0] += 1e-6
    assert state_dict_sha256(same) != state_dict_sha256(module)
    # Parameter-free modules still differ by what they compute.
    assert state_dict_sha256(nn.Flatten()) != state_dict_sha256(nn.Identity())


def test_a_module_returning_the_wrong_width_fails_on_forward():
    extractor = wrap_module("liar", GreyPool(), dim=7)
    with pytest.raises(ValueError, match=r"'liar' returned shape \(2, 5\), expected \(2, 7\)"):
        extractor(torch.rand(2, 1, 8, 8))


@pytest.mark.parametrize("images, words", [
    (torch.rand(2, 2, 8, 8), "1 or 3 channels"),
    (torch.rand(2, 8, 8), r"must be a float \[B, C, H, W\] tensor, got torch.float32 \(2, 8, 8\)"),
    (torch.ones(2, 1, 8, 8, dtype=torch.uint8), "got torch.uint8"),
])
def test_images_outside_the_contract_are_rejected(images, words):
    with pytest.raises(ValueError, match=words):
        wrap_module("m", GreyPool())(images)


def test_unusable_modules_are_input_errors():
    with pytest.raises(InputError, match="not a torch.nn.Module class or instance"):
        wrap_module("f", lambda x: x)

    class OnlyColour(nn.Module):
        def forward(self, images):
            return images.reshape(len(images), 3, -1).mean(-1)

    with pytest.raises(InputError, match="'c' failed on a batch of shape .*`dim` attribute"):
        wrap_module("c", OnlyColour())


def test_adapt_images_repeats_or_averages_channels_and_resizes_like_legacy_fid():
    grey = torch.rand(2, 1, 10, 12)
    colour = adapt_images(grey, 3, (10, 12))
    assert colour.shape == (2, 3, 10, 12) and all(torch.equal(c, grey[:, 0]) for c in
                                                  colour.unbind(1))
    assert torch.allclose(adapt_images(colour, 1, (10, 12)), grey)
    resized = adapt_images(grey, 1, (21, 17))
    assert torch.equal(resized, F.interpolate(grey, size=(21, 17), mode="bilinear",
                                              align_corners=False, antialias=False))
    assert adapt_images(grey, 1, (10, 12)) is grey  # nothing to do: no copy


def test_feature_options_are_frozen():
    with pytest.raises(AttributeError):
        FeatureOptions().download = True


def test_registered_names_build_their_extractors():
    assert {"lenet-mnist", "inception-v3"} <= set(FEATURES)
    extractor = load_extractor("lenet-mnist", FeatureOptions())
    assert isinstance(extractor, FeatureExtractor) and extractor.name == "lenet-mnist"


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "my_features.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Means(nn.Module):
            def forward(self, images):
                return torch.stack([images.mean((1, 2, 3)), images.amax((1, 2, 3))], 1)

        means = Means()
        not_a_module = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_features", raising=False)
    return "my_features"


@pytest.mark.parametrize("attribute", ["Means", "means"])
def test_a_plugin_class_or_instance_is_named_by_the_string_given(plugin_module, attribute):
    name = f"{plugin_module}:{attribute}"
    extractor = load_extractor(name, FeatureOptions())
    images = torch.rand(3, 1, 9, 9)
    assert (extractor.name, extractor.dim) == (name, 2)
    assert torch.allclose(extractor(images)[:, 1], images.amax((1, 2, 3)))


@pytest.mark.parametrize("name, words", [
    ("lenet-klingon", "unknown feature extractor 'lenet-klingon'; choose one of: inception-v3, "
                      "lenet-mnist, or a plug-in 'package.module:Attr'"),
    ("no_such_module_xyz:Net", "cannot import 'no_such_module_xyz'"),
    ("my_features:Nothing", "has no 'Nothing'"),
    ("my_features:not_a_module", "not a torch.nn.Module class or instance (got int)"),
])
def test_unusable_names_are_one_line_input_errors_naming_eval_features(plugin_module, name,
                                                                       words):
    with pytest.raises(InputError) as caught:
        load_extractor(name, FeatureOptions())
    message = str(caught.value)
    assert message.startswith("eval.features: ") and words in message and "\n" not in message
