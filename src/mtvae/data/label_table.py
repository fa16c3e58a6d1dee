"""A label table (CSV): one row per image, a file-name column and one column per task.

Reads the table as text and turns each task column into labels the way the npz source reads
its arrays (:mod:`mtvae.data.npz`): an **empty cell is a missing label**; the kind is inferred
from the filled cells (0/1 or true/false -> ``binary``; integers in ``0..K-1``, K <= 100 ->
``categorical``; other integers and decimals -> ``regression``; text -> ``categorical``, one
class per distinct value in sorted order) or declared in a sidecar beside the table
(``labels.yaml`` / ``.yml`` / ``.json``, as for npz). A column mixing numbers and text is an
error, as is a non-finite number.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtvae.data.dataset import SPLITS
from mtvae.data.npz import MAX_INFERRED_CLASSES, Sidecar, SidecarTask, read_sidecar, validate_labels
from mtvae.data.task_kinds import task_kind
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError

FILE_COLUMNS = ("filename", "file", "image", "path")
SPLIT_COLUMN = "split"
SPLIT_VALUES = {"train": 0, "0": 0, "val": 1, "valid": 1, "validation": 1, "1": 1,
                "test": 2, "2": 2}
_TRUE, _FALSE = frozenset({"true", "yes"}), frozenset({"false", "no"})


@dataclass
class LabelTable:
    """The table's file names, its split per row (or None) and its tasks."""

    files: list[str]
    split: np.ndarray | None  # 0/1/2 per row
    targets: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]  # True where the cell was filled
    tasks: dict[str, TaskSpec]


def read_label_table(path: Path) -> LabelTable:
    """Read and validate the label table at ``path`` (see the module docstring)."""
    header, rows = _read_csv(path)
    f = f"'{path}'"
    file_col = _file_column(header, f)
    lowered = [h.strip().lower() for h in header]
    split_col = lowered.index(SPLIT_COLUMN) if SPLIT_COLUMN in lowered else None
    files = [row[file_col].strip() for row in rows]
    _check_files(files, f)
    sidecar = read_sidecar(path)
    if sidecar.x_range is not None:
        raise UserError(f"The sidecar of {f} sets x_range, which only npz data has; remove it "
                        "(images are read as 0..255).")
    task_cols = {header[j].strip(): j for j in range(len(header)) if j not in (file_col, split_col)}
    for task in sidecar.tasks:
        if task not in task_cols:
            raise UserError(f"The sidecar of {f} declares task '{task}' but the table has no "
                            f"column '{task}' (columns: {', '.join(header)}).")
    targets, masks, tasks = {}, {}, {}
    for task, j in task_cols.items():
        cells = [row[j].strip() for row in rows]
        targets[task], masks[task], tasks[task] = _column(cells, task, sidecar, f, path.name)
    split = None if split_col is None else _split(
        [row[split_col].strip() for row in rows], f, header[split_col])
    return LabelTable(files, split, targets, masks, tasks)


def table_columns(path: Path) -> list[str]:
    """The task columns of the table at ``path``, from its header line alone."""
    header, _ = _read_csv(path, header_only=True)
    file_col = _file_column(header, f"'{path}'")
    return [h.strip() for j, h in enumerate(header)
            if j != file_col and h.strip().lower() != SPLIT_COLUMN]


