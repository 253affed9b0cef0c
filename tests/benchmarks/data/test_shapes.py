"""The dSprites-style ``shapes`` generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentbench.benchmarks.data.registry import DataSpec, load_dataset
from latentbench.benchmarks.data.shapes import (
    COLOURS,
    ORIENTATIONS,
    POSITIONS,
    RADIUS,
    SCALES,
    ShapesFactors,
    draw_sprites,
)

SQUARE, ELLIPSE, HEART = 0, 1, 2


def _one(
    shape: int, scale: float = 1.0, phi: float = 0.0, x: float = 0.5, y: float = 0.5
) -> torch.Tensor:
    """One binary 64×64 sprite."""
    return draw_sprites([shape], [scale], [phi], [x], [y])[0, 0]


def _centre_of_mass(image: torch.Tensor) -> tuple[float, float]:
    """(column, row) of the ink's centre, in pixel-centre coordinates."""
    rows, cols = torch.nonzero(image > 0, as_tuple=True)
    return cols.double().mean().item() + 0.5, rows.double().mean().item() + 0.5


def test_grids_match_dsprites() -> None:
    assert np.allclose(SCALES, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert len(ORIENTATIONS) == 40 and ORIENTATIONS[0] == 0 and ORIENTATIONS[-1] < 2 * math.pi
    assert len(POSITIONS) == 32 and POSITIONS[0] == 0 and POSITIONS[-1] == 1


def test_x_moves_right_and_y_moves_down() -> None:
    for shape in (SQUARE, ELLIPSE, HEART):
        col_a, row_a = _centre_of_mass(_one(shape, x=0.2, y=0.3))
        col_b, row_b = _centre_of_mass(_one(shape, x=0.8, y=0.3))
        col_c, row_c = _centre_of_mass(_one(shape, x=0.2, y=0.9))
        # the centre spans 34 px (15 … 49) as x, y go 0 … 1
        assert col_b - col_a == pytest.approx(34 * 0.6, abs=0.6)
        # sub-pixel sampling of a shifted sprite moves the other coordinate by a fraction of a px
        assert row_b == pytest.approx(row_a, abs=0.3)
        assert row_c - row_a == pytest.approx(34 * 0.6, abs=0.6)
        assert col_c == pytest.approx(col_a, abs=0.3)
    # the square is symmetric, so its centre of mass is the sprite centre
    col, row = _centre_of_mass(_one(SQUARE, x=0.0, y=1.0))
    assert (col, row) == (pytest.approx(15.0, abs=0.5), pytest.approx(49.0, abs=0.5))


def test_square_area_at_known_scales() -> None:
    # side √2·R with R = 14·scale: 392 px at scale 1, 98 px at scale 0.5
    for scale in (1.0, 0.5):
        side = math.sqrt(2) * RADIUS * scale
        area = _one(SQUARE, scale=scale).sum().item()
        assert area == pytest.approx(side**2, rel=0.12)
    assert _one(SQUARE).sum().item() == pytest.approx(392, rel=0.05)


def test_area_grows_with_scale_squared() -> None:
    for shape in (SQUARE, ELLIPSE, HEART):
        small = _one(shape, scale=0.5, phi=0.3).sum().item()
        big = _one(shape, scale=1.0, phi=0.3).sum().item()
        assert big / small == pytest.approx(4.0, rel=0.12)
    areas = draw_sprites([HEART] * 6, SCALES, [0.0] * 6, [0.5] * 6, [0.5] * 6).sum(dim=(1, 2, 3))
    assert torch.all(areas[1:] > areas[:-1])


def test_orientation_changes_image_but_keeps_area() -> None:
    for shape in (SQUARE, ELLIPSE, HEART):
        base = _one(shape)
        turned = _one(shape, phi=math.pi / 8)
        assert (base != turned).sum() > 20
        assert turned.sum().item() == pytest.approx(base.sum().item(), rel=0.05)
        # rotation is about the sprite centre: the square's and ellipse's centre stays put
        if shape != HEART:
            assert _centre_of_mass(turned) == pytest.approx(_centre_of_mass(base), abs=0.3)


def test_ellipse_turns_counter_clockwise_from_horizontal() -> None:
    flat = _one(ELLIPSE)
    rows, cols = torch.nonzero(flat, as_tuple=True)
    assert cols.max() - cols.min() > 1.8 * (rows.max() - rows.min())  # lying horizontally
    upright = _one(ELLIPSE, phi=math.pi / 2)
    assert torch.equal(upright, flat.T)  # centre (32, 32) sits between pixels: exact symmetry
    # at φ = π/4 (counter-clockwise on screen) the long axis runs from lower left to upper right
    tilted = _one(ELLIPSE, phi=math.pi / 4)
    # (pixel centres 10 px from the centre (32, 32) along each diagonal; semi-axes 14 and 7)
    assert tilted[25, 39] == 1 and tilted[39, 25] == 1
    assert tilted[25, 25] == 0 and tilted[39, 39] == 0


def test_heart_is_upright_and_rotates() -> None:
    heart = _one(HEART)
    rows = torch.nonzero(heart)[:, 0]
    widths = heart.sum(1)
    assert widths[rows.max()] <= 4  # the tip is at the bottom
    assert widths.argmax() < 32  # the lobes (widest rows) are above the centre
    top = heart[rows.min()]
    assert top[31:33].sum() == 0 and top[:31].sum() > 2 and top[33:].sum() > 2  # two lobes
    upside_down = _one(HEART, phi=math.pi)
    assert (upside_down != heart.flip(0).flip(1)).sum() <= 4


def test_shapes_differ_from_each_other() -> None:
    square, ellipse, heart = (_one(s, phi=0.4) for s in (SQUARE, ELLIPSE, HEART))
    for a, b in ((square, ellipse), (ellipse, heart), (square, heart)):
        union = ((a + b) > 0).sum()
        assert (a != b).sum() > 0.15 * union


def test_every_sprite_stays_inside_the_frame() -> None:
    n = 3 * 40 * 4
    shape = np.repeat(np.arange(3), 160)
    phi = np.tile(np.repeat(ORIENTATIONS, 4), 3)
    x = np.tile([0.0, 0.0, 1.0, 1.0], 120)
    y = np.tile([0.0, 1.0, 0.0, 1.0], 120)
    images = draw_sprites(shape, np.ones(n), phi, x, y)[:, 0]
    border = images.clone()
    border[:, 1:-1, 1:-1] = 0
    assert border.sum() == 0
    assert (images.sum(dim=(1, 2)) > 150).all()  # and nothing vanished


def test_colour_paints_the_sprite() -> None:
    images = draw_sprites([0, 1, 2], [1, 1, 1], [0, 0, 0], [0.5] * 3, [0.5] * 3, colour=[0, 3, 5])
    assert images.shape == (3, 3, 64, 64)
    mono = draw_sprites([0, 1, 2], [1, 1, 1], [0, 0, 0], [0.5] * 3, [0.5] * 3)
    for i, colour in enumerate((0, 3, 5)):
        expected = mono[i] * torch.from_numpy(COLOURS[colour])[:, None, None]
        assert torch.equal(images[i], expected)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="length"):
        draw_sprites([0, 1], [1.0], [0.0], [0.5], [0.5])
    with pytest.raises(ValueError, match="shape"):
        draw_sprites([3], [1.0], [0.0], [0.5], [0.5])
    with pytest.raises(ValueError, match="colour"):
        draw_sprites([0], [1.0], [0.0], [0.5], [0.5], colour=[6])


