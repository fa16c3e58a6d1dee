"""Atomic file writes: a reader never sees a half-written file, a crash never corrupts one.

Every writer of run and study files goes through :func:`atomic_write` (or :func:`append_jsonl`
for logs). A failing write (full disk, no permission, read-only file system) removes its
temporary file and raises :class:`~mtvae.errors.WriteError`, which says so in plain words.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mtvae.errors import UserError, WriteError
from mtvae.safe_yaml import read_yaml_file

# errno -> (the cause in plain words, the way out)
_FREE_SPACE = ("the disk is full (no space left on device)",
               "Free disk space or choose a location on another disk")
_NOT_A_DIRECTORY = ("a part of the path is a file, not a directory", "Choose another location")
_NO_PERMISSION = ("permission denied", "Make the location writable or choose another one")
WRITE_CAUSES = {
    errno.ENOSPC: _FREE_SPACE,
    errno.EDQUOT: ("the disk quota is exhausted", "Free disk space or raise the quota"),
    errno.EFBIG: ("the file is too large for this file system", "Choose another disk"),
    errno.EACCES: _NO_PERMISSION,
    errno.EPERM: _NO_PERMISSION,
    errno.EROFS: ("the file system is read-only", "Choose a location on a writable disk"),
    errno.ENOTDIR: _NOT_A_DIRECTORY,
    errno.EEXIST: _NOT_A_DIRECTORY,  # a write meets EEXIST only where a parent is a file
    errno.EISDIR: ("it is a directory", "Name a file instead"),
}


def write_error(path: str | Path, exc: OSError) -> WriteError:
    """The :class:`WriteError` for ``exc`` raised while writing ``path``."""
    cause, fix = WRITE_CAUSES.get(
        exc.errno, (exc.strerror or str(exc), "Check free disk space and the location")
    )
    return WriteError(str(path), cause, fix)


def os_error(exc: OSError) -> UserError:
    """A plain-words :class:`UserError` for an ``OSError`` nobody turned into one earlier."""
    what = f"'{exc.filename}'" if exc.filename else "a file"
    cause, fix = WRITE_CAUSES.get(
        exc.errno, (exc.strerror or str(exc), "Check free disk space and the location")
    )
    return UserError(f"Cannot access {what}: {cause}. {fix}, then run the command again.")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)``, fsync the result and rename it over ``path``.

    The temporary file lives in the same directory so the rename is atomic on POSIX.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        write(tmp_path)
        _commit(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _commit(tmp_path: Path, path: Path) -> None:
    """fsync the written temporary file and rename it over ``path`` (the fault-injection point
    of the tests: they make it raise ENOSPC, EACCES or EROFS)."""
    with open(tmp_path, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp_path, path)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    # Persist the rename itself; not every platform allows opening a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    """Atomically write a text file."""
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON (NaN becomes null so the file stays valid JSON)."""
    write_text(path, json.dumps(_json_safe(data), indent=2, sort_keys=True) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    """Atomically write ``data`` as YAML."""
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file with the safe loader (no arbitrary objects), its size, depth and alias
    expansion bounded (:mod:`mtvae.safe_yaml`)."""
    return read_yaml_file(path)


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one JSON object as a line (a line is written with a single write call)."""
    line = json.dumps(_json_safe(record)) + "\n"
    try:
        _append(Path(path), line)
    except OSError as exc:  # a line cut short is dropped when a run resumes
        raise write_error(path, exc) from None


def _append(path: Path, line: str) -> None:
    """Append ``line`` with one write call (the fault-injection point for logs)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _json_safe(value.item())
    return value
