"""LeNet: the shipped lenet-mnist weights, training determinism, the extractor's adaptation, and
the standardisation of its features with training-split statistics."""

import hashlib
import io

import pytest
import torch
import torchvision.transforms.functional as TF

from latentbench.benchmarks.data import DataSpec, load_dataset
from latentbench.metrics.features import FeatureOptions, load_extractor
from latentbench.metrics.frechet import frechet_distance
from latentbench.metrics.kid import kid
from latentbench.metrics.lenet import (
    ARCHITECTURE_VERSION,
    LENET_MNIST_FILE,
    LENET_MNIST_SHA256,
    LeNet,
    WeightsMismatchError,
    accuracy,
    feature_statistics,
    lenet_checkpoint,
    load_lenet,
    shipped_weights,
    train_lenet,
)


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset(DataSpec("mnist5k"))


@pytest.fixture(scope="module")
def lenet_mnist():
    return load_extractor("lenet-mnist", FeatureOptions())


def test_the_shipped_weights_are_the_file_whose_digest_the_code_names(lenet_mnist):
    path = shipped_weights(LENET_MNIST_FILE)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == LENET_MNIST_SHA256
    assert lenet_mnist.weights_sha256 == LENET_MNIST_SHA256
    assert lenet_mnist.metadata["dataset"] == "mnist5k"
    assert lenet_mnist.net.input_shape == (1, 28, 28) and lenet_mnist.dim == 128


def test_a_changed_weights_file_is_refused_naming_both_digests(tmp_path):
    data = bytearray(shipped_weights(LENET_MNIST_FILE).read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "lenet.pt").write_bytes(data)
    with pytest.raises(WeightsMismatchError, match=f"lenet.pt: sha256 [0-9a-f]{{64}} is not the "
                                                   f"expected {LENET_MNIST_SHA256}"):
        load_lenet(tmp_path / "lenet.pt", "lenet-mnist", expected_sha256=LENET_MNIST_SHA256)


def test_lenet_mnist_classifies_the_real_test_digits(lenet_mnist, mnist5k):
    assert len(mnist5k.test) == 1000
    assert accuracy(lenet_mnist.net, mnist5k.test, mnist5k.test_labels) >= 0.95


def test_the_shipped_file_standardises_with_its_networks_training_split_statistics(
        lenet_mnist, mnist5k):
    # The statistics in the file are those of this very network on the 4,000 mnist5k training
    # digits (the harness's loader), so its training features come out standardised.
    mean, std = feature_statistics(lenet_mnist.net, mnist5k.train)
    assert len(mnist5k.train) == 4000
    torch.testing.assert_close(lenet_mnist.feature_mean, mean.float())
    torch.testing.assert_close(lenet_mnist.feature_std, std.float())
    train = lenet_mnist(mnist5k.train).double()
    assert train.mean(0).abs().max() < 1e-5 and (train.std(0) - 1).abs().max() < 1e-5
    # The raw features it standardises: std ≈ 5 per unit, norm ≈ 100 (docs/metrics.md, "Samples").
    raw = lenet_mnist.raw_features(mnist5k.train).double()
    assert 3 < raw.std(0).mean() < 8 and 60 < raw.norm(dim=1).mean() < 150


def test_kid_of_real_digits_against_real_digits_is_small_and_of_blurred_ones_large(
        lenet_mnist, mnist5k):
    # Measured: 0.008 ± 0.022 (subset std) for the two halves of the test digits, 34 for a
    # blurred half; with the raw features these were 76 and 93,000.
    first, second = lenet_mnist(mnist5k.test[:500]), lenet_mnist(mnist5k.test[500:])
    blurred = lenet_mnist(TF.gaussian_blur(mnist5k.test[500:], kernel_size=7, sigma=2.0))
    real, _ = kid(first, second, subsets=100, subset_size=250)
    blur, _ = kid(first, blurred, subsets=100, subset_size=250)
    assert abs(real) < 0.05 and blur > 5 and blur > 100 * abs(real)


