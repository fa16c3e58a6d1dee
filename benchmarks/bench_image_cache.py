"""Image files: the first load of a ``celeba:DIR`` layout (decoding every JPEG into the uint8
cache) against a second load (the memory-mapped cache), with an ``npz`` of the same decoded
images as the reference, and the memory each holds.

Run: ``python benchmarks/bench_image_cache.py [--images 2000] [--repeats 3]``

``--images`` 178x218 JPEGs are written in CelebA's published layout (random attributes), then
each round loads them three ways, alternating: ``celeba`` with an empty cache (decode, crop
148, resize to 64, write the cache), ``celeba`` again (the cache: nothing decoded) and
``npz:`` of the same 64x64 images as uint8 (scaled to float32 on loading, as the npz source
does). Memory: the bytes of the loaded images (uint8 ``ByteImages`` vs the npz's float32).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from common import alternate, machine, summary, timed
from mtvae.config import DataConfig
from mtvae.data.byte_images import ByteImages
from mtvae.data.sources import load_dataset

HERE = Path(__file__).resolve().parent

FIRST, CACHED, NPZ = "celeba, first load (decode)", "celeba, cached load", "npz of the same images"


def write_layout(root: Path, n: int) -> None:
    """``n`` noisy 178x218 JPEG faces with CelebA's attribute and partition files."""
    rng = np.random.default_rng(0)
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"A{j}" for j in range(40)]
    attr, part = [str(n), " ".join(names)], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "img_align_celeba" / name, quality=90)
        attr.append(name + " " + " ".join(f"{v:2d}" for v in rng.choice([-1, 1], size=40)))
        part.append(f"{name} {0 if i < 0.8 * n else 1 if i < 0.9 * n else 2}")
    (root / "list_attr_celeba.txt").write_text("\n".join(attr) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(part) + "\n")


def images_bytes(data) -> int:
    x = [data.split(s).x for s in ("train", "val", "test")]
    return sum(v.stored.numel() if isinstance(v, ByteImages) else v.numel() * 4 for v in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "image_cache.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_layout(tmp / "celeba", args.images)
        cache = tmp / "cache"
        os.environ["MTVAE_CACHE"] = str(cache)
        celeba = DataConfig(source=f"celeba:{tmp / 'celeba'}")

        def first() -> float:
            shutil.rmtree(cache, ignore_errors=True)
            return timed(lambda: load_dataset(celeba))

        data = load_dataset(celeba)  # warm-up; every round's first load leaves the cache too
        x = np.concatenate([data.split(s).x.stored.numpy() for s in ("train", "val", "test")])
        np.savez(tmp / "same.npz", x=x)
        npz = DataConfig(source=f"npz:{tmp / 'same.npz'}")
        memory = {"celeba (uint8)": images_bytes(data), "npz (float32)": images_bytes(
            load_dataset(npz))}
        runs = alternate({
            FIRST: first,
            CACHED: lambda: timed(lambda: load_dataset(celeba)),  # the cache exists: see above
            NPZ: lambda: timed(lambda: load_dataset(npz)),
        }, args.repeats)
    stats = {name: summary(values) for name, values in runs.items()}
    reference = stats[NPZ]["median"]
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "image_cache", "images": args.images,
                                    "seconds": stats, "bytes": memory,
                                    "machine": machine()}, indent=2) + "\n")
    print(f"### Image files: {args.images:,} CelebA-layout JPEGs to 64x64 RGB, "
          f"{args.repeats} alternating rounds\n")
    print("| load | wall s median | min-max | vs npz |\n|---|---:|---:|---:|")
    for name, s in stats.items():
        print(f"| {name} | {s['median']:.2f} | {s['min']:.2f}-{s['max']:.2f} | "
              f"{s['median'] / reference:.2f}x |")
    ratio = stats[FIRST]["median"] / stats[CACHED]["median"]
    print(f"\nA second load reads the cache {ratio:.0f}x faster than the first decodes. "
          "Images held in memory: "
          + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in memory.items())
          + f" ({memory['npz (float32)'] / memory['celeba (uint8)']:.0f}x).")


if __name__ == "__main__":
    main()
