"""Decoding one image file (PNG, JPEG, ... through Pillow) into a square uint8 array.

Every image is centre-cropped to a square (``crop`` pixels a side, or the largest square when
``crop`` is None or larger than the image) and resized to ``side`` with Pillow's antialiased
bilinear filter, in grey (1 channel) or RGB (3). 16-bit grey images (microscopy) are scaled to
8 bits (÷ 257); palette, alpha and CMYK images are converted to RGB (alpha dropped).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
# what Pillow raises on a file it cannot decode: truncated, corrupt, not an image, too large
DECODE_ERRORS = (OSError, ValueError, SyntaxError, UnidentifiedImageError,
                 Image.DecompressionBombError, EOFError)


@dataclass(frozen=True)
class ImageFormat:
    """How every image of a source is decoded: side, channels and centre crop."""

    side: int
    channels: int | None  # 1 grey, 3 RGB; None: 1 when every image is grey, else 3
    crop: int | None = None  # centre square's side before resizing; None: the largest square

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one decoded image (channels decided)."""
        if self.channels is None:
            raise ValueError("the number of channels is not decided yet")
        return (self.channels, self.side, self.side)


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the message says why."""


def image_mode(path: Path) -> str:
    """Pillow's mode of ``path`` (``L``, ``RGB``, ...), from its header alone."""
    try:
        with warnings.catch_warnings(), Image.open(path) as image:
            warnings.simplefilter("ignore")  # e.g. PIL's "palette images with transparency"
            return image.mode
    except DECODE_ERRORS as exc:
        raise UnreadableImage(_reason(exc)) from None


def decode_image(path: Path, fmt: ImageFormat) -> np.ndarray:
    """``path`` decoded, cropped and resized: uint8 ``(C, side, side)``; raises
    :class:`UnreadableImage` when Pillow cannot decode it."""
    try:
        with warnings.catch_warnings(), Image.open(path) as image:
            warnings.simplefilter("ignore")
            image.load()  # decode now: a truncated file fails here, not later
            image = ImageOps.exif_transpose(image)  # a phone photo's rotation, as viewers show it
            image = _square(_convert(image, fmt.channels), fmt.crop)
            image = image.resize((fmt.side, fmt.side), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except DECODE_ERRORS as exc:
        raise UnreadableImage(_reason(exc)) from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (C, H, W)


def _convert(image: Image.Image, channels: int) -> Image.Image:
    """``image`` in mode ``L`` (channels 1) or ``RGB`` (channels 3)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit grey: Pillow's convert("L") would clip at 255, so scale to 8 bits here
        values = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        values = values * 255.0 if values.max() <= 1.0 else values  # floats in [0, 1]: scale
        image = Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), mode="L")
    return image.convert("L" if channels == 1 else "RGB")


def _square(image: Image.Image, crop: int | None) -> Image.Image:
    """The centred square of side ``crop`` (at most the shorter side)."""
    w, h = image.size
    side = min(w, h) if crop is None else min(crop, w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
