"""npz inputs that used to get misleading or crashing answers (issue #29): a directory or a
device is not "missing", random bytes are not "a pickled array", and a task whose mask is
all False is a clear exit 2, not numpy's zero-size error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers_runs.py

from helpers_runs import TINY, run_cli  # noqa: E402


def refused(capsys, tmp_path, source) -> str:
    status, _, err = run_cli(capsys, "train", "--model", "vae", "--data", f"npz:{source}",
                             "--out", tmp_path / "r", *TINY)
    assert status == 2, err
    assert err.startswith("mtvae: error: ") and err.strip().count("\n") == 0, err
    assert not (tmp_path / "r").exists()
    return err


def test_a_directory_or_a_device_is_named_as_such(capsys, tmp_path):
    (tmp_path / "d.npz").mkdir()
    assert "is a directory, not a file" in refused(capsys, tmp_path, tmp_path / "d.npz")
    if Path("/dev/null").exists():
        assert "is not a regular file" in refused(capsys, tmp_path, "/dev/null")


@pytest.mark.parametrize("content", [bytes(range(256)) * 8, b"root:x:0:0:root:/root:/bin/sh\n"])
def test_bytes_that_are_not_a_zip_are_called_so(capsys, tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    err = refused(capsys, tmp_path, path)
    assert f"'{path}' is not an npz (zip) file" in err and "pickled" not in err


def test_a_mask_that_is_all_false_is_exit_2_naming_the_task(capsys, tmp_path):
    path = tmp_path / "m.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((40, 1, 16, 16), dtype=np.float32), y_c=np.arange(40) % 3,
             mask_c=np.zeros(40, bool))
    err = refused(capsys, tmp_path, path)
    assert "Array 'mask_c'" in err and "is all False: no label of task 'c' is known" in err
    assert "drop y_c and mask_c" in err