def _read_csv(path: Path, header_only: bool = False) -> tuple[list[str], list[list[str]]]:
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: Excel's BOM
            reader = csv.reader(fh, delimiter=delimiter)
            header = next(reader, None)
            rows = [] if header_only else [row for row in reader if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise UserError(f"The label table '{path}' does not exist. folder:DIR expects DIR/"
                        "labels.csv (or pass folder:TABLE.csv); see docs/guides/data.md, "
                        "'A folder of images'.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"Cannot read the label table '{path}': {exc}. Save it as a UTF-8 "
                        "CSV file.") from None
    if not header:
        raise UserError(f"The label table '{path}' is empty; it needs a header line "
                        "(filename,TASK,...) and one line per image.")
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise UserError(f"Line {number} of '{path}' has {len(row)} cells but the header has "
                            f"{len(header)} columns; every line needs one cell per column "
                            "(leave a cell empty for a missing label).")
    if not header_only and not rows:
        raise UserError(f"The label table '{path}' has a header but no rows.")
    return header, rows


def _file_column(header: list[str], f: str) -> int:
    lowered = [h.strip().lower() for h in header]
    found = [j for j, h in enumerate(lowered) if h in FILE_COLUMNS]
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise UserError(f"The label table {f} has {what} file-name column (columns: "
                        f"{', '.join(header)}); name exactly one column "
                        f"{' or '.join(FILE_COLUMNS)}, holding each image's path relative to "
                        "the folder.")
    return found[0]


def _check_files(files: list[str], f: str) -> None:
    first_row: dict[str, int] = {}
    for number, name in enumerate(files, start=2):
        if not name:
            raise UserError(f"Line {number} of the label table {f} has an empty file name.")
        if name in first_row:
            raise UserError(f"The label table {f} names '{name}' twice (lines "
                            f"{first_row[name]} and {number}); each image needs one row.")
        first_row[name] = number


def _split(cells: list[str], f: str, column: str) -> np.ndarray:
    out = np.empty(len(cells), dtype=np.int64)
    for i, cell in enumerate(cells):
        value = SPLIT_VALUES.get(cell.lower())
        if value is None:
            raise UserError(f"Column '{column}' of the label table {f} holds '{cell}' on line "
                            f"{i + 2}; use train, val or test (or 0, 1, 2) in every row.")
        out[i] = value
    for value, name in enumerate(SPLITS):
        if not (out == value).any():
            raise UserError(f"Column '{column}' of the label table {f} puts no image in the "
                            f"{name} split.")
    return out


def _column(cells: list[str], task: str, sidecar: Sidecar, f: str,
            table: str) -> tuple[np.ndarray, np.ndarray, TaskSpec]:
    """One task column -> ``(targets, mask, TaskSpec)``; empty cells are missing labels."""
    what = f"Column '{task}'"
    mask = np.array([c != "" for c in cells], dtype=bool)
    filled = [(i, c) for i, c in enumerate(cells) if c]
    if not filled:
        raise UserError(f"{what} of {f} has no labels (every cell is empty); fill some or "
                        "remove the column.")
    declared = sidecar.tasks.get(task)
    parsed = [(i, c, _number(c)) for i, c in filled]
    text = [(i, c) for i, c, v in parsed if v is None]
    numbers = [(i, c) for i, c, v in parsed if v is not None]
    if text and numbers and not (_booleans(text) and _booleans(numbers)):
        raise UserError(
            f"{what} of {f} mixes numbers (e.g. '{numbers[0][1]}' on line {numbers[0][0] + 2}) "
            f"and text (e.g. '{text[0][1]}' on line {text[0][0] + 2}); a column holds one type "
            "of label: leave a cell empty for a missing label.")
    classes: list[str] = []
    if text and _booleans(text):
        y = np.array([1 if c.lower() in _TRUE or c == "1" else 0 for c in cells], dtype=np.int64)
        kind = "binary"
    elif text:
        classes = sorted({c for _, c in text})
        index = {c: k for k, c in enumerate(classes)}
        y = np.array([index.get(c, 0) for c in cells], dtype=np.int64)
        kind = "categorical"
        if declared is not None and not task_kind(declared.kind).class_indices:
            raise UserError(f"{what} of {f} holds text (e.g. '{text[0][1]}'), but the sidecar "
                            f"declares it {declared.kind}; text labels are categorical.")
    else:
        y, kind = _numeric(cells, numbers, what, f, declared is not None)
    if declared is None:
        declared = SidecarTask(kind=kind, n_classes=len(classes) or None,
                               description=f"column {task} of {table} ({kind}, inferred)")
    if classes:
        names = ", ".join(f"{k}={c}" for k, c in enumerate(classes))
        k = declared.n_classes or len(classes)
        declared = SidecarTask(kind="categorical", n_classes=max(k, len(classes)),
                               description=f"{declared.description or task}; classes {names}")
    targets, spec = validate_labels(y, mask, declared, len(cells), f, task, what=what)
    return targets, mask, spec


def _numeric(cells: list[str], numbers: list[tuple[int, str]], what: str, f: str,
             declared: bool):
    """The column as numbers (unknown: 0) and its inferred kind (checked only when the
    sidecar declares none)."""
    values = [_number(c) for _, c in numbers]
    for (i, c), v in zip(numbers, values, strict=True):
        if not np.isfinite(v):
            raise UserError(f"{what} of {f} holds '{c}' on line {i + 2}; every label must be a "
                            "finite number (leave the cell empty for a missing label).")
    integral = all(isinstance(v, int) for v in values)
    y = np.zeros(len(cells), dtype=np.int64 if integral else np.float64)
    for (i, _), v in zip(numbers, values, strict=True):
        y[i] = v
    if not integral:
        return y, "regression"
    lo, hi = min(values), max(values)
    if lo < 0 and not declared:
        raise UserError(f"{what} of {f} holds negative integers (e.g. {lo}). Class labels must "
                        "be 0..K-1: leave a cell empty for a missing label, or declare "
                        "'TASK: regression' in a sidecar file if the numbers are quantities.")
    if hi <= 1:
        return y, "binary"
    return y, "categorical" if hi < MAX_INFERRED_CLASSES else "regression"


def _number(cell: str) -> int | float | None:
    try:
        return int(cell)
    except ValueError:
        pass
    try:
        return float(cell)
    except ValueError:
        return None


def _booleans(cells: list[tuple[int, str]]) -> bool:
    return all(c.lower() in _TRUE | _FALSE or c in ("0", "1") for _, c in cells)
