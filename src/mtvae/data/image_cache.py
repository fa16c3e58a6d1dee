"""Image files decoded once into a uint8 ``.npy`` on disk, memory-mapped on every later load.

A source that reads image files (``celeba``, ``folder``) hands :func:`decoded_images` its list
of files and an :class:`~mtvae.data.image_files.ImageFormat`. The first call decodes every
file (in threads: Pillow releases the GIL while decoding; a progress bar on a terminal) into
``$MTVAE_CACHE/images/<source>-<key>-<stamp>.npy`` (default ``~/.cache/mtvae/images``), where
``key`` hashes the image directory, the format and the owner of the list (a label table), and
``stamp`` the files' names, sizes and modification times. A manifest ``<source>-<key>.json``
beside it records each file's size and time, the format and the files that could not be
decoded. A later call stats the files and, when the manifest still matches, memory-maps the
``.npy`` without decoding anything; a changed, added or removed file makes a new stamp, so the
images are decoded again and the stale ``.npy`` is deleted.

Both files are written atomically (the data first, then the manifest that names it), so an
interrupted decode leaves the previous cache, or none, never a half-written one. A cache
directory that cannot be written only costs time: the images are decoded into memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mtvae.data import image_files
from mtvae.data.cache import cache_dir
from mtvae.data.image_files import ImageFormat, UnreadableImage
from mtvae.errors import UserError, WriteError
from mtvae.io import atomic_write

CODE_VERSION = 1  # bump when decoding changes, so older caches are not reused
BLOCK = 512  # images decoded per round of threads (bounds the memory of results in flight)


@dataclass
class Decoded:
    """Decoded images: ``x`` uint8 ``(N, C, H, W)`` (memory-mapped when cached), the indices
    of the files that could not be decoded (their rows are zeros) and why."""

    x: np.ndarray
    reasons: dict[int, str]  # unreadable file index -> Pillow's reason
    from_cache: bool

    @property
    def unreadable(self) -> list[int]:
        """Indices of the files that could not be decoded, in order."""
        return sorted(self.reasons)


def decoded_images(source: str, root: Path, names: list[str], fmt: ImageFormat,
                   skip_unreadable: bool = False, listing: str = "the label table",
                   owner: str = "") -> Decoded:
    """The images ``root/name`` for each of ``names``, decoded to ``fmt``, through the cache.

    ``fmt.channels`` None: 1 when every image is grey, else 3 (decided on decoding, then
    recorded in the manifest). A missing file (``listing`` names where the names come from),
    or an image that cannot be decoded, stops with a :class:`UserError` naming it, unless
    ``skip_unreadable`` (decoding only): then its index is in ``unreadable``. One cache entry
    per image directory, format and ``owner`` (e.g. the label table listing the files): a new
    list of files replaces the entry's images rather than adding another entry.
    """
    files = [root / name for name in names]
    stats = _stats(files, root, listing)
    key = _digest([str(root.resolve()), owner, repr(fmt), str(CODE_VERSION)])
    stamp = _digest([f"{name}:{s}:{t}" for name, (s, t) in zip(names, stats, strict=True)])
    directory = cache_dir() / "images"
    manifest_path = directory / f"{source}-{key}.json"
    cached = _cached(manifest_path, stamp, fmt, len(names))
    if cached is None:
        data_path = directory / f"{source}-{key}-{stamp}.npy"
        cached = _decode_into_cache(files, fmt, data_path, manifest_path,
                                    {"stamp": stamp, "files": [
                                        [name, size, mtime]
                                        for name, (size, mtime) in zip(names, stats, strict=True)]})
    if cached.unreadable and not skip_unreadable:
        raise _unreadable_error(files, cached)
    if cached.unreadable:
        first = cached.unreadable[0]
        warnings.warn(f"mtvae: left out {len(cached.unreadable)} image file(s) that cannot be "
                      f"decoded (data.skip_unreadable), the first '{files[first]}' "
                      f"({cached.reasons[first]}).", stacklevel=2)
    return cached


def _stats(files: list[Path], root: Path, listing: str) -> list[tuple[int, int]]:
    """``(size, mtime_ns)`` of every file; missing files are a UserError naming them."""
    stats, missing = [], []
    for path in files:
        try:
            st = path.stat()
            stats.append((st.st_size, st.st_mtime_ns))
        except OSError:
            missing.append(path.name)
    if missing:
        raise UserError(
            f"{len(missing)} image file(s) named in {listing} are not in '{root}': "
            f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}. Put the images "
            f"there or remove their rows from {listing}."
        )
    return stats


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _cached(manifest_path: Path, stamp: str, fmt: ImageFormat, n: int) -> Decoded | None:
    """The cached images when the manifest matches the files' stamp; None otherwise."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("stamp") != stamp or manifest.get("version") != CODE_VERSION:
            return None
        channels = fmt.channels or int(manifest["format"]["channels"])
        # copy-on-write: torch wants a writable array; nothing is ever written back
        x = np.load(manifest_path.parent / manifest["data"], mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, damaged or from another version: decode again
    if x.dtype != np.uint8 or x.shape != (n, channels, fmt.side, fmt.side):
        return None
    reasons = {int(i): str(r) for i, r in manifest.get("unreadable", {}).items()}
    return Decoded(x, reasons, from_cache=True)


def _decode_into_cache(files, fmt, data_path: Path, manifest_path: Path,
                       record: dict) -> Decoded:
    """Decode ``files`` into ``data_path`` and write the manifest (``record``: the stamp and
    each file's name, size and time); in memory when the cache directory cannot be written."""
    if fmt.channels is None:
        fmt = replace(fmt, channels=_channels(files))
    unreadable: dict[int, str] = {}

    def fill(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                        shape=(len(files), *fmt.shape))
        _reserve(tmp)
        unreadable.update(_decode_all(files, fmt, out))
        out.flush()
        del out

    try:
        atomic_write(data_path, fill)
    except WriteError as exc:
        warnings.warn(f"mtvae: cannot write the image cache '{data_path}' ({exc.cause}); "
                      "decoding into memory instead. Set MTVAE_CACHE to a writable directory "
                      "to decode only once.", stacklevel=3)
        x = np.zeros((len(files), *fmt.shape), dtype=np.uint8)
        unreadable = _decode_all(files, fmt, x)
        return Decoded(x, unreadable, from_cache=False)
    manifest = {
        "version": CODE_VERSION, "data": data_path.name, "stamp": record["stamp"],
        "format": {"side": fmt.side, "channels": fmt.channels, "crop": fmt.crop},
        "unreadable": {str(i): r for i, r in sorted(unreadable.items())},
        "files": record["files"],  # [name, size in bytes, mtime in ns]: what the stamp hashes
    }
    try:
        atomic_write(manifest_path, lambda tmp: tmp.write_text(json.dumps(manifest),
                                                               encoding="utf-8"))
    except WriteError:
        pass  # the data is decoded; only the next run decodes again
    _remove_stale(data_path)
    x = np.load(data_path, mmap_mode="c", allow_pickle=False)
    return Decoded(x, unreadable, from_cache=False)


def _reserve(path: Path) -> None:
    """Allocate the file's blocks now: a full disk is then an OSError here (the cache falls
    back to memory), not a SIGBUS when a page of the memory map is first written."""
    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as fh:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)


