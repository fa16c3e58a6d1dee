"""How training shows its progress: a bar on a terminal, one plain line per epoch elsewhere.

A progress bar redraws itself with carriage returns many times a second; written to a file
(``mtvae train ... > train.log``) or a pipe it leaves hundreds of partial lines per epoch. So
bars are drawn only when standard error is a terminal, and otherwise each finished epoch
prints one line (with ``train.progress: false``, nothing).
"""

from __future__ import annotations

import sys


def draws_bars(progress: bool) -> bool:
    """Whether to draw progress bars: asked for and standard error is a terminal."""
    try:
        return progress and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def epoch_line(record: dict, epochs: int) -> str:
    """``epoch 3/10: train loss 0.1234, val loss 0.2345 (12.3 s)`` from an epoch record."""
    parts = [f"{split} loss {record[key]:.4g}" for split, key in
             (("train", "train/loss"), ("val", "val/loss")) if isinstance(record.get(key), float)]
    time = f" ({record['time_s']:.1f} s)" if isinstance(record.get("time_s"), float) else ""
    return f"epoch {record.get('epoch')}/{epochs}: {', '.join(parts) or 'done'}{time}"


def print_epoch_line(record: dict, epochs: int) -> None:
    """Print :func:`epoch_line` to standard error at once (a log file follows each epoch)."""
    print(epoch_line(record, epochs), file=sys.stderr, flush=True)
