"""A damaged or unusable results.db: `mtvae report` opens it read-only and never changes it;
a missing table or metrics that are not a JSON mapping are reported as damage with the way
to recover; a full disk, a disk I/O error or a read-only study during `mtvae study` are exit
2 saying the cause and the next step (issue #29)."""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers_runs.py

from helpers_runs import run_cli  # noqa: E402
from mtvae.study.store import Store  # noqa: E402


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(capsys, *argv) -> str:
    status, _, err = run_cli(capsys, *argv)
    assert status == 2, err
    assert err.startswith("mtvae: error: ") and err.strip().count("\n") == 0, err
    return err


def damage(db: Path, sql: str) -> None:
    with sqlite3.connect(db) as con:
        con.executescript(sql)
    con.close()


@pytest.mark.parametrize("sql, what", [
    ("DROP TABLE cells;", "its table cells is missing"),
    ("PRAGMA foreign_keys=OFF; DROP TABLE artifacts; DROP TABLE runs;",
     "its tables runs, artifacts are missing"),
    ("UPDATE runs SET status = 'done', metrics = 'not json {' WHERE rowid = 1;",
     "the metrics of run"),
    ("UPDATE runs SET status = 'done', metrics = '[1, 2]' WHERE rowid = 1;",
     "is not a JSON mapping"),
    ("UPDATE meta SET value = '{{' WHERE key = 'spec';", "the meta 'spec' is not JSON"),
])
def test_report_names_the_damage_and_the_way_out_and_changes_nothing(
    capsys, synthetic_study, sql, what
):
    db = synthetic_study / "results.db"
    damage(db, sql)
    before = digest(db)
    tables = {r[0] for r in sqlite3.connect(db).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    err = refused(capsys, "report", synthetic_study)
    assert f"The results database '{db}' is damaged: " in err and what in err
    assert "It was left unchanged" in err
    assert f"mtvae study --spec {synthetic_study / 'study.yaml'} --out NEW_DIR" in err
    assert digest(db) == before  # report did not recreate the table it found missing
    assert {r[0] for r in sqlite3.connect(db).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")} == tables


def test_the_study_itself_refuses_a_database_missing_a_table(capsys, synthetic_study):
    db = synthetic_study / "results.db"
    damage(db, "DROP TABLE cells;")
    before = digest(db)
    with pytest.raises(Exception, match="is damaged: its table cells is missing"):
        Store(db)
    assert digest(db) == before


def test_report_on_an_intact_store_leaves_it_byte_for_byte(capsys, synthetic_study):
    db = synthetic_study / "results.db"
    before = digest(db)
    assert run_cli(capsys, "report", synthetic_study)[0] == 0
    assert digest(db) == before


@pytest.mark.parametrize("cause, meaning", [
    ("database or disk is full", "the disk is full. Free disk space, then run the same command "
                                 "again: the study resumes where it stopped"),
    ("disk I/O error", "a disk I/O error"),
    ("attempt to write a readonly database", "the file is read-only"),
    ("unable to open database file", "cannot be opened for writing"),
])
def test_a_database_failure_during_a_study_is_exit_2_with_cause_and_next_step(
    capsys, monkeypatch, tmp_path, cause, meaning
):
    """SQLite's own errors, raised where the study records a finished run (a full disk is
    simulated; the real disk is not filled)."""
    import mtvae.study.store as store_module

    def failing(self, result):
        raise sqlite3.OperationalError(cause)

    monkeypatch.setattr(store_module.Store, "record",
                        store_module._plain_errors(failing))
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: t\ndatasets: {shapes: {tasks: [shape]}}\nvariants: {vae: {model: vae}}\n"
        "metrics: [recon]\nseeds: [0]\n"
        "base: {data: {n_train: 64, n_val: 16, n_test: 16, image_size: 16}, "
        "model: {latent_dim: 2, encoder: {arch: mlp, hidden: [8]}}, "
        "train: {epochs: 1, batch_size: 32, progress: false}, eval: {iwae_k: 2, iwae_n: 4}}\n")
    err = refused(capsys, "study", "--spec", spec, "--out", tmp_path / "out", "--workers", "1")
    assert f"Cannot use the results database '{tmp_path / 'out' / 'results.db'}': " in err
    assert meaning in err
