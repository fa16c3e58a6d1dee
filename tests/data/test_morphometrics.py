"""Morphometrics on synthetic strokes of known geometry, silhouettes, and the measurement cache."""

import numpy as np
import pytest

from mtvae.data.cache import cached_arrays, fingerprint
from mtvae.data.morphometrics import morphometrics, silhouette


def stroke(thickness, slant_deg, length=16.0, size=28, cx=14.0, cy=14.0):
    """An anti-aliased straight stroke with round caps: exact coverage of a capsule."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    angle = np.deg2rad(slant_deg)
    d = np.array([np.sin(angle), -np.cos(angle)])  # upwards, leaning right for slant > 0
    x0, y0 = cx - d[0] * length / 2, cy - d[1] * length / 2
    t = np.clip((xx - x0) * d[0] + (yy - y0) * d[1], 0, length)
    dist = np.hypot(xx - x0 - t * d[0], yy - y0 - t * d[1])
    return np.clip(thickness / 2 - dist + 0.5, 0, 1).astype(np.float32)


CASES = [(t, s, c) for t in (1.5, 2.0, 3.0, 4.0, 5.0) for s in (-30, -10, 0, 15, 35)
         for c in (13.7, 14.0, 14.3)]


@pytest.fixture(scope="module")
def measured():
    images = np.stack([stroke(t, s, cx=c) for t, s, c in CASES])
    return morphometrics(images), np.array([c[0] for c in CASES]), np.array([c[1] for c in CASES])


def test_thickness_matches_known_stroke_width(measured):
    m, thickness, _ = measured
    np.testing.assert_allclose(m["thickness"], thickness, atol=0.25)
    assert abs(float(np.mean(m["thickness"] - thickness))) < 0.1  # no systematic bias


def test_slant_matches_known_angle(measured):
    m, thickness, slant = measured
    thin = thickness <= 3
    np.testing.assert_allclose(np.rad2deg(m["slant"][thin]), slant[thin], atol=1.5)
    # moments see a thick stroke as slightly more upright, as in Morpho-MNIST
    np.testing.assert_allclose(np.rad2deg(m["slant"]), slant, atol=3.0)
    assert np.all(np.sign(m["slant"][slant != 0]) == np.sign(slant[slant != 0]))


def test_upright_stroke_extent_and_area(measured):
    m, thickness, slant = measured
    up = slant == 0
    # a capsule of length L and width t: height L + t, width t, area L t + pi t^2 / 4
    np.testing.assert_allclose(m["height"][up], 16 + thickness[up], atol=0.6)
    np.testing.assert_allclose(m["width"][up], thickness[up], atol=0.6)
    area = 16 * thickness + np.pi * thickness**2 / 4
    np.testing.assert_allclose(m["area"], area, rtol=0.12)  # binarising blurs edges a little
    assert abs(float(np.mean(m["area"] / area)) - 1) < 0.05


def test_width_is_measured_after_undoing_the_slant(measured):
    m, thickness, slant = measured
    # the de-slanted stroke is a parallelogram of horizontal width t / cos(slant)
    expected = thickness / np.cos(np.deg2rad(slant))
    np.testing.assert_allclose(m["width"], expected, atol=0.9)
    assert np.all(m["width"] < 8)  # far narrower than the slanted stroke's bounding box


def test_blank_images_measure_zero_and_chunks_agree():
    images = np.stack([np.zeros((28, 28), np.float32), stroke(2.5, 10)] * 3)
    one = morphometrics(images, chunk=2)
    for name, values in one.items():
        assert values.dtype == np.float32 and values.shape == (6,)
        assert values[0] == 0.0  # blank
        assert values[1] > 0 or name == "slant"
        np.testing.assert_array_equal(values, morphometrics(images, chunk=64)[name])


def test_silhouette_of_a_rectangle():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 5:15, 3:10] = 0.8  # 10 rows, 7 columns
    s = silhouette(image)
    assert s["width"][0] == 7 and s["height"][0] == 10
    assert s["ink"][0] == pytest.approx(0.8 * 70 / 784)


def test_cache_computes_once_and_survives_damage(tmp_path, monkeypatch):
    monkeypatch.setenv("MTVAE_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(5, dtype=np.float32)}

    key = fingerprint("file-sha", "v1")
    first = cached_arrays("thing", key, compute)
    second = cached_arrays("thing", key, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["a"], second["a"])
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"thing-{key}.npz"]  # no temporary left behind
    files[0].write_bytes(b"damaged")
    np.testing.assert_array_equal(cached_arrays("thing", key, compute)["a"], first["a"])
    assert len(calls) == 2
    cached_arrays("thing", fingerprint("file-sha", "v2"), compute)  # new code version
    assert len(calls) == 3
