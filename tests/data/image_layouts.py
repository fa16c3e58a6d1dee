"""Small image datasets written in the layouts the celeba and folder sources read.

``write_celeba`` writes CelebA's published layout (the 178x218 JPEGs, the attribute file with
its count line, names line and ``-1``/`` 1`` columns separated by double spaces, the partition
file); ``write_folder`` a folder of PNGs and JPEGs of several sizes with a ``labels.csv`` that
has empty cells. Each image's brightness encodes its row, so a test can tell which image it got.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()


def face(i: int, size=(178, 218)) -> np.ndarray:
    """An RGB image whose centre square is grey level ``20 + 8 i`` and whose border (outside
    CelebA's 148 crop) is pure red, so a decoded image shows whether the crop happened."""
    w, h = size
    pixels = np.zeros((h, w, 3), dtype=np.uint8)
    pixels[..., 0] = 255
    top, left = (h - 148) // 2, (w - 148) // 2
    pixels[top:top + 148, left:left + 148] = 20 + 8 * i
    return pixels


def celeba_values(n: int) -> np.ndarray:
    """The -1/1 attribute values of image ``i``: seeded, Smiling (31) = 1 for even ``i``."""
    values = np.random.default_rng(0).choice([-1, 1], size=(n, len(ATTRIBUTES)))
    values[:, ATTRIBUTES.index("Smiling")] = np.where(np.arange(n) % 2 == 0, 1, -1)
    return values


def write_celeba(root: Path, n: int = 24, partition=(16, 4, 4)) -> Path:
    """CelebA's layout under ``root`` with ``n`` images split ``partition`` (train/val/test)."""
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    values = celeba_values(n)
    lines = [str(n), " ".join(ATTRIBUTES) + " "]  # the real header ends in a space
    split = np.repeat([0, 1, 2], partition)
    parts = []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(face(i)).save(images / name, quality=95)
        lines.append(name + " " + " ".join(f"{v:2d}" for v in values[i]))  # "-1  1  1 -1"
        parts.append(f"{name} {split[i]}")
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return root


def write_folder(root: Path, n: int = 24, grey: bool = False) -> Path:
    """``n`` images (PNG and JPEG, several sizes; grey when ``grey``) and ``labels.csv`` with
    columns kind (0/1), count (0..2), size (decimals), colour (text); every fifth row leaves
    kind empty and every seventh size."""
    (root / "sub").mkdir(parents=True)
    lines = ["filename,kind,count,size,colour"]
    for i in range(n):
        name = f"sub/img{i:02d}.png" if i % 3 == 0 else f"img{i:02d}.{'jpg' if i % 2 else 'png'}"
        side = (20 + 2 * i, 24 + i)  # any size, not square
        pixels = np.full((side[1], side[0]), 10 * i % 250, dtype=np.uint8)  # n <= 25: 10 i
        image = Image.fromarray(pixels, mode="L")
        (image if grey else image.convert("RGB")).save(root / name)
        kind = "" if i % 5 == 4 else str(i % 2)
        size = "" if i % 7 == 6 else f"{i / 4:.2f}"
        lines.append(f"{name},{kind},{i % 3},{size},{('red', 'green', 'blue')[i % 3]}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root
