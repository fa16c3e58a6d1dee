"""Running a study's runs: what a worker does with a run task, and the backends that hand
tasks to workers and yield their results.

A run goes train -> evaluate once, in memory: the worker resolves its config and loads its
dataset once, trains it (:func:`mtvae.pipeline.train_in_memory`, which writes the run directory)
and evaluates the trained model it holds (:func:`mtvae.pipeline.evaluate_run`), which writes the
numbers and figures into the run directory; the stored artifacts are collected from those
files (:mod:`mtvae.study.artifacts`). The worker returns its metrics, timings, artifacts or
error text and never touches the database — the parent process is the only writer. One
failing run never stops the others.

Runs that share a training id (see :func:`mtvae.study.expand.training_identity`) go to one
worker as one task: the first is trained, the others (``RunTask.shared``) get a copy of its
trained run directory with their own ``config.yaml`` and are only evaluated, from the same
model in memory with their own config and dataset (their labels differ). The task's result
lists theirs under ``shared``.

Backends (:data:`BACKENDS`): ``local`` (a pool of worker processes on this machine) and ``ray``
(each run a Ray task on a cluster or a local Ray instance; see :mod:`mtvae.study.ray_backend`).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mtvae.errors import UserError
from mtvae.study.artifacts import FIGURE_FAMILIES, run_artifacts

if TYPE_CHECKING:
    from mtvae.pipeline import TrainedRun
    from mtvae.runconfig import RunConfig

@dataclass(frozen=True)
class RunTask:
    """What a worker needs to train and evaluate one run."""

    run_id: str
    config: dict[str, Any]
    run_dir: str
    metrics: tuple[str, ...]  # the spec's metric families
    figures: bool  # also draw the report's figures (representative runs: the first seed)
    shared: tuple[RunTask, ...] = ()  # runs evaluated from this run's trained model

    def run_ids(self) -> list[str]:
        """This run and the runs sharing its training."""
        return [self.run_id, *(t.run_id for t in self.shared)]

    def added_families(self) -> list[str]:
        """The families evaluated for the report alone: on a figures run, those of
        :data:`~mtvae.study.artifacts.FIGURE_FAMILIES` that the spec lacks."""
        return [name for name in FIGURE_FAMILIES if self.figures and name not in self.metrics]

    def families(self) -> tuple[str, ...]:
        """The metric families to evaluate: the spec's, then the added ones, after them so
        that the spec's families draw from the random state they always drew from
        (evaluation seeds it once, at its start)."""
        return (*self.metrics, *self.added_families())

    def skipped_figures(self) -> tuple[str, ...]:
        """Figures the added families would draw that the study does not store."""
        return tuple(figure for name in self.added_families() for figure in FIGURE_FAMILIES[name])


def execute(task: RunTask) -> dict[str, Any]:
    """Train and evaluate one run (and evaluate the runs sharing its training); return a
    result dict (status done or failed; theirs under ``shared``), never raise."""
    start, cpu = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {"run_id": task.run_id, "status": "failed"}
    trained = None
    shared: list[tuple[RunTask, RunConfig | None]] = [(other, None) for other in task.shared]
    try:
        from mtvae.data.sources import load_dataset
        from mtvae.pipeline import train_in_memory
        from mtvae.runconfig import resolve_config

        # once each: the training and the evaluation read this config and this dataset
        config = resolve_config(task.config)
        data = load_dataset(config.data)
        trained = train_in_memory(config, task.run_dir, overwrite=True, dataset=data)
        configs = [resolve_config(other.config) for other in task.shared]
        for other, other_config in zip(task.shared, configs, strict=True):
            # before this run's evaluation adds its own outputs
            copy_trained_run(trained.run_dir, other.run_dir, other_config)
        shared = list(zip(task.shared, configs, strict=True))
        _evaluate(task, result, trained)
    except Exception as exc:  # the study goes on; the error is stored with the run
        result["error"] = error_text(exc)
    result["wall_s"] = time.perf_counter() - start
    result["cpu_s"] = time.process_time() - cpu
    if task.shared:
        result["shared"] = [_shared_result(other, other_config, trained, result)
                            for other, other_config in shared]
    return result


def _evaluate(task: RunTask, result: dict[str, Any], run: TrainedRun) -> None:
    """Evaluate the trained ``run`` of ``task`` into ``result`` (train_s: the training's
    time), then collect its artifacts from the files the evaluation wrote."""
    from mtvae.io import read_json
    from mtvae.pipeline import evaluate_run

    begun = time.perf_counter()
    notes: list[str] = []
    evaluate_run(run, task.families(), log=notes.append, skip_figures=task.skipped_figures())
    metrics = read_json(run.run_dir / "results.json")  # training's results too
    result.update(
        status="done",
        metrics=metrics,
        notes=notes,
        train_s=metrics.get("time/train_s"),
        eval_s=time.perf_counter() - begun,
        artifacts=run_artifacts(run.run_dir, task.figures),
    )


def _shared_result(task: RunTask, config: RunConfig | None, leader: TrainedRun | None,
                   leader_result: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a run that shares the training of ``leader`` (None, and ``config`` None, when
    that training or its copy failed), with its own ``config`` and a dataset of its own (its
    labels differ); once trained, its evaluation succeeds or fails on its own."""
    from mtvae.autoconf import resolve_auto
    from mtvae.data.sources import load_dataset
    from mtvae.io import write_yaml

    start, cpu = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {"run_id": task.run_id, "status": "failed"}
    if leader is None or config is None:
        result["error"] = (f"training it shares with run {leader_result['run_id']} failed: "
                           + (leader_result.get("error") or ""))
    else:
        try:
            data = load_dataset(config.data)
            # its config.yaml records the values `auto` stands for on its data, as the
            # leader's does (train_run writes that one)
            config = resolve_auto(config, data)
            write_yaml(Path(task.run_dir) / "config.yaml", config.to_dict())
            _evaluate(task, result, leader.sharing(task.run_dir, config, data))
        except Exception as exc:
            result["error"] = error_text(exc)
    result["wall_s"] = time.perf_counter() - start
    result["cpu_s"] = time.process_time() - cpu
    return result


