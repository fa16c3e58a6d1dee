"""A full disk while the report is written: exit 2 naming the file, no partial file."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers_runs.py

from helpers_runs import failing_writes, run_cli  # noqa: E402


def test_a_full_disk_while_writing_the_report_exits_2(capsys, monkeypatch, synthetic_study):
    failed = failing_writes(monkeypatch, errno.ENOSPC, lambda path: path.name == "index.html")
    status, _, err = run_cli(capsys, "report", synthetic_study)
    assert status == 2 and failed, err
    assert "index.html" in err and "disk is full" in err and "Free disk space" in err
    assert not list(synthetic_study.rglob("*.tmp"))
    monkeypatch.undo()
    assert run_cli(capsys, "report", synthetic_study)[0] == 0
