"""The ACAI lines renderer and the ``lines`` dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import latentbench.benchmarks.data
from latentbench.benchmarks.data.lines import angle_labels, draw_lines, lines_to_acai
from latentbench.benchmarks.data.registry import DataSpec, load_dataset
from latentbench.metrics import line_images


def _scalar_reference(theta: float, size: int = 32, w: float = 2.0) -> np.ndarray:
    """Our one-image transcription of ``brain-research/acai`` ``lib/data.py`` ``draw_line``.

    Kept deliberately literal (scalar, one scan position at a time, the reference's own
    branches) so that it checks the vectorised renderer rather than re-using its logic.
    """
    m = np.zeros((size, size))
    col0 = row0 = size * 0.5
    col1 = col0 + (col0 - 1) * math.cos(-theta)
    row1 = row0 + (row0 - 1) * math.sin(-theta)
    # (major, minor) start and end; the reference scans rows unless the line is flatter.
    flip = abs(row0 - row1) < abs(col0 - col1)
    a0, a1, b0, b1 = (col0, col1, row0, row1) if flip else (row0, row1, col0, col1)
    if a1 < a0:
        a0, a1, b0, b1 = a1, a0, b1, b0
    b0, b1 = b0 - w / 2, b1 - w / 2
    ds = (b1 - b0) / (a1 - a0) if a1 != a0 else 0.0
    for a in range(int(a0), math.ceil(a1)):
        if a < math.ceil(a0):
            weight = math.ceil(a0) - a0
        elif a > int(a1):
            weight = a1 - int(a1)
        else:
            weight = 1.0
        xs = b0 + (a - a0 - 0.5) * ds
        xe = xs + w
        lo, hi = math.ceil(xs), int(xe)
        hits = [(b, weight) for b in range(lo, hi)]
        if lo != xs:
            hits.append((int(xs), weight * (lo - xs)))
        if hi != xe:
            hits.append((hi, weight * (xe - hi)))
        for b, z in hits:
            if flip:
                m[b, a] += 2 * z
            else:
                m[a, b] += 2 * z
    return np.clip(m - 1.0, -1.0, 1.0)


def _lit(image: torch.Tensor) -> set[tuple[int, int]]:
    """(row, col) of every pixel above the background."""
    return {(int(r), int(c)) for r, c in torch.nonzero(image[0] > -1.0)}


def test_shape_dtype_and_range() -> None:
    images = draw_lines(np.linspace(0.0, 2 * math.pi, 37))
    assert images.shape == (37, 1, 32, 32)
    assert images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert (images == 1.0).any(dim=(1, 2, 3)).all()  # every line has fully covered pixels


def test_accepts_tensor_list_array_and_scalar() -> None:
    angles = [0.3, 2.0, 4.5]
    expected = draw_lines(np.array(angles))
    assert torch.equal(draw_lines(angles), expected)
    assert torch.equal(draw_lines(torch.tensor(angles, dtype=torch.float64)), expected)
    assert torch.equal(draw_lines(2.0), expected[1:2])
    assert draw_lines([]).shape == (0, 1, 32, 32)
    with pytest.raises(ValueError, match="1-D"):
        draw_lines(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        draw_lines([0.0, math.nan])


def test_angle_zero_points_right_from_centre() -> None:
    # θ = 0: end point (31, 16); scan along columns 16 … 30, band rows 15–16, all full weight.
    image = draw_lines([0.0])[0]
    assert _lit(image) == {(r, c) for r in (15, 16) for c in range(16, 31)}
    assert torch.all(image[0, 15:17, 16:31] == 1.0)


def test_angle_half_pi_points_up() -> None:
    # θ = π/2: end point (col 16, row 1) because of sin(−θ); rows 1 … 15, band cols 15–16.
    image = draw_lines([math.pi / 2])[0]
    assert _lit(image) == {(r, c) for r in range(1, 16) for c in (15, 16)}
    rows = torch.nonzero(image[0] > -1.0)[:, 0].float()
    assert rows.mean() < 16 - 5  # the ink sits above the centre: row index decreases


def test_left_and_down_mirror_right_and_up() -> None:
    right, up, left, down = draw_lines([0.0, math.pi / 2, math.pi, 3 * math.pi / 2])
    ink = [(img[0] + 1) / 2 for img in (right, up, left, down)]
    cols = torch.arange(32.0) + 0.5
    col_mass = [(im.sum(0) * cols).sum() / im.sum() for im in ink]
    row_mass = [(im.sum(1) * cols).sum() / im.sum() for im in ink]
    assert col_mass[0] > 23 and col_mass[2] < 9  # right / left of the centre
    assert row_mass[1] < 9 and row_mass[3] > 23  # up / down


def test_hand_computed_pixels_oblique_angle() -> None:
    # cos θ = 0.96, sin θ = 0.28 (7-24-25 triangle): the end point is (30.4, 11.8), flatter
    # than 45°, so the reference scans columns 16 … 30 (the last one at full weight) with a
    # 2-px band along the rows that starts at xs = 15 − (col − 16.5)·7/24 (slope −4.2/14.4).
    # A pixel gets 2·coverage − 1; coverage is the band's overlap with the pixel's interval.
    image = draw_lines([math.atan2(0.28, 0.96)])[0, 0].double()
    expected = {
        # col 16: xs = 15 + 7/48 → rows 15 (cover 41/48), 16 (full), 17 (7/48)
        (15, 16): 17 / 24,
        (16, 16): 1.0,
        (17, 16): -17 / 24,
        # col 20: xs = 15 − 49/48 → rows 13 (1/48), 14 (full), 15 (47/48)
        (13, 20): -23 / 24,
        (14, 20): 1.0,
        (15, 20): 23 / 24,
        # col 30: xs = 15 − 63/16 = 11.0625 → rows 11 (15/16), 12 (full), 13 (1/16)
        (11, 30): 0.875,
        (12, 30): 1.0,
        (13, 30): -0.875,
        # outside the scan: column 15 (before the centre) and 31 (past the end) stay dark
        (16, 15): -1.0,
        (11, 31): -1.0,
        (18, 16): -1.0,
    }
    for (row, col), value in expected.items():
        assert image[row, col].item() == pytest.approx(value, abs=1e-6), (row, col)
    # every column 16 … 30 holds ink 2 (a full 2-px band), and no other column has any
    column_ink = ((image + 1) / 2).sum(0)
    assert torch.allclose(column_ink[16:31], torch.full((15,), 2.0, dtype=torch.float64))
    assert column_ink[:16].sum() == 0 and column_ink[31:].sum() == 0


def test_matches_scalar_reference_transcription() -> None:
    rng = np.random.default_rng(7)
    angles = np.concatenate(
        [
            rng.random(150) * 2 * math.pi,
            np.arange(16) * (math.pi / 8),  # axis-aligned and diagonal: ties and exact zeros
            [-0.4, 7.0, 40.0],  # angles outside [0, 2π) wrap like cos / sin do
        ]
    )
    ours = draw_lines(angles)[:, 0].numpy()
    reference = np.stack([_scalar_reference(t) for t in angles]).astype(np.float32)
    np.testing.assert_array_equal(ours, reference)
    # other image sizes run through the same algorithm
    for size in (16, 48):
        ours = draw_lines(angles[:20], size=size)[:, 0].numpy()
        reference = np.stack([_scalar_reference(t, size) for t in angles[:20]])
        np.testing.assert_array_equal(ours, reference.astype(np.float32))


def test_background_is_exactly_minus_one_away_from_the_segment() -> None:
    angles = np.random.default_rng(1).random(64) * 2 * math.pi
    images = draw_lines(angles)[:, 0].double()
    centres = torch.arange(32, dtype=torch.float64) + 0.5
    col, row = centres[None, :].expand(32, 32), centres[:, None].expand(32, 32)
    for image, theta in zip(images, angles, strict=True):
        d_col, d_row = 15 * math.cos(-theta), 15 * math.sin(-theta)
        t = (((col - 16) * d_col + (row - 16) * d_row) / 225.0).clamp(0.0, 1.0)
        dist = torch.hypot(col - 16 - t * d_col, row - 16 - t * d_row)
        assert torch.all(image[dist > 3.0] == -1.0)  # the reference band is offset ≤ 2.6 px
        assert (image == -1.0).sum() > 32 * 32 - 60


def test_oblique_lines_are_anti_aliased() -> None:
    images = draw_lines([0.3, 1.0, 2.5, 4.0, 5.5])
    partial = (images > -1.0) & (images < 1.0)
    assert partial.flatten(1).sum(1).min() >= 5


def test_ink_is_twice_the_major_axis_extent() -> None:
    # Each scan position carries ink 2 (a 2-px band), over 15·max(|cos|, |sin|) positions plus
    # the reference's full-weight last position: 21.2 px at 45° up to 30 px along an axis.
    angles = np.random.default_rng(2).random(500) * 2 * math.pi
    ink = ((draw_lines(angles) + 1) / 2).sum(dim=(1, 2, 3)).double().numpy()
    major = 30 * np.maximum(np.abs(np.cos(angles)), np.abs(np.sin(angles)))
    assert np.all(ink >= major - 1e-4)
    assert np.all(ink <= major + 2.0 + 1e-4)
    assert 21.0 < ink.min() and ink.max() <= 32.0


def test_angle_labels_bins() -> None:
    theta = np.array([0.0, 0.62, 0.63, math.pi, 2 * math.pi - 1e-12, 2 * math.pi])
    assert angle_labels(theta).tolist() == [0, 0, 1, 5, 9, 9]


def test_loader_sizes_ranges_and_labels() -> None:
    data = load_dataset(DataSpec(dataset="lines", seed=0))
    assert data.train.shape == (8192, 1, 32, 32) and data.test.shape == (2048, 1, 32, 32)
    assert data.factor_names == ("angle",)
    assert data.train_factors.shape == (8192, 1) and data.train_factors.dtype == torch.float32
    assert data.train_labels.dtype == torch.int64
    assert data.train.min() == 0.0 and data.train.max() == 1.0
    for images, labels, factors in (
        (data.train, data.train_labels, data.train_factors),
        (data.test, data.test_labels, data.test_factors),
    ):
        theta = factors[:, 0].double()
        assert theta.min() >= 0 and theta.max() < 2 * math.pi
        assert torch.equal(labels, torch.floor(theta * 10 / (2 * math.pi)).long().clamp(0, 9))
        # background pixels are exactly 0 after the map (x + 1) / 2
        assert ((images == 0).flatten(1).float().mean(1) > 0.9).all()
    counts = torch.bincount(data.train_labels, minlength=10)
    assert counts.min() > 0.8 * 819 and counts.max() < 1.2 * 819  # θ uniform on [0, 2π)
    # the stored images are the renders of the stored angles, mapped to [0, 1]
    rerender = (draw_lines(data.train_factors[:200, 0]) + 1) / 2
    assert (rerender - data.train[:200]).abs().mean() < 1e-4
    acai = lines_to_acai(data.train)
    assert acai.min() == -1.0 and acai.max() == 1.0
    assert lines_to_acai(torch.tensor([0.0, 0.25, 1.0])).tolist() == [-1.0, -0.5, 1.0]


def test_loader_is_deterministic_and_splits_differ() -> None:
    spec = DataSpec(dataset="lines", n_train=300, n_test=100, seed=3)
    a, b = load_dataset(spec), load_dataset(spec)
    assert torch.equal(a.train, b.train) and torch.equal(a.test_factors, b.test_factors)
    other = load_dataset(DataSpec(dataset="lines", n_train=300, n_test=100, seed=4))
    assert not torch.equal(a.train_factors, other.train_factors)
    # train and test come from different streams: no shared angle
    assert not set(a.train_factors[:, 0].tolist()) & set(a.test_factors[:, 0].tolist())
    assert a.train.shape[0] == 300 and a.test.shape[0] == 100
    # a smaller split is a prefix of a larger one with the same seed
    small = load_dataset(DataSpec(dataset="lines", n_train=50, n_test=20, seed=3))
    assert torch.equal(small.train_factors, a.train_factors[:50])
    assert torch.equal(small.test, a.test[:20])


def test_the_dataset_and_the_acai_metrics_share_one_renderer():
    # The public name of ARCHITECTURE.md, the dataset's and the metrics' are one function.
    assert latentbench.benchmarks.data.draw_lines is draw_lines is line_images.draw_lines
