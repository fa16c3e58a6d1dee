"""The built-in ``shapes`` source: procedural dSprites-like images with known factors.

Each image is one white shape (square, ellipse or triangle) on a black background, drawn from
five independent factors: shape, scale, orientation and x/y position. Rendering is analytic
and vectorized: every pixel's value is its coverage ``clip(0.5 - d, 0, 1)``, where ``d`` is the
signed distance (in pixels, negative inside) from the pixel centre to the shape's outline. This
gives anti-aliased edges, and the summed intensity equals the shape's area up to a small error
at corners, so scale is faithfully reflected in the ink.

Geometry (all fractions of the image side, so every image size draws the same scene):

* scale is the circumradius ``R`` of the shape (the radius of the smallest circle around its
  centre that contains it), 6 levels evenly spaced in ``[0.14, 0.24]``. The square has half
  side ``R / sqrt(2)``, the ellipse semi-axes ``R`` and ``R / 2`` (aspect 2:1) and the
  triangle is equilateral with side ``R * sqrt(3)``.
* orientation is a counter-clockwise rotation (as displayed) by ``k * 90 / 16`` degrees,
  ``k = 0..15``, covering ``[0, 90)``: the square repeats every 90 degrees, the ellipse every
  180 and the triangle every 120, so all 16 angles give distinct images for every shape.
* x and y are the centre, 16 levels evenly spaced in ``[0.32, 0.68]``; x runs left to right
  and y top to bottom (row index), like image coordinates.

Because the circumradius bounds the shape at any rotation, the largest shape at an extreme
position keeps a gap of ``0.32 - 0.24 = 0.08`` of the side to the border, at least one pixel
for any supported size (``>= 16``), so no shape is ever clipped.
"""

from __future__ import annotations

import numpy as np
import torch

from mtvae.data.dataset import SPLITS, Dataset, Split
from mtvae.data.tasks import TaskSpec

FACTOR_NAMES = ("shape", "scale", "orientation", "x", "y")
FACTOR_SIZES = (3, 6, 16, 16, 16)
SHAPE_NAMES = ("square", "ellipse", "triangle")

SCALE_RANGE = (0.14, 0.24)  # circumradius, fraction of the image side
POSITION_RANGE = (0.32, 0.68)  # centre, fraction of the image side
ORIENTATION_SPAN_DEG = 90.0  # the square is 90-degree symmetric, so stop short of 90
MIN_IMAGE_SIZE = 16

# Pixels per rendering chunk: bounds the temporaries to a few MB each whatever n is.
_CHUNK_PIXELS = 1 << 20


