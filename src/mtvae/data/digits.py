"""The ``digits`` source: scikit-learn's 1,797 handwritten 8x8 digits (UCI optdigits).

Pixel values 0-16 are scaled to ``[0, 1]``; each pixel is repeated ``data.image_size / 8``
times along each side (nearest-neighbour upsampling, 32x32 by default) so the same conv body
serves every source. Split by seed into 1,397 / 200 / 200. Tasks: ``digit`` (10 classes) and
``parity`` (binary, 1 = odd).
"""

from __future__ import annotations

import numpy as np
import torch

from mtvae.data.arrays import build_dataset, holdout_parts
from mtvae.data.dataset import SPLITS, Dataset
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError
from mtvae.limits import check_images_memory

N_VAL, N_TEST = 200, 200
N_IMAGES = 1797  # scikit-learn's digits


def memory_check(image_size: int) -> None:
    """Refuse the digits upsampled to ``image_size`` when they cannot fit in memory."""
    check_images_memory(N_IMAGES, (1, image_size, image_size),
                        f"Upsampling the {N_IMAGES:,} digits to float32 {image_size}x{image_size} "
                        "images", "lower data.image_size (32 is the default).")


def load_digits(
    image_size: int = 32, n_val: int | None = None, n_test: int | None = None, seed: int = 0
) -> Dataset:
    """Load scikit-learn's 8x8 digits, upsampled to ``image_size``."""
    from sklearn.datasets import load_digits as sklearn_digits

    if image_size % 8:
        raise UserError(
            f"data.image_size={image_size} is not a multiple of 8; the 8x8 digits are "
            "upsampled by a whole factor, e.g. 16 or 32 (default)."
        )
    memory_check(image_size)
    bunch = sklearn_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (N, 8, 8)
    factor = image_size // 8
    x = torch.from_numpy(images).repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    labels = bunch.target.astype(np.int64)
    n_val = N_VAL if n_val is None else n_val
    n_test = N_TEST if n_test is None else n_test
    if n_val + n_test >= len(labels):
        raise UserError(f"data.n_val + data.n_test = {n_val + n_test} leaves no training "
                        f"images of the {len(labels)} digits.")
    parts = holdout_parts(len(labels), n_val, n_test, seed)
    tasks = {
        "digit": TaskSpec("digit", "categorical", 10, "which digit, 0-9"),
        "parity": TaskSpec("parity", "binary", description="1 when the digit is odd"),
    }
    targets = {"digit": labels, "parity": labels % 2}
    sizes = "/".join(str(len(parts[s])) for s in SPLITS)
    return build_dataset(
        "digits", {"all": (x.unsqueeze(1).contiguous(), targets)},
        {s: ("all", idx) for s, idx in parts.items()}, tasks,
        f"scikit-learn's 8x8 digits upsampled x{factor} to {image_size}x{image_size}; "
        f"{sizes} train/val/test",
    )
