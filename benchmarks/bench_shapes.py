"""Benchmark: rendering the ``shapes`` images, vectorized numpy against a per-pixel Python loop.

Run as ``python benchmarks/bench_shapes.py``. Prints Markdown table rows and writes
``benchmarks/results/shapes.json``. Both renderers draw the same factors with the same
formula (pixel coverage ``clip(0.5 - signed distance, 0, 1)``); the loop is timed on a few
hundred images and its per-image cost extrapolated, since 50,000 would take minutes.

Rendering is numpy element-wise arithmetic, which runs on one thread whatever the BLAS or
torch thread settings are; the thread counts are recorded only to describe the machine.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mtvae.data.shapes import factor_values, render, sample_factors

N_IMAGES = 50_000
N_LOOP = 500
IMAGE_SIZE = 32
REPEATS = 5
LOOP_REPEATS = 3
RESULTS = Path(__file__).resolve().parent / "results" / "shapes.json"


# --- reference: one image, one pixel at a time -----------------------------------------------


def _dist_square(u: float, w: float, radius: float) -> float:
    half = radius * math.sqrt(0.5)
    qx, qy = abs(u) - half, abs(w) - half
    return math.hypot(max(qx, 0.0), max(qy, 0.0)) + min(max(qx, qy), 0.0)


def _dist_ellipse(u: float, w: float, radius: float) -> float:
    a, b = radius, radius / 2
    k0 = math.hypot(u / a, w / b)
    k1 = math.hypot(u / (a * a), w / (b * b))
    return k0 * (k0 - 1) / k1 if k1 > 0 else -b


def _dist_triangle(u: float, w: float, radius: float) -> float:
    k = math.sqrt(3.0)
    half_side = radius * k / 2
    px, py = abs(u) - half_side, w + half_side / k
    if px + k * py > 0:
        px, py = (px - k * py) / 2, (-k * px - py) / 2
    px -= min(max(px, -2 * half_side), 0.0)
    return -math.hypot(px, py) * math.copysign(1.0, py) if py != 0 else 0.0


_DISTANCES = (_dist_square, _dist_ellipse, _dist_triangle)


def render_loop(factors: np.ndarray, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Straightforward renderer: Python loops over images and pixels, ``math`` per pixel."""
    out = np.zeros((len(factors), image_size, image_size), dtype=np.float32)
    for n, row in enumerate(factors):
        v = {key: val[0] for key, val in factor_values(row[None]).items()}
        dist = _DISTANCES[int(v["shape"])]
        cx, cy, radius = v["x"] * image_size, v["y"] * image_size, v["scale"] * image_size
        cos, sin = math.cos(v["orientation_rad"]), math.sin(v["orientation_rad"])
        for i in range(image_size):
            dy = cy - (i + 0.5)  # y up, as displayed
            for j in range(image_size):
                dx = (j + 0.5) - cx
                d = dist(cos * dx + sin * dy, cos * dy - sin * dx, radius)
                out[n, i, j] = min(max(0.5 - d, 0.0), 1.0)
    return out


# --- timing ------------------------------------------------------------------------------------


def _time(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run() -> dict:
    """Time both renderers and return the results as a JSON-ready dict."""
    factors = sample_factors(N_IMAGES, np.random.default_rng(0))
    render(factors[:1000], IMAGE_SIZE)  # warm-up: first-touch allocation, ufunc dispatch
    vec = _time(lambda: render(factors, IMAGE_SIZE), REPEATS)
    loop = _time(lambda: render_loop(factors[:N_LOOP], IMAGE_SIZE), LOOP_REPEATS)
    # The two must agree (float32 against float64 arithmetic) for the comparison to mean much.
    max_diff = float(np.abs(render(factors[:N_LOOP]) - render_loop(factors[:N_LOOP])).max())
    vec_rate = N_IMAGES / statistics.median(vec)
    loop_rate = N_LOOP / statistics.median(loop)
    return {
        "benchmark": "shapes rendering",
        "image_size": IMAGE_SIZE,
        "vectorized": _summary(vec, N_IMAGES, REPEATS),
        "python_loop": _summary(loop, N_LOOP, LOOP_REPEATS),
        "python_loop_extrapolated_s_for_n_images": N_IMAGES / loop_rate,
        "speedup": vec_rate / loop_rate,
        "max_abs_diff_between_renderers": max_diff,
        "machine": _machine(),
    }


def _summary(times: list[float], n: int, repeats: int) -> dict:
    median = statistics.median(times)
    return {
        "n_images": n,
        "repeats": repeats,
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "images_per_s": n / median,
    }


def _machine() -> dict:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "os_cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "torch_num_threads": torch.get_num_threads(),
        "threads_used_by_renderer": 1,
        "note": "numpy element-wise ufuncs run single-threaded; torch is not used for rendering",
    }


def _markdown(res: dict) -> str:
    rows = [
        "| renderer | images | size | median s | min–max s | images/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("vectorized", "numpy vectorized"),
        ("python_loop", "Python per-pixel loop"),
    ):
        r = res[key]
        rows.append(
            f"| {label} | {r['n_images']} | {res['image_size']} | {r['median_s']:.3f} | "
            f"{r['min_s']:.3f}–{r['max_s']:.3f} | {r['images_per_s']:,.0f} |"
        )
    m = res["machine"]
    rows.append("")
    rows.append(
        f"speed-up {res['speedup']:,.0f}x (loop extrapolated to {N_IMAGES} images: "
        f"{res['python_loop_extrapolated_s_for_n_images']:.0f} s); max |diff| "
        f"{res['max_abs_diff_between_renderers']:.1e}; 1 thread used "
        f"({m['cpus_available']} CPUs available, torch threads {m['torch_num_threads']}, unused)"
    )
    return "\n".join(rows)


def main() -> None:
    """Run the benchmark, print Markdown, write the JSON results."""
    res = run()
    print(_markdown(res))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