def sample_factors(n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` factor vectors uniformly over the levels: ``(n, 5)`` int64.

    Rows are drawn in order from ``rng``, so the first ``k`` rows of a draw of ``n > k`` equal
    a draw of ``k`` from the same generator state.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return rng.integers(0, FACTOR_SIZES, size=(n, len(FACTOR_SIZES)), dtype=np.int64)


def factor_values(factors: np.ndarray) -> dict[str, np.ndarray]:
    """Physical meaning of factor levels ``(n, 5)``.

    Returns ``shape`` (index into :data:`SHAPE_NAMES`), ``scale`` (circumradius as a fraction
    of the image side), ``orientation_deg`` and ``orientation_rad`` (counter-clockwise as
    displayed), and ``x``/``y`` (centre as a fraction of the image side; y from the top).
    """
    f = _check_factors(factors)
    angle_deg = f[:, 2] * (ORIENTATION_SPAN_DEG / FACTOR_SIZES[2])
    return {
        "shape": f[:, 0].copy(),
        "scale": np.linspace(*SCALE_RANGE, FACTOR_SIZES[1])[f[:, 1]],
        "orientation_deg": angle_deg,
        "orientation_rad": np.deg2rad(angle_deg),
        "x": np.linspace(*POSITION_RANGE, FACTOR_SIZES[3])[f[:, 3]],
        "y": np.linspace(*POSITION_RANGE, FACTOR_SIZES[4])[f[:, 4]],
    }


def render(factors: np.ndarray, image_size: int = 32) -> np.ndarray:
    """Render factor vectors ``(n, 5)`` into images ``(n, image_size, image_size)`` float32.

    Background is 0, the shape's interior 1, and boundary pixels hold their coverage.
    """
    f = _check_factors(factors)
    _check_image_size(image_size)
    out = np.empty((len(f), image_size, image_size), dtype=np.float32)
    chunk = max(1, _CHUNK_PIXELS // (image_size * image_size))
    for start in range(0, len(f), chunk):
        out[start : start + chunk] = _render_chunk(f[start : start + chunk], image_size)
    return out


# The split sizes shapes generates where a config sets none.
DEFAULT_SIZES = {"train": 20000, "val": 2000, "test": 2000}


def load_shapes(
    n_train: int = DEFAULT_SIZES["train"],
    n_val: int = DEFAULT_SIZES["val"],
    n_test: int = DEFAULT_SIZES["test"],
    image_size: int = 32,
    seed: int = 0,
) -> Dataset:
    """Generate the ``shapes`` dataset with tasks ``shape`` (3 classes) and regressions
    ``scale``, ``orientation``, ``x``, ``y`` (target ``level / (size - 1)`` in ``[0, 1]``).

    Each split draws from its own stream seeded by ``(seed, split index)``, so val and test do
    not depend on ``n_train``, and a smaller train split is a prefix of a larger one.
    """
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if n < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")
    _check_image_size(image_size)
    sizes = dict(zip(SPLITS, (n_train, n_val, n_test), strict=True))
    splits = {
        name: _make_split(sizes[name], image_size, np.random.SeedSequence([seed, i]))
        for i, name in enumerate(SPLITS)
    }
    return Dataset(
        name="shapes",
        **splits,
        tasks=_tasks(),
        factor_names=list(FACTOR_NAMES),
        factor_sizes=list(FACTOR_SIZES),
        description=(
            f"procedural dSprites-like shapes, {image_size}x{image_size} grayscale: "
            "square/ellipse/triangle with 6 scales, 16 orientations in [0, 90) deg and 16x16 "
            "positions, all inside the frame"
        ),
    )


def _tasks() -> dict[str, TaskSpec]:
    tasks = {"shape": TaskSpec("shape", "categorical", 3, "which shape: " + ", ".join(SHAPE_NAMES))}
    for name, size in zip(FACTOR_NAMES[1:], FACTOR_SIZES[1:], strict=True):
        tasks[name] = TaskSpec(name, "regression", description=f"{name} level / {size - 1}")
    return tasks


def _make_split(n: int, image_size: int, seed_seq: np.random.SeedSequence) -> Split:
    factors = sample_factors(n, np.random.default_rng(seed_seq))
    x = torch.from_numpy(render(factors, image_size)).unsqueeze(1)  # (N, 1, H, W)
    targets = {"shape": torch.from_numpy(factors[:, 0].copy())}
    for j, (name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES, strict=True)):
        if j > 0:  # every factor but shape is an ordered level: regress it scaled to [0, 1]
            targets[name] = torch.from_numpy((factors[:, j] / (size - 1)).astype(np.float32))
    masks = {name: torch.ones(n, dtype=torch.bool) for name in targets}
    return Split(x=x, targets=targets, masks=masks, factors=torch.from_numpy(factors))


def _render_chunk(f: np.ndarray, size: int) -> np.ndarray:
    """Coverage images ``(n, size, size)`` for one chunk of factor rows."""
    values = factor_values(f)
    out = np.empty((len(f), size, size), dtype=np.float32)
    # One pass per shape over just its rows, so no pixel is run through three distance functions.
    for k, sdf in enumerate(_SDFS):
        sel = np.flatnonzero(values["shape"] == k)
        if len(sel):
            u, w, radius = _shape_frame({name: v[sel] for name, v in values.items()}, size)
            out[sel] = np.clip(np.float32(0.5) - sdf(u, w, radius), 0.0, 1.0)
    return out


def _shape_frame(values: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, ...]:
    """Pixel centres in each shape's own frame ``u, w`` ``(n, H, W)`` and its radius ``(n, 1, 1)``.

    Everything is in pixels; pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``.
    """
    grid = np.arange(size, dtype=np.float32) + np.float32(0.5)
    cx = (values["x"] * size).astype(np.float32)[:, None, None]
    cy = (values["y"] * size).astype(np.float32)[:, None, None]
    cos = np.cos(values["orientation_rad"]).astype(np.float32)[:, None, None]
    sin = np.sin(values["orientation_rad"]).astype(np.float32)[:, None, None]
    dx = grid[None, None, :] - cx  # (n, 1, W)
    dy = cy - grid[None, :, None]  # (n, H, 1); flipped so w points up as displayed
    # Rotating the points by -angle is rotating the shape by +angle (counter-clockwise).
    u = cos * dx + sin * dy  # (n, H, W)
    w = cos * dy - sin * dx
    radius = (values["scale"] * size).astype(np.float32)[:, None, None]
    return u, w, radius


def _sdf_square(u: np.ndarray, w: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Exact signed distance to an axis-aligned square of circumradius ``radius``."""
    half = radius * np.float32(np.sqrt(0.5))
    qx, qy = np.abs(u) - half, np.abs(w) - half
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)


def _sdf_ellipse(u: np.ndarray, w: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Signed distance to a 2:1 ellipse (semi-axes ``radius`` along u, ``radius / 2`` along w).

    Uses the first-order estimate ``f / |grad f|`` of the implicit function
    ``f = |p / r| - 1``: exact on the outline and accurate within the one-pixel band that
    anti-aliasing looks at, much cheaper than the exact (quartic) distance.
    """
    a, b = radius, radius * np.float32(0.5)
    k0 = np.hypot(u / a, w / b)
    k1 = np.hypot(u / (a * a), w / (b * b))
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = k0 * (k0 - 1) / k1
    # At the exact centre the estimate is 0/0; the centre is deep inside.
    return np.where(k1 > 0, dist, -b)


def _sdf_triangle(u: np.ndarray, w: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Exact signed distance to an equilateral triangle of circumradius ``radius``, apex up.

    Folds the plane by the triangle's symmetries onto one edge, then measures to that edge
    segment (after Inigo Quilez's ``sdEquilateralTriangle``).
    """
    k = np.float32(np.sqrt(3.0))
    half_side = radius * (k / 2)
    px = np.abs(u) - half_side
    py = w + half_side / k  # the base sits at w = -inradius
    fold = px + k * py > 0
    px, py = np.where(fold, (px - k * py) / 2, px), np.where(fold, (-k * px - py) / 2, py)
    px = px - np.clip(px, -2 * half_side, 0)
    return -np.hypot(px, py) * np.sign(py)


_SDFS = (_sdf_square, _sdf_ellipse, _sdf_triangle)  # indexed like SHAPE_NAMES


def _check_factors(factors: np.ndarray) -> np.ndarray:
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"factors must have shape (n, {len(FACTOR_NAMES)}), got {f.shape}")
    if not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"factors must be integer levels, got dtype {f.dtype}")
    if len(f) and ((f < 0).any() or (f >= np.array(FACTOR_SIZES)).any()):
        sizes = ", ".join(f"{n}: {s}" for n, s in zip(FACTOR_NAMES, FACTOR_SIZES, strict=True))
        raise ValueError(f"factor levels out of range; levels run from 0 to size - 1 ({sizes})")
    return f.astype(np.int64, copy=False)


def _check_image_size(image_size: int) -> None:
    if not isinstance(image_size, int | np.integer):
        raise ValueError(f"image_size must be an integer, got {image_size!r}")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}")
