"""The quantizer's training-mode state under DDP: the same on every rank, from every rank's data.

Two gloo processes each quantise their own batch; afterwards the codebook and buffers must be
identical across ranks (restarts and k-means are rank 0's choice), and usage / EMA statistics
must count both ranks' batches.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mtvae.latent.vq import VectorQuantizer, VQOptions
from mtvae.train.distributed import rank_seed

WORLD = 2
CASES = {  # name -> quantizer options
    "gradient codebook, restarts": {"dead_code_steps": 1},
    "ema codebook, restarts": {"ema": True, "dead_code_steps": 1},
    "kmeans init": {"kmeans_init": True, "dead_code_steps": None},
    "ema codebook, fixed codes": {"ema": True, "dead_code_steps": None},
}
# For "fixed codes": code 0 sits on rank 0's points, code 1 on rank 1's, codes 2-3 far away.
FIXED = torch.tensor([[5.0, 5.0], [-5.0, -5.0], [50.0, 50.0], [-50.0, 50.0]])


def _rank_batch(rank: int) -> torch.Tensor:
    """Rank 0's points sit near +5 in every dim and rank 1's near -5: usage differs by rank."""
    gen = torch.Generator().manual_seed(100 + rank)
    centre = 5.0 if rank == 0 else -5.0
    return centre + 0.1 * torch.randn(32, 2, generator=gen)


def _worker(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    torch.manual_seed(rank_seed(0, rank))  # as the trainer does: ranks draw differently
    out = {}
    for name, options in CASES.items():
        torch.manual_seed(0)  # same initial codebook on both ranks, as DDP's broadcast makes it
        vq = VectorQuantizer(VQOptions(num_codes=4, code_dim=2, **options))
        if name == "ema codebook, fixed codes":
            vq.codebook.copy_(FIXED)
            vq.ema_sum.copy_(FIXED)  # unit counts: consistent EMA statistics
        torch.manual_seed(rank_seed(0, rank))
        vq.train()
        for _ in range(3):
            vq(_rank_batch(rank))
        state = {k: v.clone() for k, v in vq.state_dict().items()}
        gathered = [None] * WORLD
        dist.all_gather_object(gathered, state)
        out[name] = gathered
    if rank == 0:
        results.update(out)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    init_file = tmp_path_factory.mktemp("ddp_vq") / "init"
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(str(init_file), results), nprocs=WORLD, join=True)
        return dict(results)


@pytest.mark.parametrize("case", list(CASES))
def test_codebook_and_buffers_agree_across_ranks(states, case):
    rank0, rank1 = states[case]
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"{case}: {key} differs between ranks"


def test_usage_and_ema_statistics_count_both_ranks_batches(states):
    state = states["ema codebook, fixed codes"][0]
    # Rank 0's 32 points all use code 0, rank 1's all use code 1: counted over both ranks,
    # codes 0 and 1 are used every step and codes 2 and 3 never (3 steps).
    assert state["unused_steps"].tolist() == [0, 0, 3, 3]
    # EMA cluster sizes start at 1 and move 1% a step toward the step's counts (32, 32, 0, 0)
    used, unused = 32 - 31 * 0.99**3, 0.99**3
    torch.testing.assert_close(state["ema_count"], torch.tensor([used, used, unused, unused]))


def test_rank_seeds_are_distinct_and_reproducible():
    seeds = {rank_seed(7, r) for r in range(8)}
    assert len(seeds) == 8
    assert rank_seed(7, 3) == rank_seed(7, 3) != rank_seed(8, 3)
    assert rank_seed(7, 1, step=10) != rank_seed(7, 1)
