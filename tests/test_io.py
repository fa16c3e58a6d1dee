"""Atomic writes leave either the old file or the new one, never a partial file."""

import json

import pytest

from mtvae.io import append_jsonl, atomic_write, read_json, write_json


def test_write_json_replaces_content_and_maps_nan_to_null(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": 1.0})
    write_json(path, {"a": float("nan"), "b": [float("inf")]})
    assert read_json(path) == {"a": None, "b": [None]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp files left behind


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"ok": True})

    def explode(tmp):
        tmp.write_text("{partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(path, explode)
    assert read_json(path) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_append_jsonl_writes_one_object_per_line(tmp_path):
    path = tmp_path / "log.jsonl"
    append_jsonl(path, {"step": 1})
    append_jsonl(path, {"step": 2, "x": float("nan")})
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"step": 1}, {"step": 2, "x": None}]


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    path = tmp_path / "r.json"
    write_json(path, {})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
