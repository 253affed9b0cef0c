"""Extractors for datasets: lenet-<dataset> trained once and cached, and `latentbench features`."""

import hashlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import latentbench.benchmarks.extractors as extractors
from latentbench.benchmarks.cli import main
from latentbench.benchmarks.data import DataSpec, load_dataset
from latentbench.benchmarks.extractors import (
    cached_lenet,
    default_extractor,
    lenet_cache_key,
    resolve_extractor,
)
from latentbench.benchmarks.feature_cache import RealFeatureCache
from latentbench.metrics.features import FeatureOptions
from latentbench.metrics.lenet import (
    LENET_MNIST_SHA256,
    LeNetExtractor,
    LeNetTraining,
    feature_statistics,
)
from latentbench.models.registry import InputError

SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")

LINES = DataSpec(dataset="lines", n_train=256, n_test=64)
QUICK = LeNetTraining(epochs=2)


@pytest.fixture
def training_calls(monkeypatch):
    """How often the real training function runs (it is wrapped, not replaced)."""
    calls = []
    real = extractors.train_lenet

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(extractors, "train_lenet", counted)
    return calls


@pytest.mark.parametrize("dataset, name", [
    ("mnist5k", "lenet-mnist"), ("mnist", "lenet-mnist"), ("lines", "lenet-lines"),
    ("fashion-mnist", "lenet-fashion-mnist"),
])
def test_default_extractors(dataset, name):
    assert default_extractor(dataset) == name


def test_lenet_for_a_dataset_is_trained_once_then_loaded_from_the_cache(tmp_path,
                                                                        training_calls):
    first = cached_lenet(LINES, QUICK, tmp_path)
    stamp = first.path.stat().st_mtime_ns
    again = cached_lenet(LINES, QUICK, tmp_path)
    assert (first.trained, again.trained, len(training_calls)) == (True, False, 1)
    assert again.path == first.path and first.path.stat().st_mtime_ns == stamp
    assert first.path.parent == tmp_path / "features"
    # The file is named by the sha256 of its bytes, which is the extractor's digest.
    digest = hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert first.path.name.endswith(f"-{digest}.pt") and again.extractor.weights_sha256 == digest
    assert again.test_accuracy == first.test_accuracy
    images = torch.rand(5, 1, 32, 32)
    assert torch.equal(first.extractor(images), again.extractor(images))


def test_resolve_trains_lenet_for_the_data_being_scored_and_then_reuses_it(tmp_path,
                                                                           training_calls):
    extractor = resolve_extractor("lenet-lines", LINES, FeatureOptions(), tmp_path)
    assert (extractor.name, extractor.dim, len(training_calls)) == ("lenet-lines", 128, 1)
    assert extractor.metadata["train_images"] == 256
    again = resolve_extractor("lenet-lines", LINES, FeatureOptions(), tmp_path)
    assert again.weights_sha256 == extractor.weights_sha256 and len(training_calls) == 1


def test_a_corrupt_cache_file_is_dropped_and_retrained(tmp_path, training_calls):
    path = cached_lenet(LINES, QUICK, tmp_path).path
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(data)
    with pytest.warns(RuntimeWarning, match="dropping a bad cached LeNet: .*sha256"):
        retrained = cached_lenet(LINES, QUICK, tmp_path)
    assert retrained.trained and len(training_calls) == 2
    assert hashlib.sha256(retrained.path.read_bytes()).hexdigest() == \
        retrained.extractor.weights_sha256


def test_a_trained_lenet_standardises_with_the_statistics_of_its_training_split(tmp_path):
    found = cached_lenet(LINES, QUICK, tmp_path)
    data = load_dataset(LINES)
    stored = torch.load(io.BytesIO(found.path.read_bytes()), weights_only=True)
    mean, std = feature_statistics(found.extractor.net, data.train)
    assert torch.equal(stored["feature_mean"], mean) and torch.equal(stored["feature_std"], std)
    train = found.extractor(data.train).double()
    assert train.mean(0).abs().max() < 1e-4 and (train.std(0) - 1).abs().max() < 1e-4
    test = found.extractor(data.test).double()  # held-out images: near, not exactly, 0 and 1
    assert test.mean(0).abs().mean() < 0.5 and 0.5 < test.std(0).mean() < 2


def test_a_cached_lenet_of_the_first_layout_is_dropped_and_retrained(tmp_path, training_calls):
    # A file without the training-split statistics (architecture 1, raw features) under the
    # current name must never be loaded as a standardised extractor.
    path = cached_lenet(LINES, QUICK, tmp_path).path
    old = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    old["architecture"] = 1
    del old["feature_mean"], old["feature_std"]
    buffer = io.BytesIO()
    torch.save(old, buffer)
    path.unlink()
    stale = path.with_name(f"{path.stem.rsplit('-', 1)[0]}-"
                           f"{hashlib.sha256(buffer.getvalue()).hexdigest()}.pt")
    stale.write_bytes(buffer.getvalue())
    with pytest.warns(RuntimeWarning, match="dropping a bad cached LeNet: .*architecture version"):
        retrained = cached_lenet(LINES, QUICK, tmp_path)
    assert retrained.trained and not stale.exists() and len(training_calls) == 2


