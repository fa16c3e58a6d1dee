"""Run a study into a directory, resumably, then write its report.

``STUDY_DIR`` holds ``study.yaml`` (the spec), ``results.db`` (see :mod:`mtvae.study.store`),
``runs/<run-id>/`` and ``report/``. Running the same spec into the same directory again skips
finished runs, re-runs interrupted ones and, with ``retry_failed``, failed ones.
"""

from __future__ import annotations

import fcntl
import os
import platform
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from mtvae import __version__
from mtvae.errors import UserError
from mtvae.io import read_yaml, write_text
from mtvae.safe_yaml import load_yaml
from mtvae.study.cost import longest_first, task_cost
from mtvae.study.expand import Plan, point_label
from mtvae.study.spec import StudySpec, spec_yaml
from mtvae.study.store import Store
from mtvae.study.workers import (
    DEFAULT_BACKEND,
    RunTask,
    check_backend,
    default_layout,
    get_backend,
)

HEADLINE = ("recon/mse", "nll/iwae", "task/*/accuracy", "probe/*accuracy", "vq/perplexity")


@contextmanager
def study_lock(out: Path):
    """Hold ``out/.lock`` so two studies never write the same directory at once."""
    handle = open(out / ".lock", "a+")  # noqa: SIM115 - held for the whole block
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UserError(
            f"Another `mtvae study` is running in '{out}'. Wait for it to finish (it resumes "
            "where it is), or choose another --out."
        ) from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def prepare_study_dir(out: Path, spec: StudySpec) -> None:
    """Create ``out`` with ``study.yaml``, or check that it holds this same spec."""
    text = spec_yaml(spec)
    stored = out / "study.yaml"
    if stored.is_file():
        previous = read_yaml(stored)
        current = load_yaml(text)
        if previous != current:
            raise UserError(
                f"'{out}' holds a different study: its study.yaml differs from this spec at "
                f"'{_first_difference(previous, current)}'. Resume it with its own spec "
                f"(`mtvae study --spec {stored} --out {out}`), or choose another --out."
            )
        return
    if out.exists() and (not out.is_dir() or any(p.name != ".lock" for p in out.iterdir())):
        raise UserError(
            f"'{out}' exists and is not a study directory (no study.yaml); choose a new or "
            "empty --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    write_text(stored, text)


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return path or "(top level)"


def hardware() -> dict[str, Any]:
    """What the study ran on (for the report's methodology)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mtvae": __version__,
        "commit": source_commit(),
    }


def source_commit() -> str | None:
    """The git commit of the mtvae source that runs, with ``+`` when its ``src/`` has
    uncommitted changes; None outside a git checkout (an installed wheel)."""
    import subprocess

    src = Path(__file__).resolve().parents[2]  # .../src (mtvae/study/study.py)
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+" if dirty.strip() else "") if head else None


def run_study(
    spec: StudySpec,
    out: str | Path,
    workers: int | None = None,
    threads: int | None = None,
    backend: str = DEFAULT_BACKEND,
    retry_failed: bool = False,
    report: Callable[[Path], Any] | None = None,
    log: Callable[[str], None] = print,
    backend_options: dict | None = None,
    train_once: bool = True,
) -> Path:
    """Run every unfinished run of ``spec`` into ``out``; then call ``report(out)`` (the CLI
    passes the report builder, :mod:`mtvae.report` being the floor above); return ``out``.

    ``backend_options`` go to the backend (Ray: ``address``, ``gpus`` per run). With
    ``train_once`` (default), runs that differ only in what training never reads (label
    settings of a label-free model, evaluation settings) share one training; False trains
    every run (the results are the same; for measuring what sharing saves).
    """
    out = Path(out)
    check_backend(backend)  # an unavailable backend fails before anything is written
    plan = spec.plan()  # parse_spec's expansion, unless the spec was built or changed since
    prepare_study_dir(out, spec)
    with study_lock(out):
        store = Store(out / "results.db")
        try:
            _run_pending(store, spec, plan, out, workers, threads, backend, retry_failed, log,
                         backend_options or {}, train_once)
        finally:
            store.close()
    if report is not None:
        report(out)
    return out


def failed_runs(out: str | Path) -> int:
    """How many runs of the study in ``out`` are recorded as failed (none without a
    ``results.db``)."""
    if not (Path(out) / "results.db").is_file():
        return 0
    store = Store(Path(out) / "results.db", create=False)
    try:
        return sum(status == "failed" for status in store.statuses().values())
    finally:
        store.close()


def _run_pending(
    store, spec, plan, out, workers, threads, backend, retry_failed, log, options, train_once
) -> None:
    store.set_meta("spec", spec.model_dump(mode="json"))
    store.add_plan(plan.runs.values(), plan.cells, plan.robustness)
    store.requeue_interrupted()
    todo = _todo(store, plan, out, retry_failed)
    total, finished = len(plan.runs), len(plan.runs) - len(todo)
    statuses = store.statuses()
    failed = sum(statuses.get(rid) == "failed" for rid in plan.runs)
    if not todo:
        note = f" ({failed} failed; rerun them with --retry-failed)" if failed else ""
        log(f"all {total} runs of '{spec.name}' are finished{note}")
        return
    tasks = _tasks(plan, out, todo, spec, train_once)
    workers = workers or default_layout(len(tasks))[0]
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    engine = get_backend(backend, workers, threads, **options)  # ray connects here
    log(f"study '{spec.name}': {total} runs, {finished} already finished, {len(todo)} to run "
        f"({len(tasks)} trainings) on {workers} worker(s) x {threads} thread(s) -> {out}")
    session = {"started": time.time(), "workers": workers, "threads": threads,
               "backend": backend, "runs": len(todo), "hardware": hardware()}
    _execute(store, engine, tasks, plan, total, finished, log)
    session["wall_s"] = time.time() - session["started"]
    store.set_meta("sessions", [*store.meta("sessions", []), session])


def _todo(store: Store, plan: Plan, out: Path, retry_failed: bool) -> list[str]:
    """Runs still to do: not done (or done without results.json), failed ones on request."""
    statuses = store.statuses()
    todo = []
    for rid in plan.runs:
        status = statuses.get(rid, "queued")
        if status == "done" and (out / "runs" / rid / "results.json").is_file():
            continue
        if status == "failed" and not retry_failed:
            continue
        todo.append(rid)
    return todo


def _task(plan: Plan, out: Path, rid: str, spec: StudySpec) -> RunTask:
    run = plan.runs[rid]
    return RunTask(rid, run.config, str(out / "runs" / rid), spec.metrics,
                   figures=run.seed == spec.seeds[0])


def _tasks(plan: Plan, out: Path, todo: list[str], spec: StudySpec, train_once: bool
           ) -> list[RunTask]:
    """One task per training, longest first (:mod:`mtvae.study.cost`): runs to do that share
    a training id are evaluated from the first one's trained model (``train_once``;
    otherwise every run trains)."""
    groups: dict[str, list[str]] = {}
    for rid in todo:
        groups.setdefault(plan.runs[rid].train_id if train_once else rid, []).append(rid)
    tasks = []
    for first, *others in groups.values():
        shared = tuple(_task(plan, out, rid, spec) for rid in others)
        tasks.append(replace(_task(plan, out, first, spec), shared=shared))
    return longest_first(tasks, lambda task: task_cost(task.config, len(task.shared)))


def _execute(store, engine, tasks, plan, total, finished, log) -> None:
    from tqdm.auto import tqdm

    where = {}
    for cell in plan.cells:
        where.setdefault(cell.run_id, point_label(cell.point))
    for cell in plan.robustness:  # in no cell of the grid
        where.setdefault(cell.run_id, f"{point_label(cell.point)}, budget x{cell.factor:g}")
    from mtvae.train.progress import draws_bars

    count = finished  # the bar's own count stays put when it is not drawn (not a terminal)
    with tqdm(total=total, initial=finished, unit="run", desc="study", dynamic_ncols=True,
              disable=not draws_bars(True)) as bar:
        def started(task: RunTask) -> None:
            for rid in task.run_ids():
                store.mark_running(rid)

        for task_result in engine.run(tasks, started=started):
            for result in [task_result, *task_result.pop("shared", [])]:
                store.record(result)
                bar.update()
                count += 1
                run = plan.runs[result["run_id"]]
                bar.write(summary_line(result, run, where[run.run_id], count, total))


def summary_line(result: dict, run, where: str, n: int, total: int) -> str:
    """One line per finished run: status, variant, condition, seed, time, headline metrics."""
    head = (f"[{n:>{len(str(total))}}/{total}] {result['status']:<6} {run.variant} "
            f"({where}, seed {run.seed}) {run.run_id} {result.get('wall_s', 0):.1f}s")
    if result["status"] != "done":
        return f"{head}  {result.get('error', '').splitlines()[0][:200]}"
    return f"{head}  {headline_metrics(result.get('metrics', {}))}"


def headline_metrics(metrics: dict[str, Any], limit: int = 3) -> str:
    """A few key=value pairs of the most telling metrics present."""
    from fnmatch import fnmatch

    picked = []
    for pattern in HEADLINE:
        key = next((k for k in sorted(metrics) if fnmatch(k, pattern)), None)
        if key is not None and isinstance(metrics[key], int | float):
            picked.append(f"{key}={metrics[key]:.4g}")
    return "  ".join(picked[:limit])
