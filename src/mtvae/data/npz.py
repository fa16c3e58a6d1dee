"""The ``npz:PATH`` source: the user's own arrays in a numpy ``.npz`` file.

Arrays in the file:

* ``x`` (required): ``(N, F)`` feature vectors, ``(N, H, W)`` or ``(N, C, H, W)`` images
  (channels first). Feature vectors become ``(N, 1, 1, F)`` images, which the MLP body reads
  (``model.encoder.arch=mlp``); conv bodies need square images with sides divisible by
  ``2 ** len(model.encoder.channels)``. Values are scaled to ``[0, 1]``: bool as 0/1, uint8 by
  1/255, other values already in ``[0, 1]`` as they are, other integers in 0..255 by 1/255,
  anything else linearly from its minimum and maximum (or from the sidecar's ``x_range``).
* ``y_<task>`` (any number): labels, one row per sample. The kind is inferred: bool ->
  ``binary``; integers in ``0..K-1`` with ``K <= 100`` -> ``categorical`` with ``K = max + 1``
  classes; other integers and floats -> ``regression``; a 2-D array of 0/1 -> ``multilabel``.
* ``mask_<task>`` (optional): bool, True where the label is known (elsewhere the label's
  value is ignored and may be NaN).
* ``split`` (optional): integers 0/1/2 putting each sample in train/val/test; without it a
  seeded 80/10/10 split is drawn (``data.n_val`` / ``data.n_test`` set other sizes).

An optional sidecar next to the file, ``PATH`` with the suffix ``.yaml``, ``.yml`` or ``.json``,
declares task kinds and the input range::

    tasks:
      digit: {kind: categorical, n_classes: 10, description: which digit}
      size: regression
    x_range: [0, 4095]

Every problem (unreadable or truncated file, a missing ``x``, wrong shapes, NaN or infinite
values, labels outside the declared classes, mismatched lengths, empty arrays, unknown arrays)
is a :class:`~mtvae.errors.UserError` naming the file, the array and the problem.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from pydantic import ValidationError, field_validator

from mtvae.base import StrictModel, validation_problems
from mtvae.data.arrays import build_dataset, holdout_parts
from mtvae.data.dataset import SPLITS, Dataset
from mtvae.data.task_kinds import (
    Binary,
    Categorical,
    KindName,
    LabelError,
    Multilabel,
    Regression,
    TaskKind,
    check_values,
    task_kind,
)
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError, not_a_file, yaml_problem
from mtvae.limits import check_images_memory
from mtvae.safe_yaml import read_yaml_file

MAX_INFERRED_CLASSES = 100
_TASK_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


class SidecarTask(StrictModel):
    """A task declared in the sidecar file."""

    kind: KindName
    n_classes: int | None = None
    description: str = ""


class Sidecar(StrictModel):
    """Contents of the optional sidecar file next to an ``.npz``."""

    tasks: dict[str, SidecarTask] = {}
    x_range: tuple[float, float] | None = None

    @field_validator("tasks", mode="before")
    @classmethod
    def _kind_alone(cls, value: Any) -> Any:
        """``{digit: categorical}`` is short for ``{digit: {kind: categorical}}`` (one model
        instead of a union, so errors name ``tasks.digit.kind``, not pydantic's union tags)."""
        if isinstance(value, dict):
            return {k: {"kind": v} if isinstance(v, str) else v for k, v in value.items()}
        return value


def load_npz(
    path: str | Path, n_val: int | None = None, n_test: int | None = None, seed: int = 0
) -> Dataset:
    """Load the user's ``.npz`` file as a :class:`Dataset` (see the module docstring)."""
    path = Path(path).expanduser()
    check_npz_memory(path)
    arrays = read_npz(path)
    sidecar = read_sidecar(path)
    f = f"'{path}'"
    x = _images(arrays.pop("x", None), sidecar.x_range, f, list(arrays))
    n = len(x)
    split = arrays.pop("split", None)
    masks = {name[5:]: arrays.pop(name) for name in list(arrays) if name.startswith("mask_")}
    labels = {name[2:]: arrays.pop(name) for name in list(arrays) if name.startswith("y_")}
    if arrays:
        raise UserError(
            f"{f} holds unexpected array(s) {', '.join(sorted(arrays))}. Allowed: x, y_<task>, "
            "mask_<task>, split (rename label arrays to y_<task>)."
        )
    for task in masks:
        if task not in labels:
            raise UserError(f"{f} has mask_{task} but no labels y_{task}.")
    for task in sidecar.tasks:
        if task not in labels:
            raise UserError(f"The sidecar of {f} declares task '{task}' but the file has no "
                            f"array y_{task}.")
    targets, tasks, known = {}, {}, {}
    for task, y in labels.items():
        declared = sidecar.tasks.get(task)
        if isinstance(declared, str):
            declared = SidecarTask(kind=declared)
        mask = _mask(masks.get(task), n, f, task)
        targets[task], tasks[task] = validate_labels(y, mask, declared, n, f, task)
        known[task] = mask
    parts = split_parts(split, n, n_val, n_test, seed, f)
    dataset = build_dataset(
        "npz", {"all": (x, targets)}, {s: ("all", idx) for s, idx in parts.items()}, tasks,
        f"your data from {path}: {n} samples of shape {tuple(x.shape[1:])}; "
        + "/".join(str(len(parts[s])) for s in SPLITS) + " train/val/test",
    )
    for name in SPLITS:  # labels the file marks as unknown stay unknown in every split
        idx = torch.from_numpy(parts[name])
        for task, mask in known.items():
            dataset.split(name).masks[task] = torch.from_numpy(mask)[idx]
    return dataset


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file, read eagerly (so a damaged member fails here, named)."""
    if not path.is_file():
        raise UserError(f"The npz file '{path}' {not_a_file(path)}. Pass npz:PATH with an "
                        "existing .npz file made by numpy.savez (see docs/guides/data.md, 'Your "
                        "own data').")
    _check_signature(path)
    name = None
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise UserError(f"'{path}' is a .npy file holding one array, not an .npz archive; "
                            "save with numpy.savez(path, x=..., y_<task>=...).")
        with data:
            out = {}
            for name in data.files:
                out[name] = data[name]
            return out
    # NotImplementedError: zipfile's answer to a damaged header that claims an unknown zip
    # version or compression method (found by the damaged-npz fuzz test).
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError,
            NotImplementedError) as exc:
        member = f" (array '{name}')" if name else ""
        # numpy's own advice for object arrays (allow_pickle=True) would run code from the file
        cause = ("it holds an object (pickled) array, which is never loaded because that "
                 "could run code" if "allow_pickle" in str(exc) else str(exc))
        raise UserError(
            f"Cannot read the npz file '{path}'{member}: {cause}. The file is truncated, corrupt, "
            "not an .npz archive, or holds object arrays (only numeric arrays are allowed); "
            "write it again with numpy.savez."
        ) from None


ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first member; an empty zip
NPY_SIGNATURE = b"\x93NUMPY"


def _check_signature(path: Path) -> None:
    """Refuse a file that is neither a zip archive (.npz) nor a .npy array by its first
    bytes, before numpy guesses it is a pickle."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise UserError(f"Cannot read the npz file '{path}': {exc.strerror}.") from None
    if not head.startswith((*ZIP_SIGNATURES, NPY_SIGNATURE)):
        raise UserError(
            f"'{path}' is not an npz (zip) file: it does not start with a zip archive's "
            "signature. Pass an .npz archive written by numpy.savez(path, x=..., "
            "y_<task>=...).")


def npz_headers(path: Path) -> dict[str, tuple[np.dtype, tuple[int, ...]]] | None:
    """The dtype and shape each array of an ``.npz`` declares, from the ``.npy`` headers alone
    (a compressed member is decompressed only that far); None when they cannot be read
    (:func:`read_npz` then says what is wrong)."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    reader = readers.get(np.lib.format.read_magic(member))
                    if reader is None:
                        return None
                    shape, _, dtype = reader(member)
                headers[info.filename[:-4]] = (dtype, tuple(int(d) for d in shape))
    except Exception:  # noqa: BLE001 - any damage: the reader itself reports it, named
        return None
    return headers


def npz_tasks(path: Path) -> list[str] | None:
    """The tasks of an ``.npz`` (its ``y_<task>`` arrays), from the archive's headers alone;
    None when they cannot be read (loading then says what is wrong)."""
    headers = npz_headers(path) if path.is_file() else None
    return None if headers is None else [name[2:] for name in headers if name.startswith("y_")]


def check_npz_memory(path: Path) -> None:
    """Refuse an ``.npz`` whose arrays (and ``x`` as float32 images) cannot fit in memory,
    from the sizes its headers declare, before any array is read."""
    headers = npz_headers(path) if path.is_file() else None
    if not headers or "x" not in headers or not headers["x"][1]:
        return
    raw = sum(math.prod(shape) * dtype.itemsize for dtype, shape in headers.values())
    shape = headers["x"][1]
    check_images_memory(
        shape[0], shape[1:],
        f"Loading '{path}' (its array 'x' declares shape {shape}) as float32 images",
        "store fewer or smaller images in the file (npz data keeps its own image size), or "
        "split it and train on a part.", raw_bytes=raw)


def read_sidecar(path: Path) -> Sidecar:
    """The sidecar next to ``path`` (``.yaml``, ``.yml`` or ``.json``), or an empty one."""
    found = [path.with_suffix(s) for s in (".yaml", ".yml", ".json") if path.with_suffix(s).is_file()]
    if not found:
        return Sidecar()
    if len(found) > 1:
        raise UserError(f"'{path}' has several sidecar files ({', '.join(map(str, found))}); "
                        "keep one.")
    side = found[0]
    try:
        raw = (json.loads(side.read_text(encoding="utf-8")) if side.suffix == ".json"
               else read_yaml_file(side))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if side.suffix == ".json" else "YAML"
        raise UserError(
            f"Cannot read the sidecar file '{side}': {yaml_problem(exc)}. It must be UTF-8 "
            f"{kind} describing the tasks of '{path.name}', e.g. "
            "{tasks: {digit: {kind: categorical, n_classes: 10}}}.") from None
    try:
        return Sidecar.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, Sidecar))
        raise UserError(f"Invalid sidecar file '{side}': {problems}. Expected e.g. "
                        "{tasks: {digit: {kind: categorical, n_classes: 10}}}.") from None


def _images(x, x_range, f: str, others: list[str]) -> torch.Tensor:
    """Validate ``x`` and return it as ``(N, C, H, W)`` float32 in ``[0, 1]``."""
    if x is None:
        raise UserError(f"{f} has no array 'x' (it holds: {', '.join(sorted(others)) or 'nothing'});"
                        " save the inputs as x, e.g. numpy.savez(path, x=images, y_label=labels).")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.iscomplexobj(x):
        raise UserError(f"Array 'x' in {f} has dtype {x.dtype}; it must be numeric.")
    if x.ndim not in (2, 3, 4):
        raise UserError(f"Array 'x' in {f} has shape {x.shape}; expected (N, features), "
                        "(N, H, W) or (N, C, H, W).")
    if x.size == 0:
        raise UserError(f"Array 'x' in {f} is empty (shape {x.shape}).")
    _check_finite(x, f, "x")
    x = x.reshape(x.shape[0], 1, 1, x.shape[1]) if x.ndim == 2 else x
    x = x[:, None] if x.ndim == 3 else x
    return torch.from_numpy(_scale(x, x_range, f))


def _scale(x: np.ndarray, x_range, f: str) -> np.ndarray:
    if x.dtype == bool:
        return x.astype(np.float32)
    if x_range is not None:
        lo, hi = x_range
        if hi <= lo:
            raise UserError(f"The sidecar of {f} sets x_range [{lo}, {hi}]; it needs lo < hi.")
        if x.min() < lo or x.max() > hi:
            raise UserError(f"Array 'x' in {f} has values in [{x.min()}, {x.max()}], outside the "
                            f"sidecar's x_range [{lo}, {hi}].")
    elif x.dtype == np.uint8:
        lo, hi = 0.0, 255.0
    elif x.min() >= 0 and x.max() <= 1:
        lo, hi = 0.0, 1.0
    elif np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 255:
        lo, hi = 0.0, 255.0
    else:
        lo, hi = float(x.min()), float(x.max())
        hi = hi if hi > lo else lo + 1.0
    return ((x.astype(np.float64) - lo) / (hi - lo)).astype(np.float32)


def _check_finite(a: np.ndarray, f: str, name: str, mask: np.ndarray | None = None) -> None:
    if not np.issubdtype(a.dtype, np.floating):
        return
    bad = ~np.isfinite(a)
    if mask is not None:
        bad &= mask.reshape(-1, *([1] * (a.ndim - 1)))
    if bad.any():
        n_nan, n_inf = int(np.isnan(a[bad]).sum()), int(np.isinf(a[bad]).sum())
        first = int(np.argwhere(bad)[0][0])
        hint = f" (mark unknown labels with a bool array mask_{name[2:]} instead)" if name != "x" else ""
        raise UserError(f"Array '{name}' in {f} holds {n_nan} NaN and {n_inf} infinite values "
                        f"(first at sample {first}); every value must be finite{hint}.")


def _mask(mask, n: int, f: str, task: str) -> np.ndarray:
    if mask is None:
        return np.ones(n, dtype=bool)
    name = f"mask_{task}"
    if mask.shape != (n,):
        raise UserError(f"Array '{name}' in {f} has shape {mask.shape}; expected ({n},), one "
                        "entry per sample of x.")
    if mask.dtype != bool and not (np.issubdtype(mask.dtype, np.integer) and np.isin(mask, (0, 1)).all()):
        raise UserError(f"Array '{name}' in {f} must be bool (True: label known), got {mask.dtype}.")
    if not mask.any():
        raise UserError(f"Array '{name}' in {f} is all False: no label of task '{task}' is "
                        f"known. Mark the known labels True, or leave the task out (drop "
                        f"y_{task} and {name} from the file).")
    return mask.astype(bool)


def validate_labels(y: np.ndarray, mask: np.ndarray, declared, n: int, f: str, task: str,
            what: str | None = None):
    """Validate one label array; return ``(targets, TaskSpec)``. ``what`` names it in messages
    (default: the array ``y_<task>``)."""
    name = f"y_{task}"
    what = what or f"Array '{name}'"
    if not _TASK_NAME.fullmatch(task):
        raise UserError(f"{what} in {f}: task names may use letters, digits, _ . - only.")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool) or np.iscomplexobj(y):
        raise UserError(f"{what} in {f} has dtype {y.dtype}; labels must be numbers.")
    if y.ndim not in (1, 2) or len(y) != n:
        raise UserError(f"{what} in {f} has shape {y.shape} but x has {n} samples; "
                        f"expected ({n},) (or ({n}, K) for multilabel).")
    if y.size == 0:
        raise UserError(f"{what} in {f} is empty (shape {y.shape}).")
    _check_finite(y, f, name, mask)
    y = np.where(mask.reshape(-1, *([1] * (y.ndim - 1))), y, y.dtype.type(0))  # unknown: 0
    kind = task_kind(declared.kind, declared.n_classes) if declared else _infer_kind(y, f, name)
    description = declared.description if declared else f"from {name} ({kind.name}, inferred)"
    try:
        targets, kind = kind.check_labels(y, mask, declared_in="the sidecar")
    except LabelError as problem:
        raise UserError(f"{what} in {f} {problem}") from None
    return targets, TaskSpec(task, kind.name, kind.n_classes, description)


def _infer_kind(y: np.ndarray, f: str, name: str) -> TaskKind:
    """The kind of undeclared labels (see the module docstring); classes come from the labels."""
    if y.dtype == bool:
        return Multilabel() if y.ndim == 2 else Binary()
    if y.ndim == 2:
        return Multilabel()
    if np.issubdtype(y.dtype, np.integer):
        if y.min() < 0:
            raise UserError(
                f"Array '{name}' in {f} holds negative integers (e.g. {int(y.min())}). Class "
                f"labels must be 0..K-1: mark unknown labels with mask_{name[2:]}, or declare "
                f"'{name[2:]}: regression' in a sidecar file if the numbers are quantities."
            )
        return Categorical() if y.max() < MAX_INFERRED_CLASSES else Regression()
    return Regression()


def split_parts(split, n: int, n_val, n_test, seed: int, f: str) -> dict[str, np.ndarray]:
    if split is None:
        n_val = max(1, round(0.1 * n)) if n_val is None else n_val
        n_test = max(1, round(0.1 * n)) if n_test is None else n_test
        if n_val + n_test >= n:
            raise UserError(f"{f} has {n} samples: too few for {n_val} validation and {n_test} "
                            "test samples plus training samples (at least 3 are needed).")
        return holdout_parts(n, n_val, n_test, seed)
    if split.shape != (n,) or not np.issubdtype(split.dtype, np.integer):
        raise UserError(f"Array 'split' in {f} must be integers of shape ({n},), got "
                        f"{split.dtype} {split.shape}.")
    try:
        check_values(split, range(len(SPLITS)), "use 0 (train), 1 (val) or 2 (test)")
    except LabelError as problem:
        raise UserError(f"Array 'split' in {f} {problem}") from None
    parts = {name: np.flatnonzero(split == i) for i, name in enumerate(SPLITS)}
    for name, idx in parts.items():
        if not len(idx):
            raise UserError(f"Array 'split' in {f} puts no sample in the {name} split.")
    return parts