def test_fid_of_training_against_test_digits_is_the_standardised_floor(lenet_mnist, mnist5k):
    # Real train vs test digits at 1,000 vs 1,000: 1.74 in standardised features (44.0 raw; the
    # other training thousands give 2.38, 1.80, 1.88 against 53.1, 49.8, 49.3 raw).
    train, test = lenet_mnist(mnist5k.train[:1000]).double(), lenet_mnist(mnist5k.test).double()
    value = frechet_distance(train.mean(0), torch.cov(train.T), test.mean(0), torch.cov(test.T))
    assert value == pytest.approx(1.74, abs=0.02)


def test_its_features_have_a_full_rank_covariance_on_the_test_digits(lenet_mnist, mnist5k):
    # The reason for taking them before the ReLU: after it, dead units make Σ singular.
    features = lenet_mnist(mnist5k.test).double()
    assert torch.linalg.matrix_rank(torch.cov(features.T)) == 128


def test_the_extractor_brings_colour_and_larger_images_to_its_training_shape(lenet_mnist,
                                                                             mnist5k):
    digits = mnist5k.test[:8]
    grey = lenet_mnist(digits)
    assert torch.allclose(lenet_mnist(digits.repeat(1, 3, 1, 1)), grey, atol=1e-5)
    # 2× nearest upsampling, then bilinear halving (align_corners=False) samples between pixel
    # pairs and averages them: a blur, so near but not equal.
    upsampled = lenet_mnist(digits.repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert upsampled.shape == (8, 128)
    assert torch.nn.functional.cosine_similarity(upsampled, grey).min() > 0.9


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32),
                                   (1, 64, 64), (3, 64, 64)])
def test_lenet_takes_mnist_cifar_and_64_pixel_shapes(shape):
    net = LeNet(shape, classes=7)
    images = torch.rand(2, *shape)
    assert net(images).shape == (2, 7) and net.features(images).shape == (2, 128)


def _tiny_set():
    generator = torch.Generator().manual_seed(5)
    labels = torch.arange(48) % 2
    # Class 1 is bright on the left half: a task a LeNet learns in a few steps.
    images = torch.rand(48, 1, 16, 16, generator=generator) * 0.3
    images[labels == 1, :, :, :8] += 0.6
    return images, labels


def test_training_is_deterministic_for_a_seed_and_leaves_the_global_rng_alone():
    images, labels = _tiny_set()
    state = torch.random.get_rng_state()
    settings = dict(epochs=3, batch_size=16, lr=3e-3)
    first = train_lenet(images, labels, seed=1, **settings).state_dict()
    again = train_lenet(images, labels, seed=1, **settings).state_dict()
    other = train_lenet(images, labels, seed=2, **settings).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_training_learns_a_separable_task():
    images, labels = _tiny_set()
    net = train_lenet(images, labels, seed=0, epochs=15, batch_size=16, lr=3e-3)
    assert accuracy(net, images, labels) == 1.0


def test_a_checkpoint_round_trips_through_a_weights_only_load(tmp_path):
    images, labels = _tiny_set()
    net = train_lenet(images, labels, seed=0, epochs=1, batch_size=16, lr=1e-3)
    mean, std = feature_statistics(net, images)
    data = lenet_checkpoint(net, mean, std, dataset="tiny", test_accuracy=0.5)
    (tmp_path / "tiny.pt").write_bytes(data)
    loaded = load_lenet(tmp_path / "tiny.pt", "lenet-tiny",
                        expected_sha256=hashlib.sha256(data).hexdigest())
    assert (loaded.metadata["dataset"], loaded.metadata["test_accuracy"]) == ("tiny", 0.5)
    assert "feature_mean" not in loaded.metadata and "state_dict" not in loaded.metadata
    assert loaded.net.input_shape == (1, 16, 16)
    with torch.no_grad():
        raw = net.features(images)
    # Standardised (changed on purpose: the features were the raw activations before).
    assert torch.equal(loaded.raw_features(images), raw)
    assert torch.equal(loaded(images), (raw - mean.float()) / std.float())
    assert torch.equal(loaded.feature_mean, mean.float())
    assert loaded.feature_std.dtype == torch.float32
    # bytes reproducible
    assert data == lenet_checkpoint(net, *feature_statistics(net, images), dataset="tiny",
                                    test_accuracy=0.5)


