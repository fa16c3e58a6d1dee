"""The report's PNGs are compacted losslessly where they are grey, to a palette where not."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from mtvae.report.figures import Figure, Rendered, compact_png


def _png(pixels: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_grey_rgba_images_become_8_bit_grey_with_the_same_pixels():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    original = _png(rgba, "RGBA")
    small = compact_png(original)
    assert len(small) < len(original)
    image = Image.open(io.BytesIO(small))
    assert image.mode == "L" and (np.asarray(image) == grey).all()


def test_plots_keep_their_vector_twin_and_bad_bytes_pass_through():
    pixels = np.zeros((30, 30, 3), dtype=np.uint8)
    pixels[:, :15] = (31, 119, 180)
    rendered = Rendered(_png(pixels, "RGB"))
    rendered.pdf = b"%PDF-vector"
    figure = Figure("f", "t", "c", rendered, "answer")
    assert figure.png.pdf == b"%PDF-vector"
    assert (np.asarray(Image.open(io.BytesIO(figure.png)).convert("RGB")) == pixels).all()
    assert compact_png(b"not a png") == b"not a png"
