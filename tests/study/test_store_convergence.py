"""results.db rows carry each run's convergence record; an older database gets the columns."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

from mtvae.study.store import SCHEMA, Store

OLD_RUNS = """CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, variant TEXT NOT NULL, model TEXT NOT NULL, dataset TEXT NOT NULL,
    seed INTEGER NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'queued',
    metrics TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, started_at REAL,
    finished_at REAL, wall_s REAL, train_s REAL, eval_s REAL)"""


def plan_run(rid: str) -> SimpleNamespace:
    return SimpleNamespace(run_id=rid, variant="vae", model="vae", dataset="digits", seed=0,
                           config={})


def test_a_finished_run_stores_its_convergence_record(tmp_path):
    store = Store(tmp_path / "results.db")
    store.add_plan([plan_run("a"), plan_run("b")], [])
    store.record({"run_id": "a", "status": "done", "metrics": {
        "train/converged": True, "train/epochs_trained": 17, "train/best_epoch": 7}})
    store.record({"run_id": "b", "status": "failed", "error": "boom"})
    rows = {r["run_id"]: r for r in store.runs()}
    assert (rows["a"]["converged"], rows["a"]["epochs_trained"], rows["a"]["best_epoch"]) == (
        1, 17, 7)
    assert rows["b"]["converged"] is None and rows["b"]["epochs_trained"] is None


def test_a_database_from_before_the_record_stays_readable(tmp_path):
    path = tmp_path / "results.db"
    with sqlite3.connect(path) as db:
        db.execute(OLD_RUNS)
        for table in ("meta", "cells", "artifacts"):  # as they were then: no robustness table
            db.execute(next(s for s in SCHEMA.split(";") if f"EXISTS {table} (" in s))
        db.execute("INSERT INTO runs (run_id, variant, model, dataset, seed, config, status, "
                   "metrics) VALUES ('old', 'vae', 'vae', 'digits', 0, '{}', 'done', "
                   "'{\"elbo\": 1.0}')")
    store = Store(path)
    (row,) = store.runs()
    assert row["metrics"] == {"elbo": 1.0}
    assert (row["converged"], row["epochs_trained"], row["best_epoch"], row["cpu_s"]) == (
        None, None, None, None)
    assert Store(path, create=False).robustness_cells() == []  # read-only: no table added