def test_standardised_training_features_have_mean_0_and_std_1_per_dimension():
    images, labels = _tiny_set()
    net = train_lenet(images, labels, seed=0, epochs=2, batch_size=16, lr=1e-3)
    mean, std = feature_statistics(net, images)
    assert mean.dtype == std.dtype == torch.float64 and mean.shape == std.shape == (128,)
    with torch.no_grad():
        raw = net.features(images).double()
    torch.testing.assert_close(mean, raw.mean(0))
    torch.testing.assert_close(std, raw.std(0))  # the N − 1 normaliser


def test_a_constant_feature_is_centred_not_divided_by_zero():
    net = LeNet((1, 16, 16), classes=2)
    with torch.no_grad():
        net.body[-1].weight[3] = 0  # unit 3 is its bias on every image
    mean, std = feature_statistics(net, torch.rand(10, 1, 16, 16))
    assert std[3] == 1 and torch.isfinite(mean).all() and (std > 0).all()


@pytest.mark.parametrize("mean, std, words", [
    (torch.zeros(127), torch.ones(128), r"feature mean must be a \[128\] tensor"),
    (torch.zeros(128), torch.zeros(128), "std finite and > 0"),
    (torch.full((128,), float("nan")), torch.ones(128), "must be finite"),
])
def test_checkpoints_refuse_unusable_statistics(mean, std, words):
    with pytest.raises(ValueError, match=words):
        lenet_checkpoint(LeNet((1, 16, 16), 2), mean, std)


def test_metadata_cannot_overwrite_the_checkpoints_own_keys():
    with pytest.raises(ValueError, match="architecture"):
        lenet_checkpoint(LeNet((1, 16, 16), 2), torch.zeros(128), torch.ones(128),
                         architecture=1)


def test_a_file_of_another_kind_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a LeNet checkpoint of architecture version 2"):
        load_lenet(tmp_path / "other.pt", "x")


def _layout(**changes):
    """A checkpoint dict of a fresh LeNet, as lenet_checkpoint writes it, with ``changes``."""
    net = LeNet((1, 16, 16), 2)
    data = torch.load(io.BytesIO(lenet_checkpoint(net, torch.zeros(128), torch.ones(128))),
                      weights_only=True)
    return {**data, **changes}


def test_a_file_of_the_first_layout_without_statistics_is_refused(tmp_path):
    # Version 1 files held raw-feature networks without their standardisation: loading one
    # would give features on another scale under a name that promises standardised ones.
    old = _layout(architecture=1)
    del old["feature_mean"], old["feature_std"]
    torch.save(old, tmp_path / "v1.pt")
    with pytest.raises(ValueError, match="architecture version 2"):
        load_lenet(tmp_path / "v1.pt", "x")
    torch.save({k: v for k, v in _layout().items() if k != "feature_std"}, tmp_path / "no.pt")
    with pytest.raises(ValueError, match="no.pt: feature std must be a \\[128\\] tensor"):
        load_lenet(tmp_path / "no.pt", "x")
    assert ARCHITECTURE_VERSION == 2


@pytest.mark.parametrize("labels, words", [
    (torch.zeros(48), "labels must be int64"),
    (torch.zeros(47, dtype=torch.int64), "labels must be int64 \\[48\\]"),
])
def test_training_rejects_bad_labels(labels, words):
    with pytest.raises(ValueError, match=words):
        train_lenet(_tiny_set()[0], labels, seed=0, epochs=1, batch_size=8, lr=1e-3)