def test_loader_grayscale() -> None:
    data = load_dataset(DataSpec(dataset="shapes", n_train=600, n_test=200, seed=1))
    assert data.train.shape == (600, 1, 64, 64) and data.test.shape == (200, 1, 64, 64)
    assert data.factor_names == ("shape", "scale", "orientation", "x", "y")
    assert data.train_factors.shape == (600, 5) and data.train_factors.dtype == torch.float32
    assert set(data.train.unique().tolist()) == {0.0, 1.0}
    assert data.train_labels.dtype == torch.int64
    assert torch.equal(data.train_labels.float(), data.train_factors[:, 0])
    f = data.train_factors.double()
    grids = (np.arange(3), SCALES, ORIENTATIONS, POSITIONS, POSITIONS)
    for column, grid in enumerate(grids):
        values = f[:, column].numpy()
        nearest = np.abs(values[:, None] - np.asarray(grid)[None, :]).min(1)
        assert nearest.max() < 1e-6  # factor *values*, on the dSprites grids
        assert len(np.unique(values)) > min(len(grid), 600) * 0.5  # and spread over them
    # each image is the render of its factors
    again = draw_sprites(*f[:50].T.numpy())
    assert (again != data.train[:50]).sum() <= 5


def test_loader_colour_shares_geometry() -> None:
    mono = load_dataset(DataSpec(dataset="shapes", n_train=300, n_test=50, seed=2))
    rgb = load_dataset(DataSpec(dataset="shapes", n_train=300, n_test=50, seed=2, channels=3))
    assert rgb.train.shape == (300, 3, 64, 64)
    assert rgb.factor_names == ("shape", "scale", "orientation", "x", "y", "colour")
    assert torch.equal(rgb.train_factors[:, :5], mono.train_factors)
    assert torch.equal(rgb.train.amax(1, keepdim=True), mono.train)
    colour = rgb.train_factors[:, 5].long()
    assert colour.min() >= 0 and colour.max() <= 5 and len(colour.unique()) == 6
    # the sprite's channels are lit exactly where its colour has a 1
    lit = rgb.train.amax(dim=(2, 3))
    assert torch.equal(lit, torch.from_numpy(COLOURS)[colour])


