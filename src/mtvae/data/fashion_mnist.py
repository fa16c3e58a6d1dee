"""The ``fashion-mnist`` source: Zalando's Fashion-MNIST from the standard IDX files.

The four files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``; plain or gzipped) are read from
``data.root``, by default ``/usr/share/datasets/fashion-mnist`` where Debian's
``dataset-fashion-mnist`` package installs them. 60,000 training images (of which a seeded
5,000 form the validation split) and the official 10,000 test images, 28x28 grayscale, scaled
to ``[0, 1]`` and zero-padded to ``data.image_size`` (32 by default, so the default conv body's
four stride-2 layers divide the side; 28 keeps the native size).

Tasks: ``class`` (10 classes), ``group`` (4 coarse groups, :data:`GROUPS`), and the measured
silhouette of each image as regressions: ``ink`` (mean intensity), ``width`` and ``height``
(bounding box of pixels brighter than 0.1, px), z-scored with the training pool's statistics.
The measurements are computed once per set of files and cached.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtvae.data.arrays import build_dataset, measured_tasks, to_tensor_images, train_val_parts
from mtvae.data.cache import cached_arrays, fingerprint
from mtvae.data.dataset import Dataset
from mtvae.data.idx import file_sha256, find_idx, idx_bytes, idx_header, load_image_label_pair
from mtvae.data.morphometrics import MEASUREMENT_VERSION, silhouette
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError
from mtvae.limits import check_images_memory

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Coarse groups by what the item is worn on: upper-body garments, garments covering the legs
# (trousers and dresses), footwear, and bags.
GROUPS = ("tops", "trousers & dresses", "footwear", "bags")
CLASS_TO_GROUP = np.array([0, 1, 0, 1, 0, 2, 0, 2, 3, 2], dtype=np.int64)
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
N_VAL = 5000
SILHOUETTE_THRESHOLD = 0.1
UNITS = {"ink": "mean intensity (share of the frame's ink)", "width": "bounding-box width in px",
         "height": "bounding-box height in px"}


def find_files(root: Path, source: str, help_text: str) -> list[Path]:
    """The four IDX files in ``root`` (gzipped or plain) or a UserError saying how to get them."""
    paths = [find_idx(root, stem) for stem in FILES]
    if all(paths):
        return paths  # type: ignore[return-value]
    missing = [stem for stem, p in zip(FILES, paths, strict=True) if p is None]
    where = f"'{root}' does not exist" if not root.is_dir() else f"'{root}' lacks {', '.join(missing)}"
    raise UserError(f"The {source} IDX files were not found: {where} (looked for "
                    f"<name>.gz or <name> for each of {', '.join(FILES)}). {help_text}")


def check_idx_images_memory(train: Path, test: Path, image_size: int, source: str,
                            root: Path) -> None:
    """Refuse IDX image files whose images, decoded as float32 at ``image_size``, cannot fit,
    from their headers alone, before any data is read."""
    counts = [header[1][0] for header in map(idx_header, (train, test))
              if header is not None and len(header[1]) == 3]
    n = sum(counts)
    if n:
        check_images_memory(
            n, (1, image_size, image_size),
            f"Loading the {n:,} {source} images of '{root}' as float32 at "
            f"{image_size}x{image_size}",
            f"lower data.image_size (32 is the default, 28 the native size), or check that "
            f"the IDX files in '{root}' are the ones you mean (their headers declare {n:,} "
            "images).",
            raw_bytes=idx_bytes(train) + idx_bytes(test))


def memory_check(root: str | Path | None, image_size: int) -> None:
    """Refuse Fashion-MNIST at ``image_size`` when its images cannot fit in memory, from the
    IDX headers in ``root`` alone (missing files: the loader says so)."""
    root = Path(root).expanduser() if root else DEFAULT_ROOT
    train, test = find_idx(root, FILES[0]), find_idx(root, FILES[2])
    if train and test:
        check_idx_images_memory(train, test, image_size, "Fashion-MNIST", root)


def load_fashion_mnist(
    root: str | Path | None = None, image_size: int = 32, n_val: int | None = None, seed: int = 0
) -> Dataset:
    """Load Fashion-MNIST from ``root`` (default :data:`DEFAULT_ROOT`) as a :class:`Dataset`."""
    memory_check(root, image_size)
    root = Path(root).expanduser() if root else DEFAULT_ROOT
    paths = find_files(root, "Fashion-MNIST", (
        "Install them with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; "
        f"`make install` does this when it can), which puts them in {DEFAULT_ROOT}, or "
        "download the four files from https://github.com/zalandoresearch/fashion-mnist "
        "and pass --data-root DIR (config data.root)."))
    train_x, train_y = load_image_label_pair(paths[0], paths[1], 10)
    test_x, test_y = load_image_label_pair(paths[2], paths[3], 10)
    n_val = N_VAL if n_val is None else n_val
    if not 1 <= n_val < len(train_x):
        raise UserError(f"data.n_val={n_val} must be between 1 and {len(train_x) - 1} for "
                        f"Fashion-MNIST's {len(train_x)} training images.")
    key = fingerprint(*(file_sha256(p) for p in paths), MEASUREMENT_VERSION,
                      f"silhouette:{SILHOUETTE_THRESHOLD}")
    both = np.concatenate([train_x, test_x])
    measured = cached_arrays("fashion-mnist-silhouette", key,
                             lambda: silhouette(both / np.float32(255), SILHOUETTE_THRESHOLD))
    labels = np.concatenate([train_y, test_y])
    reference = np.arange(len(train_x))  # statistics of the training pool only
    targets, specs = measured_tasks(measured, reference, UNITS)
    targets = {"class": labels, "group": CLASS_TO_GROUP[labels], **targets}
    tasks = {
        "class": TaskSpec("class", "categorical", 10, "item: " + ", ".join(CLASS_NAMES)),
        "group": TaskSpec("group", "categorical", 4, "coarse group: " + "; ".join(
            f"{g} ({', '.join(c for c, k in zip(CLASS_NAMES, CLASS_TO_GROUP, strict=True) if k == i)})"
            for i, g in enumerate(GROUPS))),
        **specs,
    }
    x = to_tensor_images(both, image_size, "fashion-mnist")
    n = len(train_x)
    pools = {"all": (x, targets)}
    parts = train_val_parts(n, len(test_x), n_val, seed)
    parts = {"train": ("all", parts["train"]), "val": ("all", parts["val"]),
             "test": ("all", parts["test"] + n)}
    return build_dataset("fashion-mnist", pools, parts, tasks, (
        f"Fashion-MNIST from {root}: 28x28 grayscale zero-padded to {image_size}x{image_size}; "
        f"{len(parts['train'][1])}/{n_val}/{len(test_x)} train/val/test"))
