"""Run logs: ``log.jsonl`` (one JSON object per record) and, optionally, TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtvae.io import append_jsonl, write_text


class RunLogger:
    """Append records to ``log.jsonl``; mirror scalars to TensorBoard when asked and available."""

    def __init__(self, run_dir: Path, tensorboard: bool = False) -> None:
        self.path = Path(run_dir) / "log.jsonl"
        self.tb = _tensorboard_writer(Path(run_dir) / "tensorboard") if tensorboard else None

    def log(self, record: dict[str, Any]) -> None:
        """Write one record; ``record['step']`` indexes TensorBoard scalars."""
        append_jsonl(self.path, record)
        if self.tb is not None:
            prefix = record.get("kind", "train")
            for key, value in record.items():
                if isinstance(value, int | float) and key not in ("step", "epoch"):
                    self.tb.add_scalar(f"{prefix}/{key}", value, record.get("step", 0))

    def truncate_after(self, step: int, epochs: int | None = None) -> None:
        """Drop records logged after ``step`` (work lost in a crash that a resume will redo),
        and epoch records beyond ``epochs`` completed ones (an epoch logged just before its
        checkpoint failed is logged again when the resume completes it)."""
        import json

        if not self.path.is_file():
            return
        kept = []
        text = self.path.read_bytes().decode("utf-8", errors="replace")
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
            if not isinstance(record, dict) or _step_of(record) > step:
                continue
            if epochs is not None and record.get("kind") == "epoch" and (
                    _epoch_of(record) > epochs):
                continue
            kept.append(line)
        write_text(self.path, "".join(line + "\n" for line in kept))

    def close(self) -> None:
        """Flush and close TensorBoard, if used."""
        if self.tb is not None:
            self.tb.close()


def _step_of(record: dict[str, Any]) -> float:
    """The record's step; a record without a readable one counts as after every step."""
    step = record.get("step", 0)
    return step if isinstance(step, int | float) and not isinstance(step, bool) else float("inf")


def _epoch_of(record: dict[str, Any]) -> float:
    epoch = record.get("epoch", 0)
    return epoch if isinstance(epoch, int | float) and not isinstance(epoch, bool) else float("inf")


def _tensorboard_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        import warnings

        warnings.warn(
            "train.tensorboard is on but the 'tensorboard' package is not installed; "
            "install it with: pip install 'mtvae[tensorboard]'. Logging to log.jsonl only.",
            stacklevel=2,
        )
        return None
    return SummaryWriter(str(path))


class NullLogger:
    """The logger of ranks other than 0 under DDP: it writes nothing."""

    def log(self, record: dict[str, Any]) -> None:
        """Discard the record."""

    def truncate_after(self, step: int, epochs: int | None = None) -> None:
        """Nothing to truncate."""

    def close(self) -> None:
        """Nothing to close."""