def test_loader_deterministic_defaults_and_prefix() -> None:
    spec = DataSpec(dataset="shapes", n_train=200, n_test=100, seed=5)
    a, b = load_dataset(spec), load_dataset(spec)
    assert torch.equal(a.train, b.train) and torch.equal(a.test_factors, b.test_factors)
    other = load_dataset(DataSpec(dataset="shapes", n_train=200, n_test=100, seed=6))
    assert not torch.equal(a.train_factors, other.train_factors)
    assert not torch.equal(a.train_factors[:100], a.test_factors)  # different streams
    small = load_dataset(DataSpec(dataset="shapes", n_train=40, n_test=10, seed=5))
    assert torch.equal(small.train, a.train[:40]) and torch.equal(small.test, a.test[:10])
    full = load_dataset(DataSpec(dataset="shapes", seed=5))
    assert full.train.shape[0] == 8192 and full.test.shape[0] == 2048
    assert torch.equal(full.train_factors[:200], a.train_factors)


def _grid_indices(factors: torch.Tensor) -> np.ndarray:
    """Factor values → grid indices (nearest grid value per column)."""
    grids = (np.arange(3), SCALES, ORIENTATIONS, POSITIONS, POSITIONS, np.arange(6))
    values = factors.double().numpy()
    return np.stack([np.abs(values[:, [k]] - np.asarray(grids[k])[None]).argmin(1)
                     for k in range(values.shape[1])], axis=1)


@pytest.mark.parametrize("channels", [None, 3])
def test_the_factor_sampler_renders_the_datasets_own_images(channels) -> None:
    data = load_dataset(DataSpec(dataset="shapes", n_train=120, n_test=10, seed=3,
                                 channels=channels))
    sampler = data.factor_sampler
    assert sampler.names == data.factor_names
    assert sampler.sizes == ((3, 6, 40, 32, 32) if channels is None else (3, 6, 40, 32, 32, 6))
    assert torch.equal(sampler.render(_grid_indices(data.train_factors)), data.train)


def test_the_factor_sampler_draws_the_whole_grid_uniformly() -> None:
    # A chi-square test of each factor's 3 … 40 value counts over 40,000 draws, fixed seed;
    # 5 factors tested at 1e-4 each (Bonferroni), so a correct sampler fails it with
    # probability 5e-4 — and with this fixed seed, never.
    from scipy.stats import chisquare

    sampler = ShapesFactors()
    indices = sampler.sample(40_000, np.random.default_rng(0))
    assert indices.dtype == np.int64 and indices.shape == (40_000, 5)
    for k, size in enumerate(sampler.sizes):
        counts = np.bincount(indices[:, k], minlength=size)
        assert len(counts) == size and counts.min() > 0
        assert chisquare(counts).pvalue > 1e-4, sampler.names[k]


def test_rendering_checks_its_indices() -> None:
    sampler = ShapesFactors()
    with pytest.raises(ValueError, match="indices: expected integer"):
        sampler.render(np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="indices: expected integer"):
        sampler.render(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="sizes"):
        sampler.render(np.array([[0, 0, 40, 0, 0]]))
    assert sampler.render(np.zeros((0, 5), dtype=np.int64)).shape == (0, 1, 64, 64)
