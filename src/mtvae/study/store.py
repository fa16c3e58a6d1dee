"""The results database of a study: SQLite in WAL mode, one row per run.

Tables:

* ``runs`` — one row per run id (UNIQUE): variant, model, dataset, seed, resolved config
  (JSON), status (queued | running | done | failed), metrics (JSON of ``results.json``), error
  text, attempts, start/finish times and timings (wall, train and eval seconds, and the
  worker's CPU seconds, which do not grow when other processes share the cores), and the
  convergence record of its training (``converged`` 0/1, ``epochs_trained``, ``best_epoch``;
  see :mod:`mtvae.train.convergence`; NULL in a database written before mtvae recorded it).
* ``cells`` — the grid: (dataset, condition point, variant, seed) -> run id. Several cells may
  share a run when a condition does not change a variant's config.
* ``robustness`` — the centre point re-run with the maximum budget times ``factor`` (a
  spec's ``robustness``): (dataset, point, variant, seed, factor) -> run id. These runs are
  in ``runs`` but in no cell, so the report's analyses never mix them with the grid.
* ``artifacts`` — small per-run outputs the report needs (PNG grids, training curves), so the
  report is rebuilt from this file alone.
* ``meta`` — the spec, hardware and session timings.

Every write is one short transaction (``BEGIN IMMEDIATE``) of ``INSERT ... ON CONFLICT``
statements with a busy timeout, so concurrent writers neither lose nor duplicate rows; in a
study only the parent process writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mtvae.errors import UserError

STATUSES = ("queued", "running", "done", "failed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    variant     TEXT NOT NULL,
    model       TEXT NOT NULL,
    dataset     TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    config      TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed')),
    metrics     TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    started_at  REAL,
    finished_at REAL,
    wall_s      REAL,
    train_s     REAL,
    eval_s      REAL,
    cpu_s       REAL,
    converged      INTEGER,
    epochs_trained INTEGER,
    best_epoch     INTEGER
);
CREATE TABLE IF NOT EXISTS cells (
    dataset TEXT NOT NULL,
    point   TEXT NOT NULL,
    variant TEXT NOT NULL,
    seed    INTEGER NOT NULL,
    run_id  TEXT NOT NULL REFERENCES runs (run_id),
    PRIMARY KEY (dataset, point, variant, seed)
);
CREATE TABLE IF NOT EXISTS robustness (
    dataset TEXT NOT NULL,
    point   TEXT NOT NULL,
    variant TEXT NOT NULL,
    seed    INTEGER NOT NULL,
    factor  REAL NOT NULL,
    run_id  TEXT NOT NULL REFERENCES runs (run_id),
    PRIMARY KEY (dataset, point, variant, seed, factor)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    name   TEXT NOT NULL,
    kind   TEXT NOT NULL CHECK (kind IN ('png', 'json')),
    data   BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""

# Columns of `runs` added after the first release, and their SQL types.
ADDED_COLUMNS = {"cpu_s": "REAL", "converged": "INTEGER", "epochs_trained": "INTEGER",
                 "best_epoch": "INTEGER"}
# The convergence columns and the results.json key each is read from.
CONVERGENCE_KEYS = {"converged": "train/converged", "epochs_trained": "train/epochs_trained",
                    "best_epoch": "train/best_epoch"}


def convergence_record(metrics: dict[str, Any] | None) -> list[int | None]:
    """The convergence columns of a run from its metrics (None where a key is missing)."""
    metrics = metrics or {}
    values = [metrics.get(key) for key in CONVERGENCE_KEYS.values()]
    return [None if v is None else int(v) for v in values]


class Store:
    """A study's ``results.db``."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UserError(
                f"'{self.path}' does not exist: this is not a study directory (run "
                "`mtvae study --out DIR` first)."
            )
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=60000")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
            self._add_missing_columns()
        except sqlite3.DatabaseError as exc:
            raise UserError(f"Cannot open the results database '{self.path}': {exc}.") from None

    def _add_missing_columns(self) -> None:
        """Databases written by an older mtvae get the columns added since (NULL)."""
        have = {row[1] for row in self.db.execute("PRAGMA table_info(runs)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in have:
                self.db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (taken at once, so no reader-to-writer upgrade races)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- meta -----------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        """Store ``value`` (as JSON) under ``key``."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def meta(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # --- the plan -------------------------------------------------------------------------
    def add_plan(self, runs: Iterable[Any], cells: Iterable[Any], robustness: Iterable[Any] = ()
                 ) -> None:
        """Insert planned runs (existing rows are kept as they are), the grid's cells and
        the robustness re-runs' cells."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO runs (run_id, variant, model, dataset, seed, config) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING",
                [(r.run_id, r.variant, r.model, r.dataset, r.seed,
                  json.dumps(r.config, sort_keys=True)) for r in runs],
            )
            db.executemany(
                "INSERT INTO cells (dataset, point, variant, seed, run_id) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (dataset, point, variant, seed) DO UPDATE SET run_id = excluded.run_id",
                [(c.dataset, c.point, c.variant, c.seed, c.run_id) for c in cells],
            )
            db.executemany(
                "INSERT INTO robustness (dataset, point, variant, seed, factor, run_id) VALUES "
                "(?, ?, ?, ?, ?, ?) ON CONFLICT (dataset, point, variant, seed, factor) "
                "DO UPDATE SET run_id = excluded.run_id",
                [(c.dataset, c.point, c.variant, c.seed, c.factor, c.run_id)
                 for c in robustness],
            )

    def requeue_interrupted(self) -> int:
        """Runs left ``running`` by a study that was killed go back to ``queued``."""
        with self.transaction() as db:
            return db.execute("UPDATE runs SET status = 'queued' WHERE status = 'running'").rowcount

    def statuses(self) -> dict[str, str]:
        """``{run_id: status}`` for every run."""
        return dict(self.db.execute("SELECT run_id, status FROM runs"))

    # --- results --------------------------------------------------------------------------
    def mark_running(self, run_id: str) -> None:
        """A worker has the run."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = 'running', started_at = ?, attempts = attempts + 1, "
                "error = NULL WHERE run_id = ?",
                (time.time(), run_id),
            )

    def record(self, result: dict[str, Any]) -> None:
        """Store a finished run (done or failed) and its artifacts in one transaction."""
        status = result["status"]
        if status not in ("done", "failed"):
            raise ValueError(f"a finished run is done or failed, got {status!r}")
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, metrics = ?, error = ?, finished_at = ?, "
                "wall_s = ?, train_s = ?, eval_s = ?, cpu_s = ?, converged = ?, "
                "epochs_trained = ?, best_epoch = ? WHERE run_id = ?",
                (status, json.dumps(result.get("metrics")) if result.get("metrics") else None,
                 result.get("error"), time.time(), result.get("wall_s"), result.get("train_s"),
                 result.get("eval_s"), result.get("cpu_s"),
                 *convergence_record(result.get("metrics")), result["run_id"]),
            )
            db.executemany(
                "INSERT INTO artifacts (run_id, name, kind, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, name) DO UPDATE SET kind = excluded.kind, data = excluded.data",
                [(result["run_id"], name, kind, data)
                 for name, (kind, data) in result.get("artifacts", {}).items()],
            )

    def runs(self) -> list[dict[str, Any]]:
        """Every run row as a dict (config and metrics parsed)."""
        cursor = self.db.execute("SELECT * FROM runs ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        rows = []
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["config"] = json.loads(row["config"])
            row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
            rows.append(row)
        return rows

    def cells(self) -> list[dict[str, Any]]:
        """Every cell of the grid as a dict."""
        cursor = self.db.execute(
            "SELECT dataset, point, variant, seed, run_id FROM cells ORDER BY rowid"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    def robustness_cells(self) -> list[dict[str, Any]]:
        """Every robustness re-run's cell as a dict (dataset, point, variant, seed, factor,
        run_id)."""
        cursor = self.db.execute("SELECT dataset, point, variant, seed, factor, run_id FROM "
                                 "robustness ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    def artifact(self, run_id: str, name: str) -> tuple[str, bytes] | None:
        """``(kind, data)`` of one stored artifact, or None."""
        row = self.db.execute(
            "SELECT kind, data FROM artifacts WHERE run_id = ? AND name = ?", (run_id, name)
        ).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def artifact_names(self, run_id: str) -> list[str]:
        """Names of the artifacts stored for ``run_id``."""
        rows = self.db.execute(
            "SELECT name FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
        )
        return [r[0] for r in rows]
