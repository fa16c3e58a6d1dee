"""The ``celeba:DIR`` source: CelebA in its published layout.

``DIR`` holds the files as distributed (Liu et al. 2015)::

    img_align_celeba/000001.jpg ...   the aligned 178x218 JPEGs
    list_attr_celeba.txt              a count line, the 40 attribute names, then one line per
                                      image: its file name and 40 values of -1 or 1
    list_eval_partition.txt           one line per image: its file name and 0 (train), 1 (val)
                                      or 2 (test)

Each attribute is a binary task under its own name (``Smiling``, ``Male``, ...); the official
partition gives the splits (162,770 / 19,867 / 19,962), each in a seeded order so that
``data.n_train`` / ``n_val`` / ``n_test`` take random subsets of it. Images are centre-cropped to
148x148 and resized to ``data.image_size`` (64 by default), in RGB, as the VAE literature does;
they are decoded once into the image cache (:mod:`mtvae.data.image_cache`) and held as uint8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mtvae.data.arrays import build_dataset, split_rng
from mtvae.data.byte_images import ByteImages
from mtvae.data.dataset import SPLITS, Dataset
from mtvae.data.image_cache import decoded_images
from mtvae.data.image_files import ImageFormat
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError
from mtvae.limits import check_memory

IMAGES, ATTRIBUTES, PARTITION = "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"
# The attributes a study learns when it names none (SourceEntry.default_tasks; the celeba preset's
# five): frequent and varied ones (expression, identity traits, accessories) that a latent of
# modest width holds as one block each, where all 40 would need 80 dimensions of task blocks.
DEFAULT_ATTRIBUTES = ("Smiling", "Male", "Eyeglasses", "Young", "Wearing_Hat")
CROP = 148  # the centre square of the 178x218 aligned faces most VAE papers train on
DEFAULT_SIDE = 64
LAYOUT = (f"DIR/{IMAGES}/*.jpg, DIR/{ATTRIBUTES} and DIR/{PARTITION}, as CelebA is "
          "distributed (see docs/guides/data.md, 'CelebA')")


def load_celeba(root: str | Path, image_size: int, sizes: dict[str, int | None], seed: int = 0,
                skip_unreadable: bool = False) -> Dataset:
    """CelebA from ``root`` as a :class:`Dataset` of uint8 images (see the module docstring).

    ``sizes`` maps train/val/test to a split size (None: the whole official split); only the
    images of those prefixes of the seeded orders are read into memory.
    """
    root = Path(root).expanduser()
    names, attributes, values = read_attributes(root)
    partition = read_partition(root, names)
    if not _file(root, IMAGES).is_dir():
        raise UserError(f"'{root / IMAGES}' is not a directory. celeba:DIR expects {LAYOUT}.")
    check_celeba_memory(root, image_size, sizes, n=len(names))
    decoded = decoded_images("celeba", root / IMAGES, names,
                             ImageFormat(image_size, 3, CROP), skip_unreadable, f"'{root / ATTRIBUTES}'")
    keep = np.ones(len(names), dtype=bool)
    keep[decoded.unreadable] = False
    parts = {}
    for i, split in enumerate(SPLITS):
        idx = np.flatnonzero((partition == i) & keep)
        if not len(idx):
            raise UserError(f"'{root / PARTITION}' puts no (readable) image in the {split} split; "
                            "use the partition file as distributed.")
        idx = idx[split_rng(seed, i).permutation(len(idx))]  # a prefix is a random subset
        n = sizes.get(split)
        parts[split] = ("all", idx[:n])  # n beyond the split: data.n_* is refused after
    tasks = {a: TaskSpec(a, "binary", description=f"CelebA attribute {a} (1: present)")
             for a in attributes}
    targets = {a: (values[:, j] > 0).astype(np.float32) for j, a in enumerate(attributes)}
    x = ByteImages(torch.from_numpy(decoded.x))
    skipped = f"; {len(decoded.unreadable)} unreadable image(s) skipped" if decoded.unreadable else ""
    return build_dataset(
        "celeba", {"all": (x, targets)}, parts, tasks,
        f"CelebA from {root}: {len(names):,} images centre-cropped to {CROP} and resized to "
        f"{image_size}x{image_size} RGB, 40 binary attributes; official partition "
        + "/".join(f"{int((partition == i).sum()):,}" for i in range(3)) + f" train/val/test{skipped}",
    )


def attribute_names(root: str | Path) -> list[str]:
    """The 40 attribute names (the tasks), from the header of the attribute file alone."""
    path = _file(Path(root).expanduser(), ATTRIBUTES)
    with open(path, encoding="utf-8", errors="replace") as fh:
        fh.readline()
        return fh.readline().split()


def read_attributes(root: Path) -> tuple[list[str], list[str], np.ndarray]:
    """File names, attribute names and the ``(N, 40)`` -1/1 values of ``list_attr_celeba.txt``."""
    path = _file(root, ATTRIBUTES)
    lines = _lines(path)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise UserError(f"'{path}' does not start with a count line and a line of attribute "
                        "names; use list_attr_celeba.txt as distributed.")
    count, attributes = int(lines[0]), lines[1].split()
    rows = [line.split() for line in lines[2:] if line.strip()]
    if len(rows) != count:
        raise UserError(f"'{path}' says it lists {count:,} images but lists {len(rows):,}; the "
                        "file is truncated or edited: use it as distributed.")
    for number, row in enumerate(rows, start=3):
        if len(row) != len(attributes) + 1:
            raise UserError(f"'{path}' line {number} has {len(row) - 1} values for "
                            f"{len(attributes)} attributes: expected 'FILE' and "
                            f"{len(attributes)} values of -1 or 1.")
    if not rows:
        raise UserError(f"'{path}' lists no images.")
    names = [row[0] for row in rows]
    _check_unique(names, path)
    for number, row in enumerate(rows, start=3):
        if any(v not in ("-1", "1") for v in row[1:]):
            raise UserError(f"'{path}' line {number} holds a value other than -1 or 1; every "
                            "attribute value must be -1 (absent) or 1 (present).")
    return names, attributes, np.array([row[1:] for row in rows], dtype=np.int8)


def read_partition(root: Path, names: list[str]) -> np.ndarray:
    """The official split of each of ``names`` (0 train, 1 val, 2 test)."""
    path = _file(root, PARTITION)
    split: dict[str, int] = {}
    for number, line in enumerate(_lines(path), start=1):
        row = line.split()
        if not row:
            continue
        if len(row) != 2 or row[1] not in ("0", "1", "2"):
            raise UserError(f"'{path}' line {number} is '{line.strip()}'; expected 'FILE 0', "
                            "'FILE 1' or 'FILE 2' (train, val, test).")
        if row[0] in split:
            raise UserError(f"'{path}' names '{row[0]}' twice (line {number}); each image "
                            "belongs to one split.")
        split[row[0]] = int(row[1])
    missing = [n for n in names if n not in split]
    if missing:
        raise UserError(f"'{path}' gives no split for {len(missing):,} image(s) of "
                        f"{ATTRIBUTES}, e.g. {', '.join(missing[:3])}; the two files must list "
                        "the same images.")
    extra = sorted(set(split) - set(names))
    if extra:
        raise UserError(f"'{path}' names {len(extra):,} image(s) that {ATTRIBUTES} does not, e.g. "
                        f"{', '.join(extra[:3])}; the two files must list the same images.")
    return np.array([split[n] for n in names], dtype=np.int8)


def check_celeba_memory(root: str | Path, image_size: int, sizes: dict[str, int | None],
                        n: int | None = None) -> None:
    """Refuse split sizes whose uint8 images cannot fit in memory (the cache itself is
    memory-mapped, so only the splits' copies count)."""
    if n is None:
        try:
            with open(Path(root).expanduser() / ATTRIBUTES, encoding="utf-8") as fh:
                n = int(fh.readline())
        except (OSError, ValueError):
            return  # the loader says what is wrong
    total = sum(n if s is None else min(s, n) for s in sizes.values()) if sizes else n
    check_memory(min(total, n) * 3 * image_size**2,
                 f"Loading {min(total, n):,} CelebA images of {image_size}x{image_size} RGB "
                 "(uint8)", "lower data.n_train / n_val / n_test or data.image_size.")


def _file(root: Path, name: str) -> Path:
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise UserError(f"The CelebA directory '{root}' {what}. Pass celeba:DIR with {LAYOUT}.")
    path = root / name
    if not path.exists():
        raise UserError(f"'{root}' has no {name}. celeba:DIR expects {LAYOUT}.")
    if name != IMAGES and not path.is_file():
        raise UserError(f"'{path}' is not a file. celeba:DIR expects {LAYOUT}.")
    return path


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"Cannot read '{path}': {exc}. Use the file as distributed.") from None


def _check_unique(names: list[str], path: Path) -> None:
    seen: set[str] = set()
    for number, name in enumerate(names, start=3):
        if name in seen:
            raise UserError(f"'{path}' names the image '{name}' twice (line {number}); each "
                            "image must appear once.")
        seen.add(name)

