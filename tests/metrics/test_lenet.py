"""LeNet: the shipped lenet-mnist weights, training determinism, and the extractor's adaptation."""

import hashlib

import pytest
import torch

from latentbench.benchmarks.data import DataSpec, load_dataset
from latentbench.metrics.features import FeatureOptions, load_extractor
from latentbench.metrics.lenet import (
    LENET_MNIST_FILE,
    LENET_MNIST_SHA256,
    LeNet,
    WeightsMismatchError,
    accuracy,
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
    data = lenet_checkpoint(net, dataset="tiny", test_accuracy=0.5)
    (tmp_path / "tiny.pt").write_bytes(data)
    loaded = load_lenet(tmp_path / "tiny.pt", "lenet-tiny",
                        expected_sha256=hashlib.sha256(data).hexdigest())
    assert loaded.metadata["dataset"] == "tiny" and loaded.net.input_shape == (1, 16, 16)
    assert torch.equal(loaded(images), net.features(images))
    assert data == lenet_checkpoint(net, dataset="tiny", test_accuracy=0.5)  # bytes reproducible


def test_a_file_of_another_kind_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a LeNet checkpoint of architecture version 1"):
        load_lenet(tmp_path / "other.pt", "x")


@pytest.mark.parametrize("labels, words", [
    (torch.zeros(48), "labels must be int64"),
    (torch.zeros(47, dtype=torch.int64), "labels must be int64 \\[48\\]"),
])
def test_training_rejects_bad_labels(labels, words):
    with pytest.raises(ValueError, match=words):
        train_lenet(_tiny_set()[0], labels, seed=0, epochs=1, batch_size=8, lr=1e-3)