def copy_trained_run(source: str | Path, target: str | Path, config: RunConfig) -> None:
    """Make ``target`` the trained run ``source`` with ``config`` (resolved) as its own
    config.yaml.

    Weights and checkpoints are hard-linked where the filesystem allows (every file is
    replaced, never rewritten in place, so the two runs cannot change each other's files);
    ``results.json`` (training results so far) is copied.
    """
    from mtvae.io import write_yaml

    source, target = Path(source), Path(target)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, copy_function=_link_or_copy,
                    ignore=shutil.ignore_patterns("results.json", "figures", "config.yaml"))
    shutil.copy2(source / "results.json", target / "results.json")
    write_yaml(target / "config.yaml", config.to_dict())


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def error_text(exc: BaseException) -> str:
    """The error's one-line summary followed by its traceback (user errors: the message only)."""
    if isinstance(exc, UserError):
        return f"UserError: {exc}"
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{type(exc).__name__}: {exc}\n\n{trace}"


class Backend(Protocol):
    """Runs tasks somewhere and yields each result as it finishes."""

    def run(self, tasks: list[RunTask], started: Callable[[RunTask], None]) -> Iterator[dict]:
        """Yield one result dict per task; call ``started(task)`` when a worker takes it."""
        ...


def _init_worker(threads: int, parent: int) -> None:
    """Pin threads before torch spins up its pools; exit if the parent study dies.

    Ctrl-C is the parent's to handle (it stops handing out runs and says how to resume);
    workers ignore it and end with the parent.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    import matplotlib

    matplotlib.use("Agg")

    def watch() -> None:  # a killed study must not leave workers writing into its run dirs
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


class LocalBackend:
    """``workers`` processes (spawned, ``threads`` torch/BLAS threads each) on this machine.

    At most ``workers`` runs are in flight, so a run is marked running exactly when a worker
    takes it. If a worker process dies (out of memory, a crash in native code), the pool
    cannot say which one: a run that was alone in flight is recorded as failed; when several
    were, each of them runs again alone, so that only the one that kills its worker is
    recorded as failed. A fresh pool takes the rest. ``target`` is what a worker calls with a
    task (tests substitute their own).
    """

    description = "worker processes on this machine"

    def __init__(self, workers: int, threads: int,
                 target: Callable[[RunTask], dict] = execute) -> None:
        self.workers, self.threads, self.target = workers, threads, target

    def _pool(self) -> ProcessPoolExecutor:
        """A pool with all its worker processes started.

        A spawn pool starts a worker at a submit that finds none idle, and its manager thread
        watches the workers it knew when it last woke: a submit's wake-up can be lost to a
        race, and a worker started then, if it dies (a run killed by the OOM killer), goes
        unnoticed until another run finishes (seen as a 10-minute hang in the killed-worker
        test). One no-op per worker, awaited, starts them all before any run is submitted;
        later submits find idle workers and start none, so every death is seen."""
        import multiprocessing

        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads, os.getpid()),
        )
        for started in [pool.submit(os.getpid) for _ in range(self.workers)]:
            started.result()  # a worker that cannot start (its initializer failed) says so here
        return pool

    def run(self, tasks: list[RunTask], started: Callable[[RunTask], None]) -> Iterator[dict]:
        queue = list(reversed(tasks))
        suspects: list[RunTask] = []  # in flight when a worker died: each runs again alone
        pool = self._pool()
        running: dict[Future, RunTask] = {}
        try:
            while queue or suspects or running:
                source, limit = (suspects, 1) if suspects else (queue, self.workers)
                while source and len(running) < limit:
                    task = source.pop()
                    started(task)
                    running[pool.submit(self.target, task)] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                lost = []  # tasks whose worker (or another of the pool) died
                for future in done:
                    task = running.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        lost.append(task)
                    else:
                        yield future.result()
                if not lost:
                    continue
                lost += running.values()  # the broken pool fails them too
                if len(lost) == 1:  # it was alone in flight: its run killed the worker
                    yield worker_died(lost[0])
                else:
                    suspects += reversed(lost)
                pool.shutdown(wait=False, cancel_futures=True)
                running.clear()
                pool = self._pool()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def worker_died(task: RunTask) -> dict[str, Any]:
    """The failed result of a task whose worker process died while it ran alone (the runs
    sharing its training fail with it)."""
    error = ("BrokenProcessPool: the worker process running this run died (out of memory, or "
             "a crash in native code).")
    result: dict[str, Any] = {"run_id": task.run_id, "status": "failed", "error": error}
    if task.shared:
        result["shared"] = [{"run_id": other.run_id, "status": "failed", "error": error}
                            for other in task.shared]
    return result


# Backends by name: a class built as Class(workers, threads, **options), or "module:Class" for
# one imported on demand (Ray's needs the optional 'ray' package). A class may declare a
# `description` (mtvae study --help), `options`, the keyword options a user may set (the CLI
# refuses them for a backend that does not declare them), and a static `check()`.
BACKENDS: dict[str, type | str] = {
    "local": LocalBackend,
    "ray": "mtvae.study.ray_backend:RayBackend",
}
DEFAULT_BACKEND = "local"


def _backend_class(name: str) -> type:
    if name not in BACKENDS:
        from mtvae.errors import unknown_name

        raise unknown_name("backend", name, BACKENDS)
    entry = BACKENDS[name]
    if isinstance(entry, str):
        import importlib

        module, attr = entry.split(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry


def backend_options(name: str) -> tuple[str, ...]:
    """The keyword options a user may give backend ``name`` (Ray: ``address``, ``gpus``)."""
    return tuple(getattr(_backend_class(name), "options", ()))


def backend_description(name: str) -> str:
    """One line saying where backend ``name`` runs a study's runs."""
    return getattr(_backend_class(name), "description", "")


