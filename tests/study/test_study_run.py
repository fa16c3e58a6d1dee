"""Running studies: kill and resume, failures recorded, one row per run, safe concurrent writes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mtvae.cli import main
from mtvae.report.build import build_report
from mtvae.study.expand import expand
from mtvae.study.spec import parse_spec
from mtvae.study.store import Store
from mtvae.study.study import run_study
from mtvae.study.workers import default_layout

TINY = {
    "name": "tiny",
    "datasets": {"shapes": {"tasks": ["shape", "x"]}},
    "base": {"data": {"n_train": 256, "n_val": 32, "n_test": 64, "image_size": 16},
             "model": {"latent_dim": 6, "encoder": {"arch": "mlp", "hidden": [32]}},
             "train": {"epochs": 1, "batch_size": 64},
             "eval": {"iwae_k": 4, "iwae_n": 16, "n_grid": 8}},
    "variants": {
        "vae": {"model": "vae"},
        "mt": {"model": "mtvae", "set": {"model.layout": "partitioned", "model.task_dim": 2},
               "baselines": {"reconstruction": "vae", "representation": "vae"}},
    },
    "conditions": {"label_fraction": [0.5, 1.0]},
    "seeds": [0, 1],
    "metrics": ["recon", "task"],
}


def db_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def done_count(path: Path) -> int:
    try:
        return db_rows(path, "SELECT COUNT(*) FROM runs WHERE status = 'done'")[0][0]
    except sqlite3.Error:  # not created yet, or mid-migration
        return 0


def live_children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` and that are not zombies (from procfs)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def still_running(pids: set[int]) -> set[int]:
    running = set()
    for child in pids:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(child)
    return running


def test_killed_study_resumes_to_exactly_one_row_per_run(tmp_path):
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "study"
    command = [sys.executable, "-m", "mtvae", "study", "--spec", str(spec_file), "--out", str(out),
               "--workers", "1", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 900  # only against a hang: a busy machine starts slowly
    while done_count(out / "results.db") < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    workers = live_children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    plan = expand(parse_spec(TINY))
    done_at_kill = done_count(out / "results.db")
    assert 1 <= done_at_kill < len(plan.runs), "the study should be killed mid-way"
    # the orphaned workers notice their parent is gone and exit (however busy the machine)
    deadline = time.time() + 600  # only against a hang
    while still_running(workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not still_running(workers), "an orphaned worker kept running"

    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"{done_at_kill} already finished" in finished.stdout
    assert "report: " in finished.stdout and "index.html" in finished.stdout
    rows = db_rows(out / "results.db", "SELECT run_id, status FROM runs")
    assert sorted(r[0] for r in rows) == sorted(plan.runs)  # one row per run, none lost
    assert {r[1] for r in rows} == {"done"}
    assert db_rows(out / "results.db", "PRAGMA journal_mode")[0][0] == "wal"
    assert len(db_rows(out / "results.db", "SELECT * FROM cells")) == len(plan.cells)
    for rid in plan.runs:
        assert (out / "runs" / rid / "results.json").is_file()
    assert (out / "report" / "index.html").is_file() and (out / "report" / "report.md").is_file()


def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path, capsys):
    raw = yaml.safe_load(yaml.safe_dump(TINY))
    # x's head reads the shared block, but two task blocks of 2 fill latent_dim 4: the model
    # fails when it is built (a latent too narrow for the task blocks is refused at plan time)
    raw["variants"]["mt"]["set"].update({"model.latent_dim": 4, "model.head_blocks.x": ["shared"]})
    raw["conditions"] = {}
    spec = parse_spec(raw)
    out = run_study(spec, tmp_path / "s", workers=1, threads=1, report=build_report)
    rows = Store(out / "results.db").runs()
    assert len(rows) == 4  # 2 variants x 2 seeds
    for row in rows:
        if row["variant"] == "vae":
            assert row["status"] == "done" and row["metrics"]["recon/mse"] > 0
        else:
            assert row["status"] == "failed" and "reads the shared block" in row["error"]
    report = (out / "report" / "report.md").read_text()
    assert "Failed runs" in report and "reads the shared block" in report
    # a rerun leaves failed runs alone unless asked, and exits 3 saying how to retry them
    assert main(["study", "--spec", str(out / "study.yaml"), "--out", str(out)]) == 3
    printed = capsys.readouterr()
    assert "(2 failed; rerun them with --retry-failed)" in printed.out
    assert (f"2 runs of the study failed (their errors are in the report's 'Failed runs' "
            f"section); fix the cause, then run them again with `mtvae study --spec "
            f"{out / 'study.yaml'} --out {out} --retry-failed`.") in printed.err
    assert main(["study", "--spec", str(out / "study.yaml"), "--out", str(out),
                 "--retry-failed"]) == 3  # they fail again
    attempts = {(r["variant"], r["attempts"]) for r in Store(out / "results.db").runs()}
    assert attempts == {("mt", 2), ("vae", 1)}


def _kills_its_worker_or_waits(task) -> dict:
    """A worker's target (module level: spawned workers import it). 'bad' kills its own worker
    once 'good' runs; 'good' waits on its first attempt (so it is in flight when the worker
    dies: the pool then breaks under it too, and terminates it) and finishes on any later
    one. A first attempt that is never terminated reports so after two minutes (a pool that
    missed the death: it once did in about 3 of 8 runs, when a worker started late)."""
    marks = Path(task.run_dir)
    if task.run_id == "bad":
        for _ in range(6000):  # at most 5 minutes (a busy machine), should 'good' never start
            if (marks / "good-started").exists():
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
    if not (marks / "good-started").exists():
        (marks / "good-started").touch()
        time.sleep(120)  # abandoned: the pool breaks and its workers are terminated
        return {"run_id": task.run_id, "status": "not terminated: the pool missed the death"}
    return {"run_id": task.run_id, "status": "done"}


def test_a_worker_killed_by_its_run_fails_that_run_only(tmp_path):
    """Both runs are in flight when one kills its worker (SIGKILL, as the kernel's OOM killer
    does); each then runs again alone: the healthy one finishes, the other fails."""
    from mtvae.study.workers import LocalBackend, RunTask

    tasks = [RunTask(rid, {}, str(tmp_path), ("recon",), False) for rid in ("bad", "good")]
    started = []
    results = list(LocalBackend(2, 1, target=_kills_its_worker_or_waits).run(
        tasks, lambda task: started.append(task.run_id)))
    assert {r["run_id"]: r["status"] for r in results} == {"bad": "failed", "good": "done"}
    bad = next(r for r in results if r["run_id"] == "bad")
    assert "worker process running this run died" in bad["error"]
    # 'good' is never recorded failed though it was in flight when the pool broke; how often
    # each started depends on when the pool noticed the death (a busy machine reorders it)
    assert set(started) == {"bad", "good"}


class _Run:
    def __init__(self, i: int) -> None:
        self.run_id, self.variant, self.model = f"r{i:03d}", "v", "vae"
        self.dataset, self.seed, self.config = "shapes", i, {"i": i}


def _writer(path: str, start: int, n: int) -> None:
    store = Store(path)
    for i in range(start, start + n):
        store.add_plan([_Run(i)], [])
        store.mark_running(f"r{i:03d}")
        store.record({"run_id": f"r{i:03d}", "status": "done", "metrics": {"m": i},
                      "artifacts": {"curve": ("json", b"[]")}})
    store.close()


@pytest.mark.parametrize("writers", [4])
def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path, writers):
    path = str(tmp_path / "results.db")
    Store(path).close()
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_writer, args=(path, k * 25, 25)) for k in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = db_rows(Path(path), "SELECT run_id, status, metrics FROM runs")
    assert len(rows) == len({r[0] for r in rows}) == 25 * writers
    assert {r[1] for r in rows} == {"done"}
    assert db_rows(Path(path), "SELECT COUNT(*) FROM artifacts")[0][0] == 25 * writers


def test_default_layout_is_one_single_threaded_worker_per_core():
    assert default_layout(30, cores=2) == (2, 1)
    assert default_layout(1, cores=2) == (1, 2)  # a lone run gets the spare core as a thread
    assert default_layout(5, cores=16) == (5, 3)
