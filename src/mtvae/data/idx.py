"""Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzipped).

An IDX file is a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then ``NDIM`` big-endian
uint32 dimension sizes, then the data in C order, big-endian. ``TYPE`` is 0x08 (uint8),
0x09 (int8), 0x0B (int16), 0x0C (int32), 0x0D (float32) or 0x0E (float64). Gzip compression
is recognised by its magic bytes, not by the file name.

Every problem (missing, unreadable, not IDX, corrupt gzip, truncated, trailing bytes) raises a
:class:`~mtvae.errors.UserError` that names the file.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from mtvae.errors import UserError

IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_CODES = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of ``path``; a missing or unreadable file is a :class:`UserError`."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"The {what} '{path}' does not exist.") from None
    except IsADirectoryError:
        raise UserError(f"The {what} '{path}' is a directory, not a file.") from None
    except OSError as exc:
        raise UserError(f"Cannot read the {what} '{path}': {exc.strerror or exc}.") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or gzipped) into a native-byte-order numpy array."""
    path = Path(path)
    return parse_idx(read_bytes(path, "IDX file"), str(path))


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file; ``name`` is used in error messages."""
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise UserError(
                f"IDX file '{name}' is gzip-compressed but cannot be decompressed ({exc}); the "
                "file is truncated or corrupt. Download or install it again."
            ) from None
    if len(raw) < 4:
        raise UserError(f"IDX file '{name}' is truncated: {len(raw)} bytes, not even a header.")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise UserError(
            f"'{name}' is not an IDX file: its magic number is 0x{raw[:4].hex()}, expected "
            "0x0000TTNN (TT: a type code 08/09/0b/0c/0d/0e, NN: the number of dimensions)."
        )
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"IDX file '{name}' is truncated inside its header ({ndim} dimensions).")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize  # exact: an int64 product can wrap around
    found = len(raw) - header
    if found < expected:
        raise UserError(
            f"IDX file '{name}' is truncated: shape {shape} needs {expected} bytes of data, "
            f"found {found}. Download or install it again."
        )
    if found > expected:
        raise UserError(
            f"IDX file '{name}' has {found - expected} unexpected bytes after its data "
            f"(shape {shape}); it is corrupt or not what its header says."
        )
    data = np.frombuffer(raw, dtype, count=expected // dtype.itemsize, offset=header)
    try:
        return data.reshape(shape).astype(dtype.newbyteorder("="))
    except ValueError:  # e.g. an empty array whose other dimensions are absurdly large
        raise UserError(
            f"IDX file '{name}' declares an impossible shape {shape}; it is corrupt."
        ) from None


def idx_header(path: str | Path) -> tuple[np.dtype, tuple[int, ...]] | None:
    """The dtype and shape an IDX file declares, read from its header alone (a gzipped file
    is decompressed only that far), so a size can be checked before the data is read; None
    when there is no valid header (:func:`read_idx` then says what is wrong)."""
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == _GZIP_MAGIC
            fh.seek(0)
            stream = gzip.GzipFile(fileobj=fh) if gzipped else fh
            magic = stream.read(4)
            if len(magic) < 4 or magic[0] or magic[1] or magic[2] not in IDX_TYPES or not magic[3]:
                return None
            dims = stream.read(4 * magic[3])
    except (OSError, EOFError, zlib.error):
        return None
    if len(dims) < 4 * magic[3]:
        return None
    return IDX_TYPES[magic[2]], tuple(int(d) for d in np.frombuffer(dims, ">u4"))


def idx_bytes(path: str | Path) -> int:
    """Bytes of data an IDX file declares (0 without a valid header), an exact integer."""
    header = idx_header(path)
    return 0 if header is None else math.prod(header[1]) * header[0].itemsize


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzipped when ``compress`` or the name ends in ``.gz``)."""
    array = np.asarray(array)
    code = _TYPE_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    raw = header + array.astype(IDX_TYPES[code]).tobytes()
    path = Path(path)
    if compress if compress is not None else path.suffix == ".gz":
        raw = gzip.compress(raw, compresslevel=6)
    path.write_bytes(raw)


def find_idx(root: Path, stem: str) -> Path | None:
    """``root/stem.gz`` or ``root/stem`` (gzipped preferred), or None when neither exists."""
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def load_image_label_pair(images_path: Path, labels_path: Path, n_classes: int) -> tuple:
    """Read an ``(N, H, W)`` uint8 image file and its ``(N,)`` label file, checked together."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UserError(
            f"IDX image file '{images_path}' holds a {images.dtype} array of shape "
            f"{images.shape}; expected uint8 images of shape (N, H, W)."
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(
            f"IDX label file '{labels_path}' holds a {labels.dtype} array of shape "
            f"{labels.shape}; expected integer labels of shape (N,)."
        )
    if len(images) != len(labels):
        raise UserError(
            f"'{images_path}' holds {len(images)} images but '{labels_path}' holds "
            f"{len(labels)} labels; the two files must belong together."
        )
    if len(images) == 0:
        raise UserError(f"IDX image file '{images_path}' holds no images.")
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if len(bad):
        raise UserError(
            f"IDX label file '{labels_path}' holds label {int(labels[bad[0]])} at index "
            f"{int(bad[0])}, outside the {n_classes} classes 0..{n_classes - 1}."
        )
    return images, labels.astype(np.int64)


def file_sha256(*paths: Path) -> str:
    """sha256 over the bytes of ``paths`` in order (a fingerprint of source files)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
