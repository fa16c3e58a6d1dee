"""Data-parallel training with ``torch.distributed`` (DDP), launched by ``torchrun``.

``torchrun --nproc_per_node N -m mtvae train ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; each joins one process group (gloo on CPU, NCCL on GPU).
``train.batch_size`` stays the *global* batch: every rank takes its share of each global
batch, DDP averages the gradients, so one step equals a single-process step on the same
batch. Only rank 0 writes logs, checkpoints and results.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from mtvae.errors import UserError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the process group (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1


def context_from_env() -> DistContext:
    """Read the torchrun environment; no variables means a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group when launched by torchrun (idempotent)."""
    ctx = context_from_env()
    if ctx.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
    return ctx


def rank_device(device: torch.device, ctx: DistContext) -> torch.device:
    """Each rank's device: its own GPU under CUDA, the CPU otherwise."""
    if device.type == "cuda" and ctx.enabled:
        return torch.device("cuda", ctx.local_rank)
    return device


def all_reduce_sums(
    values: dict[str, float], ctx: DistContext, device: torch.device | None = None
) -> dict[str, float]:
    """Sum each value over all ranks (keys must be the same on every rank).

    ``device``: where the reduction runs, the rank's GPU under NCCL (which has no CPU tensors).
    """
    if not ctx.enabled or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.tolist(), strict=True))


def gather_objects(obj: object, ctx: DistContext) -> list:
    """``obj`` of every rank, in rank order (``[obj]`` for a single process)."""
    if not ctx.enabled:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """Seed of one rank's own random stream: distinct per rank and step, reproducible.

    Ranks share the run's seed for everything that must agree (initial weights, the order of
    the global batches) but each draws its own reparametrisation noise from this seed, as
    independent processes would; ``SeedSequence`` mixes the three numbers so nearby seeds do
    not give overlapping streams.
    """
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op for a single process)."""
    if ctx.enabled:
        dist.barrier()


def check_global_batch(batch_size: int, ctx: DistContext) -> None:
    """The global batch must split evenly over the ranks."""
    if ctx.enabled and batch_size % ctx.world_size:
        raise UserError(
            f"train.batch_size={batch_size} (the global batch) is not divisible by the "
            f"{ctx.world_size} processes; choose a multiple of {ctx.world_size}."
        )


def launch(nproc: int, argv: list[str]) -> int:
    """Re-run this command under torchrun with ``nproc`` processes on this machine."""
    if nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {nproc}.")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "mtvae", *argv]
    return subprocess.call(command)
