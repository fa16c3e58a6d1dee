"""DDP under torchrun: 2 CPU processes (gloo) match one process with the same global batch."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mtvae.cli import without_option
from mtvae.data.loader import InMemoryLoader
from mtvae.data.shapes import load_shapes
from mtvae.train.checkpoint import load_checkpoint

SETS = {"data.n_train": 256, "data.n_val": 32, "data.n_test": 32, "data.image_size": 16,
        "model.latent_dim": 4, "model.encoder.arch": "mlp", "model.encoder.hidden": "[32]",
        "train.epochs": 3, "train.batch_size": 32, "train.progress": "false",
        "train.restore_best": "false", "train.threads": 1}


def _train(out: Path, *extra: str, nproc: int | None = None, wait: bool = True):
    sets = [arg for key, value in SETS.items() for arg in ("--set", f"{key}={value}")]
    command = [sys.executable, "-m", "mtvae", "train", "--model", "vae", "--out", str(out), *sets,
               *extra]
    if nproc:
        command += ["--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _epoch_losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r["train/loss"] for r in records if r["kind"] == "epoch"]


def test_shards_of_each_global_batch_partition_it():
    data = load_shapes(n_train=20, n_val=1, n_test=1, image_size=16)
    single = [b.targets["shape"] for b in InMemoryLoader(
        data.train, 8, shuffle=True, generator=torch.Generator().manual_seed(0))]
    shards = [[b.targets["shape"] for b in InMemoryLoader(
        data.train, 8, shuffle=True, generator=torch.Generator().manual_seed(0), shard=(r, 2))]
        for r in range(2)]
    for whole, a, b in zip(single, *shards, strict=True):
        assert torch.equal(torch.stack([a, b], 1).flatten()[: len(whole)], whole)


def test_without_option_drops_the_flag_and_its_value():
    assert without_option(["train", "--nproc", "2", "--out", "x"], "--nproc") == [
        "train", "--out", "x"]
    assert without_option(["train", "--nproc=2"], "--nproc") == ["train"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    _train(root / "single")
    _train(root / "ddp", nproc=2)
    return root


def test_two_processes_match_one_with_the_same_global_batch(runs):
    single, ddp = _epoch_losses(runs / "single"), _epoch_losses(runs / "ddp")
    assert len(single) == len(ddp) == 3
    # Same data and global batches; only the reparametrization noise differs (each rank draws
    # its own eps for its half of the batch), so trajectories agree to within a fraction of 1%.
    assert ddp[0] == pytest.approx(single[0], rel=1e-3)
    assert ddp == pytest.approx(single, rel=1e-2)
    # only rank 0 wrote: one epoch record per epoch, one results file
    assert len(_epoch_losses(runs / "ddp")) == 3
    assert json.loads((runs / "ddp" / "results.json").read_text())["train/epochs"] == 3


def test_ddp_run_resumes_after_being_killed(runs, tmp_path):
    run = tmp_path / "run"
    # mid-epoch checkpoints too: the kill may land inside an epoch
    proc = _train(run, "--set", "train.checkpoint_every=3", nproc=2, wait=False)
    deadline = time.time() + 900  # only against a hang: a busy machine starts slowly
    while time.time() < deadline:
        if (run / "checkpoint/last.pt").exists() and proc.poll() is None:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks
    proc.wait()
    state = load_checkpoint(run / "checkpoint/last.pt")
    assert state["loop"]["step"] >= 3 and state["loop"]["epoch"] <= 3
    # each rank's own noise stream is saved, and the streams differ
    rngs = [r["torch_rng"] for r in state["ranks"]]
    assert len(rngs) == 2 and not torch.equal(rngs[0], rngs[1])
    result = subprocess.run([sys.executable, "-m", "mtvae", "train", "--resume", str(run),
                             "--nproc", "2"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    a = load_file(runs / "ddp" / "model.safetensors")
    b = load_file(run / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # epoch means count every rank's batches once, across the kill (sums may differ in order)
    assert _epoch_losses(run) == pytest.approx(_epoch_losses(runs / "ddp"), rel=1e-9)


def test_ddp_refuses_a_strategy_with_per_task_gradients_and_names_the_registered_others():
    from types import SimpleNamespace

    from torch import nn

    from mtvae.errors import UserError
    from mtvae.objectives.weighting import WeightingConfig, build_weighting
    from mtvae.train.trainer import Trainer

    weighting = build_weighting(WeightingConfig(strategy="pcgrad"), ["recon", "task/a", "task/b"])
    fake = SimpleNamespace(dist=SimpleNamespace(enabled=True), weighting=weighting)
    with pytest.raises(UserError, match="strategy=pcgrad .* use one of fixed, uncertainty, dwa, "
                                        "famo with several processes"):
        Trainer._data_parallel(fake, nn.Linear(1, 1))
