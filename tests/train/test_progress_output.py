"""Progress bars are drawn only on a terminal; output redirected to a file gets one plain
line per epoch instead of hundreds of carriage-return redraws (issue #29)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers_runs.py

from helpers_runs import train_argv  # noqa: E402
from mtvae.train.progress import epoch_line  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")


def train_with_progress(run: Path, stderr) -> subprocess.Popen:
    argv = [sys.executable, "-m", "mtvae", *train_argv(run), "--set", "train.progress=true",
            "--set", "train.epochs=3"]
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, env=env)


def test_redirected_output_gets_one_plain_line_per_epoch(tmp_path):
    log = tmp_path / "train.log"
    with open(log, "wb") as fh:
        assert train_with_progress(tmp_path / "r", fh).wait(timeout=300) == 0
    text = log.read_text()
    assert "\r" not in text and "it/s" not in text
    lines = [line for line in text.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("train loss " in line and "val loss " in line for line in lines)


def test_a_terminal_gets_the_progress_bar(tmp_path):
    leader, follower = pty.openpty()
    # a new pseudo-terminal is 0 columns wide, where a bar has no room to draw
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = train_with_progress(tmp_path / "r", follower)
    os.close(follower)  # the child holds the terminal now; read it while it writes
    chunks = []
    try:
        while chunk := os.read(leader, 65536):
            chunks.append(chunk)
    except OSError:  # EIO: the child exited and its terminal is drained
        pass
    finally:
        os.close(leader)
    assert process.wait(timeout=300) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "\r" in text and "epoch 1/3" in text
    assert "train loss" not in text  # the plain lines are for files and pipes only


def test_epoch_line():
    record = {"epoch": 2, "train/loss": 1.234567, "val/loss": 2.5, "time_s": 3.21}
    assert epoch_line(record, 5) == "epoch 2/5: train loss 1.235, val loss 2.5 (3.2 s)"