def check_backend(name: str) -> None:
    """Fail early, before a study writes anything, when backend ``name`` is unknown or cannot
    run here; a backend class may define a static ``check()`` for that (it must start nothing)."""
    check = getattr(_backend_class(name), "check", None)
    if check is not None:
        check()


def get_backend(name: str, workers: int, threads: int, **options: Any) -> Backend:
    """The backend called ``name`` with ``workers`` x ``threads`` (and backend ``options``,
    e.g. Ray's ``address`` and ``gpus``)."""
    return _backend_class(name)(workers, threads, **options)


def default_layout(pending: int, cores: int | None = None) -> tuple[int, int]:
    """``(workers, threads)``: one single-threaded worker per core, capped by the pending runs.

    Study runs are small models on small batches: whole runs split across cores perfectly,
    while torch's intra-op threads have little to split and, when the cores are shared, spin
    and waste CPU time. On 2 cores, 2 workers x 1 thread ran a 10-run slice of the quick
    preset in 128 s; 1 worker x 2 threads needed over 13 minutes for 7 of them (docs/guides/studies.md).
    Leftover cores (fewer runs than cores) become threads of the workers.
    """
    cores = cores or os.cpu_count() or 1
    workers = max(1, min(cores, pending))
    return workers, max(1, cores // workers)
