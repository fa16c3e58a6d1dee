"""Behaviour of the procedural ``shapes`` source: determinism, geometry, tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtvae.data.dataset import Dataset
from mtvae.data.shapes import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    SHAPE_NAMES,
    factor_values,
    load_shapes,
    render,
    sample_factors,
)

N_SHAPES, N_SCALES, N_ORIENT, N_POS = FACTOR_SIZES[:4]


def _grid(**fixed: int) -> np.ndarray:
    """Factor rows sweeping the single factor passed as -1 while the others stay fixed."""
    base = {"shape": 0, "scale": 3, "orientation": 2, "x": 7, "y": 7, **fixed}
    (swept,) = [name for name, level in base.items() if level == -1]
    j = FACTOR_NAMES.index(swept)
    rows = np.tile([base[name] for name in FACTOR_NAMES], (FACTOR_SIZES[j], 1))
    rows[:, j] = np.arange(FACTOR_SIZES[j])
    return rows.astype(np.int64)


def _centroid(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intensity-weighted centre (x, y) in pixels, pixel centres at index + 0.5."""
    pos = np.arange(images.shape[-1]) + 0.5
    mass = images.sum((1, 2))
    return (images.sum(1) * pos).sum(1) / mass, (images.sum(2) * pos).sum(1) / mass


@pytest.fixture(scope="module")
def small() -> Dataset:
    return load_shapes(n_train=40, n_val=12, n_test=12, seed=3)


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_same_data_and_different_seed_differs(small):
    again = load_shapes(n_train=40, n_val=12, n_test=12, seed=3)
    other = load_shapes(n_train=40, n_val=12, n_test=12, seed=4)
    for name in ("train", "val", "test"):
        assert torch.equal(small.split(name).x, again.split(name).x)
        assert torch.equal(small.split(name).factors, again.split(name).factors)
        assert not torch.equal(small.split(name).factors, other.split(name).factors)


def test_val_test_do_not_depend_on_n_train_and_train_is_a_prefix(small):
    bigger = load_shapes(n_train=90, n_val=12, n_test=12, seed=3)
    assert torch.equal(bigger.val.x, small.val.x)
    assert torch.equal(bigger.test.factors, small.test.factors)
    assert torch.equal(bigger.train.factors[:40], small.train.factors)
    assert torch.equal(bigger.train.x[:40], small.train.x)


def test_splits_are_different_streams(small):
    assert not torch.equal(small.val.factors, small.test.factors)
    assert not torch.equal(small.train.factors[:12], small.val.factors)


def test_sample_factors_levels_in_range_and_all_used():
    f = sample_factors(3000, np.random.default_rng(0))
    assert f.shape == (3000, 5) and f.dtype == np.int64
    for j, size in enumerate(FACTOR_SIZES):
        assert set(np.unique(f[:, j])) == set(range(size))


# --- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 64])
def test_render_dtype_shape_range_and_antialiasing(size):
    x = render(sample_factors(20, np.random.default_rng(1)), image_size=size)
    assert x.shape == (20, size, size) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert ((x > 0.05) & (x < 0.95)).any(axis=(1, 2)).all()  # every image has soft edges


def test_render_of_nothing_is_empty():
    assert render(np.zeros((0, 5), dtype=np.int64)).shape == (0, 32, 32)


@pytest.mark.parametrize("axis", ["x", "y"])
def test_centroid_follows_position(axis):
    for shape in range(N_SHAPES):
        rows = _grid(shape=shape, **{axis: -1})
        cx, cy = _centroid(render(rows))
        got = cx if axis == "x" else cy
        other = cy if axis == "x" else cx
        assert (np.diff(got) > 0.5).all()  # about one pixel per level at 32x32
        assert np.allclose(got, factor_values(rows)[axis] * 32, atol=1.0)
        assert np.ptp(other) < 0.1  # moving along one axis leaves the other alone


def test_area_grows_with_scale_squared():
    for shape in range(N_SHAPES):
        rows = _grid(shape=shape, scale=-1)
        ink = render(rows).sum((1, 2))
        assert (np.diff(ink) > 0).all()
        scale = factor_values(rows)["scale"]
        expected = (scale[-1] / scale[0]) ** 2
        assert ink[-1] / ink[0] == pytest.approx(expected, rel=0.06)


def test_every_orientation_gives_a_distinct_image():
    for shape in range(N_SHAPES):
        for scale in (0, N_SCALES - 1):
            images = render(_grid(shape=shape, scale=scale, orientation=-1)).reshape(N_ORIENT, -1)
            gaps = np.abs(images[:, None] - images[None]).sum(-1)  # L1, (16, 16)
            np.fill_diagonal(gaps, np.inf)
            assert gaps.min() > 0.5, SHAPE_NAMES[shape]


