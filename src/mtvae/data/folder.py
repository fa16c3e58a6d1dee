"""The ``folder:PATH`` source: any folder of images with a label table.

``PATH`` is a directory holding the images and ``labels.csv``, or the label table itself (a
``.csv``; ``.tsv`` for tab-separated), whose file names are then relative to the table's
directory, or to ``data.root`` (``--data-root``) when that is set. The table has a file-name
column (``filename``, ``file``, ``image`` or ``path``), one column per task (see
:mod:`mtvae.data.label_table`: an empty cell is a missing label) and optionally a ``split``
column (train/val/test or 0/1/2); without it a seeded 80/10/10 split is drawn (``data.n_val`` /
``data.n_test`` set other sizes). Images (PNG, JPEG, ... grey or colour, any size) are
centre-cropped to a square and resized to ``data.image_size``; they are grey (1 channel) when
every image is, else RGB. They are decoded once into the image cache
(:mod:`mtvae.data.image_cache`) and held as uint8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mtvae.data.arrays import build_dataset
from mtvae.data.byte_images import ByteImages
from mtvae.data.dataset import SPLITS, Dataset
from mtvae.data.image_cache import decoded_images
from mtvae.data.image_files import ImageFormat
from mtvae.data.label_table import read_label_table, table_columns
from mtvae.data.npz import split_parts
from mtvae.errors import UserError
from mtvae.limits import check_memory

TABLE = "labels.csv"


def folder_paths(path: str | Path, root: str | Path | None = None) -> tuple[Path, Path]:
    """``(label table, image directory)`` of ``folder:PATH`` (see the module docstring)."""
    path = Path(path).expanduser()
    if path.is_dir():
        table = path / TABLE
        images = path
    elif path.suffix.lower() in (".csv", ".tsv", ".tab"):
        table, images = path, path.parent
    else:
        what = "does not exist" if not path.exists() else "is neither a directory nor a .csv file"
        raise UserError(f"The folder source's '{path}' {what}. Pass folder:DIR (images plus "
                        f"DIR/{TABLE}) or folder:TABLE.csv; see docs/guides/data.md, 'A folder "
                        "of images'.")
    if root is not None:
        images = Path(root).expanduser()
    if not images.is_dir():
        raise UserError(f"The image directory '{images}' (data.root) is not a directory.")
    return table, images


def load_folder(path: str | Path, image_size: int, root: str | Path | None = None,
                n_val: int | None = None, n_test: int | None = None, seed: int = 0,
                skip_unreadable: bool = False) -> Dataset:
    """The images and labels of ``folder:PATH`` as a :class:`Dataset` of uint8 images."""
    table_path, images = folder_paths(path, root)
    table = read_label_table(table_path)
    _check_images_memory(len(table.files), image_size)
    decoded = decoded_images("folder", images, table.files, ImageFormat(image_size, None),
                             skip_unreadable, f"'{table_path}'",
                             owner=str(table_path.resolve()))  # one cache entry per table
    keep = np.ones(len(table.files), dtype=bool)
    keep[decoded.unreadable] = False
    rows = np.flatnonzero(keep)
    split = None if table.split is None else table.split[rows]
    f = f"'{table_path}'"
    parts = {s: rows[idx] for s, idx in split_parts(split, len(rows), n_val, n_test, seed, f).items()}
    x = ByteImages(torch.from_numpy(decoded.x))
    skipped = f"; {len(decoded.unreadable)} unreadable image(s) skipped" if decoded.unreadable else ""
    dataset = build_dataset(
        "folder", {"all": (x, table.targets)}, {s: ("all", idx) for s, idx in parts.items()},
        table.tasks,
        f"your images in {images} with labels from {table_path.name}: {len(rows):,} images "
        f"resized to {image_size}x{image_size} ({'grey' if x.shape[1] == 1 else 'RGB'}); "
        + "/".join(str(len(parts[s])) for s in SPLITS) + f" train/val/test{skipped}",
    )
    for name in SPLITS:  # empty cells stay missing labels in every split
        idx = torch.from_numpy(parts[name])
        for task, mask in table.masks.items():
            dataset.split(name).masks[task] = torch.from_numpy(mask)[idx]
    return dataset


def check_folder_memory(path: str | Path, image_size: int, root: str | Path | None = None) -> None:
    """Refuse ``folder:PATH`` at ``image_size`` when its images cannot fit in memory, from its
    label table alone (a missing or bad table: the loader says what is wrong)."""
    try:
        files = read_label_table(folder_paths(path, root)[0]).files
    except UserError:
        return
    _check_images_memory(len(files), image_size)


def _check_images_memory(n: int, image_size: int) -> None:
    # RGB uint8 at most: grey images are known only once decoded
    check_memory(n * 3 * image_size**2, f"Loading {n:,} images of {image_size}x{image_size} "
                 "(uint8)", "lower data.image_size, or list fewer images in the table.")


def folder_tasks(path: str | Path) -> list[str]:
    """The task columns of ``folder:PATH``'s table, from its header alone."""
    table, _ = folder_paths(path)
    return table_columns(table)