def test_real_feature_cache_files_follow_the_weights_digest(tmp_path):
    # Cached real features are keyed by the extractor's weights sha256: the standardised
    # lenet-mnist file has a new digest, so features cached with the raw one are never read.
    shipped = resolve_extractor("lenet-mnist", DataSpec("mnist5k"), FeatureOptions(), tmp_path)
    raw_digest = "d2443a0d79f52e551825c344d65c04ccf390a5baaf256085a40b976255bfb9f4"  # layout 1
    before = LeNetExtractor("lenet-mnist", shipped.net, raw_digest, shipped.feature_mean,
                            shipped.feature_std)
    cache = RealFeatureCache(DataSpec("mnist5k"), tmp_path)
    assert shipped.weights_sha256 != raw_digest
    assert cache.path("test", shipped) != cache.path("test", before)
    assert cache.path("test", shipped) == cache.path("test", resolve_extractor(
        "lenet-mnist", DataSpec("mnist5k"), FeatureOptions(), tmp_path))


def test_the_cache_key_follows_the_checkpoint_layout_version(monkeypatch):
    # Files of layout 1 (no standardisation) sit under other names, never globbed for layout 2.
    key = lenet_cache_key(LINES, QUICK)
    monkeypatch.setattr(extractors, "ARCHITECTURE_VERSION", 1)
    assert lenet_cache_key(LINES, QUICK) != key


def test_the_cache_key_follows_what_the_weights_depend_on():
    key = lenet_cache_key(LINES, QUICK)
    assert lenet_cache_key(DataSpec(dataset="lines", n_train=256, n_test=64, root="/x"),
                           QUICK) == key
    assert lenet_cache_key(DataSpec(dataset="lines", n_train=255, n_test=64), QUICK) != key
    assert lenet_cache_key(LINES, LeNetTraining(epochs=2, seed=1)) != key
    assert lenet_cache_key(LINES, LeNetTraining(epochs=3)) != key


def test_registered_names_and_plugins_resolve_without_training(tmp_path, training_calls):
    shipped = resolve_extractor("lenet-mnist", DataSpec("mnist5k"), FeatureOptions(), tmp_path)
    assert shipped.weights_sha256 == LENET_MNIST_SHA256
    plugin = resolve_extractor("torch.nn:Flatten", LINES, FeatureOptions(), tmp_path)
    assert (plugin.name, plugin.dim) == ("torch.nn:Flatten", 784)
    assert not training_calls and not (tmp_path / "features").exists()


@pytest.mark.parametrize("name", ["lenet-klingon", "vgg16"])
def test_unknown_extractor_names_list_the_choices(tmp_path, name):
    with pytest.raises(InputError, match=f"eval.features: unknown feature extractor '{name}'"
                                         r"( \(did you mean [^)]*\))?; "
                                         "choose one of: inception-v3, lenet-mnist, "
                                         "lenet-<dataset> for a dataset of"):
        resolve_extractor(name, LINES, FeatureOptions(), tmp_path)


def test_features_train_through_the_cli_then_finds_it_in_the_cache(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setenv("LATENTBENCH_CACHE", str(tmp_path))
    assert main(["features", "train", "mnist5k", "--epochs", "1", "--seed", "3"]) == 0
    first = capsys.readouterr().out.splitlines()
    (path,) = (tmp_path / "features").glob("lenet-mnist5k-*.pt")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert first[0] == f"latentbench: lenet-mnist5k trained: {path}"
    assert first[1] == f"sha256 {digest}"
    assert first[2].startswith("test accuracy 0.") and float(first[2].split()[-1]) > 0.8

    # The second time through the real script (the cache folder reaches it in its
    # environment): it trains nothing, so it costs only the start-up.
    done = subprocess.run([SCRIPT, "features", "train", "mnist5k", "--epochs", "1", "--seed", "3"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr
    again = done.stdout.splitlines()
    assert again[0] == f"latentbench: lenet-mnist5k from the cache: {path}"
    assert again[1:] == first[1:]


def test_features_train_of_an_unknown_dataset_exits_2_with_one_line(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setenv("LATENTBENCH_CACHE", str(tmp_path))
    assert main(["features", "train", "klingon-digits"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("latentbench: error: data.dataset: unknown dataset 'klingon-digits'")
    assert not (tmp_path / "features").exists()


def test_list_features_shows_the_registered_extractors_with_their_summary(capsys):
    assert main(["list", "features"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["inception-v3", "lenet-mnist"]
    assert "2048-d" in lines[0] and "mnist5k" in lines[1]