def test_orientation_keeps_area_and_centre():
    for shape in range(N_SHAPES):
        images = render(_grid(shape=shape, scale=N_SCALES - 1, orientation=-1))
        ink = images.sum((1, 2))
        assert np.ptp(ink) / ink.mean() < 0.05
        cx, cy = _centroid(images)
        assert np.ptp(cx) < 0.2 and np.ptp(cy) < 0.2


def test_shapes_are_distinguishable():
    for scale in range(N_SCALES):
        images = render(_grid(shape=-1, scale=scale)).reshape(N_SHAPES, -1)
        gaps = np.abs(images[:, None] - images[None]).sum(-1)
        np.fill_diagonal(gaps, np.inf)
        assert gaps.min() > 1.0


def test_ellipse_axis_follows_orientation_counter_clockwise():
    for scale in (0, N_SCALES - 1):
        rows = _grid(shape=1, scale=scale, orientation=-1)
        images = render(rows)
        pos = np.arange(32) + 0.5
        px, py = np.meshgrid(pos, -pos)  # y up, so angles read counter-clockwise on screen
        mass = images.sum((1, 2))
        dx = px - (images * px).sum((1, 2))[:, None, None] / mass[:, None, None]
        dy = py - (images * py).sum((1, 2))[:, None, None] / mass[:, None, None]
        cov = np.stack(
            [(images * a * b).sum((1, 2)) / mass for a, b in [(dx, dx), (dy, dy), (dx, dy)]]
        )
        # Second moments of the ink: the major axis angle and the 2:1 aspect (variance ratio 4).
        angle = np.degrees(0.5 * np.arctan2(2 * cov[2], cov[0] - cov[1]))
        assert np.allclose(angle, factor_values(rows)["orientation_deg"], atol=3.0)
        spread = np.hypot((cov[0] - cov[1]) / 2, cov[2])
        ratio = (cov[0] + cov[1] + 2 * spread) / (cov[0] + cov[1] - 2 * spread)
        assert ((ratio > 3.3) & (ratio < 4.7)).all()


@pytest.mark.parametrize("size", [16, 32, 64])
def test_largest_shapes_at_the_edges_are_not_clipped(size):
    rows = np.array(
        [
            [shape, N_SCALES - 1, orient, x, y]
            for shape in range(N_SHAPES)
            for orient in range(N_ORIENT)
            for x in (0, N_POS - 1)
            for y in (0, N_POS - 1)
        ]
    )
    x = render(rows, image_size=size)
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    assert border.max() < 1e-6


# --- dataset ---------------------------------------------------------------------------------


def test_dataset_layout_and_tasks(small):
    assert small.name == "shapes" and small.description
    assert small.factor_names == list(FACTOR_NAMES)
    assert small.factor_sizes == list(FACTOR_SIZES)
    assert small.info.image_shape == (1, 32, 32)
    assert small.tasks["shape"].kind == "categorical" and small.tasks["shape"].n_classes == 3
    assert all(small.tasks[name].kind == "regression" for name in FACTOR_NAMES[1:])
    for name in ("train", "val", "test"):
        split = small.split(name)
        assert split.x.dtype == torch.float32 and split.x.shape == (len(split), 1, 32, 32)
        assert split.factors.dtype == torch.int64 and split.factors.shape == (len(split), 5)
        assert all(mask.all() for mask in split.masks.values())
        assert set(split.targets) == set(small.tasks)


def test_targets_match_factors_and_images_match_render(small):
    split = small.train
    factors = split.factors.numpy()
    assert split.targets["shape"].dtype == torch.int64
    assert torch.equal(split.targets["shape"], split.factors[:, 0])
    for j, name in enumerate(FACTOR_NAMES[1:], start=1):
        target = split.targets[name]
        assert target.dtype == torch.float32
        assert 0.0 <= target.min() and target.max() <= 1.0
        expected = factors[:, j] / (FACTOR_SIZES[j] - 1)
        assert np.allclose(target.numpy(), expected)
    assert np.array_equal(split.x[:, 0].numpy(), render(factors))


def test_load_64(small):
    data = load_shapes(n_train=4, n_val=2, n_test=2, image_size=64, seed=3)
    assert data.info.image_shape == (1, 64, 64)
    assert torch.equal(data.val.factors, small.val.factors[:2])  # factors do not depend on size


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_train": 0}, "n_train"),
        ({"n_val": -1}, "n_val"),
        ({"n_test": 0}, "n_test"),
        ({"image_size": 15}, "image_size"),
        ({"image_size": 32.0}, "image_size"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_shapes(**{"n_train": 2, "n_val": 2, "n_test": 2, **kwargs})


@pytest.mark.parametrize(
    "factors",
    [
        np.zeros((3, 4), dtype=np.int64),
        np.array([[3, 0, 0, 0, 0]]),
        np.array([[0, 0, 16, 0, 0]]),
        np.array([[0, -1, 0, 0, 0]]),
        np.zeros((2, 5), dtype=np.float32),
    ],
)
def test_render_rejects_bad_factors(factors):
    with pytest.raises(ValueError, match="factor"):
        render(factors)
