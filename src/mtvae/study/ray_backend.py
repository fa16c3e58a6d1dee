"""The Ray backend: each run is a Ray task with declared resources (CPUs, GPUs).

The driver (``mtvae study --backend ray``) submits at most ``workers`` runs at a time, Ray
places them on the cluster's nodes, and every result comes back to the driver, which alone
writes ``results.db`` — exactly as with the local backend, so resume and failure isolation
behave the same. Run directories are written by the nodes, so on a multi-node cluster the
study directory must live on a filesystem every node mounts at the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mtvae.errors import UserError
from mtvae.study.workers import RunTask, error_text, execute


def _execute_with_threads(task: RunTask, threads: int) -> dict:
    """Inside a Ray worker: pin thread pools, then train and evaluate the run."""
    import os

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import matplotlib
    import torch
    from threadpoolctl import threadpool_limits

    matplotlib.use("Agg")
    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        return execute(task)


class RayBackend:
    """Run tasks on a Ray cluster (``address``) or a local Ray instance started on demand."""

    description = "a Ray cluster (--address), else a local Ray instance"
    options = ("address", "gpus")  # the cluster, and the GPUs each run declares

    @staticmethod
    def check() -> None:
        """Fail early, starting nothing, when Ray is not installed."""
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UserError(
                "--backend ray needs the 'ray' package: pip install 'mtvae[ray]' "
                "(or use --backend local)."
            )

    def __init__(
        self, workers: int, threads: int, address: str | None = None, gpus: float = 0.0
    ) -> None:
        self.check()
        import ray

        self.ray, self.workers, self.threads = ray, workers, threads
        if not ray.is_initialized():
            self._connect(address)
        self.task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(
            _execute_with_threads
        )

    def _connect(self, address: str | None) -> None:
        options = {"log_to_driver": False, "include_dashboard": False}
        try:
            if address:
                self.ray.init(address=address, **options)
            else:  # a private local instance sized to the requested layout
                self.ray.init(num_cpus=self.workers * self.threads, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(
                f"Cannot connect to the Ray cluster at '{address}': {exc}. Start it with "
                "`ray start --head` or pass the right --address."
            ) from None

    def run(self, tasks: list[RunTask], started: Callable[[RunTask], None]) -> Iterator[dict]:
        """Keep ``workers`` runs in flight; yield each result as it finishes."""
        queue, running = list(reversed(tasks)), {}
        while queue or running:
            while queue and len(running) < self.workers:
                task = queue.pop()
                started(task)
                running[self.task.remote(task, self.threads)] = task
            done, _ = self.ray.wait(list(running), num_returns=1)
            task = running.pop(done[0])
            try:
                yield self.ray.get(done[0])
            except Exception as exc:  # a worker died or Ray failed the task: record, go on
                yield {"run_id": task.run_id, "status": "failed", "error": error_text(exc)}
