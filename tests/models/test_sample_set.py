"""``samples``: files and folders of images generated elsewhere, read and checked."""

import numpy as np
import pytest
import torch
from PIL import Image

from latentbench.models import InputError, ModelSpec, build_model
from latentbench.models.sample_set import read_samples

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, size=(5, 1, 8, 8), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".pt", "folder"])
def test_every_format_reads_the_same_images(tmp_path, pixels, suffix):
    path = tmp_path / f"s{suffix}" if suffix != "folder" else tmp_path / "pngs"
    if suffix == ".npy":
        np.save(path, pixels)
    elif suffix == ".npz":
        np.savez(path, samples=pixels, labels=np.arange(5))
    elif suffix == ".pt":
        torch.save(torch.from_numpy(pixels).float() / 255, path)
    else:
        path.mkdir()
        for i, image in enumerate(pixels):
            Image.fromarray(image[0]).save(path / f"{i:03d}.png")
    images = read_samples(path, SHAPE)
    assert images.dtype == torch.float32 and images.shape == (5, 1, 8, 8)
    torch.testing.assert_close(images, torch.from_numpy(pixels).float() / 255)


@pytest.mark.parametrize("array, message", [
    (np.zeros((5, 8, 8), np.uint8), r"must be \[N, C, H, W\]"),
    (np.zeros((5, 3, 8, 8), np.uint8), r"samples are \[N, 3, 8, 8\]"),
    (np.zeros((5, 1, 8, 9), np.uint8), r"samples are \[N, 1, 8, 9\]"),
    (np.full((5, 1, 8, 8), 2.0, np.float32), r"must lie in \[0, 1\], found values in \[2, 2\]"),
    (np.full((5, 1, 8, 8), np.nan, np.float32), "NaN or infinite"),
    (np.zeros((5, 1, 8, 8), np.int64), "samples are int64; give uint8"),
    (np.zeros((0, 1, 8, 8), np.uint8), "holds no samples"),
])
def test_bad_arrays_are_one_line_errors(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match=f"^model.options.path: .*{message}"):
        read_samples(tmp_path / "bad.npy", SHAPE)


def test_bad_files_and_folders_are_one_line_errors(tmp_path, pixels):
    (tmp_path / "damaged.npy").write_bytes(b"garbage")
    (tmp_path / "samples.txt").write_text("1 2 3")
    np.savez(tmp_path / "two.npz", a=pixels, b=pixels)
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    Image.new("RGB", (8, 8)).save(rgb / "0.png")
    sizes = tmp_path / "sizes"
    sizes.mkdir()
    Image.new("L", (8, 8)).save(sizes / "0.png")
    Image.new("L", (9, 8)).save(sizes / "1.png")
    (tmp_path / "empty").mkdir()
    cases = {"damaged.npy": "cannot read", "samples.txt": "is not a .npy, .npz, .pt file",
             "two.npz": "holds arrays a, b", "rgb": "is a 'RGB' image; the dataset has 1",
             "sizes": "all images must have one size", "empty": "holds no .png",
             "missing.npy": "no file or folder"}
    for name, message in cases.items():
        with pytest.raises(InputError, match=f"^model.options.path: .*{message}") as caught:
            read_samples(tmp_path / name, SHAPE)
        assert "\n" not in str(caught.value)


def test_the_samples_model_is_named_after_its_file_and_needs_no_training(tmp_path, pixels):
    np.save(tmp_path / "gan.npy", pixels)
    spec = ModelSpec(name="samples", options={"path": str(tmp_path / "gan.npy")})
    model = build_model(spec, SHAPE)
    assert model.capabilities == {"sample"} and not model.trained_here
    assert type(model).identity(spec) == {"model": "samples:gan.npy", "decoder": None,
                                          "latent_dim": None}
    with pytest.raises(InputError, match="model.options.size: unknown option; allowed: path"):
        build_model(ModelSpec(name="samples", options={"path": "x", "size": 1}), SHAPE)