def _channels(files: list[Path]) -> int:
    """1 when every (readable) image is grey, else 3; from the files' headers alone."""

    def grey(path: Path) -> bool:
        try:
            return image_files.image_mode(path) in image_files.GREY_MODES
        except UnreadableImage:
            return True  # decoding names it (or skips it)

    with ThreadPoolExecutor(_workers()) as pool:
        return 1 if all(pool.map(grey, files)) else 3


def _workers() -> int:
    return min(8, os.cpu_count() or 1)


def _decode_all(files: list[Path], fmt: ImageFormat, out: np.ndarray) -> dict[int, str]:
    """Decode ``files`` into the rows of ``out``; the files that fail, with the reason."""
    from tqdm.auto import tqdm

    failed: dict[int, str] = {}

    def one(i: int) -> tuple[int, np.ndarray | None, str]:
        try:
            return i, image_files.decode_image(files[i], fmt), ""
        except UnreadableImage as exc:
            return i, None, str(exc)

    with ThreadPoolExecutor(_workers()) as pool, tqdm(
        total=len(files), desc="decoding images", unit="img", dynamic_ncols=True,
        disable=not sys.stderr.isatty(),  # a bar only on a terminal, never in logs
    ) as bar:
        for start in range(0, len(files), BLOCK):
            for i, pixels, reason in pool.map(one, range(start, min(start + BLOCK, len(files)))):
                if pixels is None:
                    failed[i] = reason
                else:
                    out[i] = pixels
            bar.update(min(BLOCK, len(files) - start))
    return failed


def _remove_stale(data_path: Path) -> None:
    """Delete the cache's older data files of the same key (other stamps)."""
    prefix = data_path.name.rsplit("-", 1)[0] + "-"
    for other in data_path.parent.glob(f"{prefix}*.npy"):
        if other != data_path:
            other.unlink(missing_ok=True)


def _unreadable_error(files: list[Path], decoded: Decoded) -> UserError:
    first = decoded.unreadable[0]
    why = f" ({decoded.reasons[first]})"
    return UserError(
        f"{len(decoded.unreadable)} image file(s) cannot be decoded, the first '{files[first]}'"
        f"{why}; other(s): {', '.join(files[i].name for i in decoded.unreadable[1:6]) or 'none'}"
        ". Replace or remove them, or set data.skip_unreadable=true to leave them out (they "
        "are counted in the dataset's description)."
    )
