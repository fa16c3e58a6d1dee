"""Crash safety: mid-epoch checkpoints, SIGKILL at random moments, non-finite losses."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mtvae.config import resolve_config
from mtvae.data.shapes import load_shapes
from mtvae.errors import UserError
from mtvae.pipeline import resume_run, train_run
from mtvae.train.checkpoint import load_checkpoint
from mtvae.train.trainer import CHECKPOINT, Trainer

DATA = {"n_train": 320, "n_val": 32, "n_test": 32, "image_size": 16}


def _config(**train):
    return resolve_config({
        "data": DATA,
        "model": {"name": "vae", "latent_dim": 4, "encoder": {"arch": "mlp", "hidden": [32]}},
        "train": {"epochs": 3, "batch_size": 32, "progress": False, "checkpoint_every": 3,
                  "restore_best": False, **train},
    })


def _epoch_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records if r["kind"] == "epoch"]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def data():
    return load_shapes(**{k: v for k, v in DATA.items()})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    return train_run(_config(), tmp_path_factory.mktemp("ref") / "run", dataset=data)


def _crash_after(monkeypatch, saves: int) -> None:
    original = Trainer._save_checkpoint
    calls = {"n": 0}

    def crash(self, *args, **kwargs):
        original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == saves:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(Trainer, "_save_checkpoint", crash)


def test_resume_from_a_mid_epoch_checkpoint_is_exact(tmp_path, data, reference, monkeypatch):
    # 10 batches per epoch, checkpoint every 3: saves after batches 3, 6, 9 and at the end
    _crash_after(monkeypatch, 4)
    with pytest.raises(RuntimeError):
        train_run(_config(), tmp_path / "run", dataset=data)
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert state["loop"]["epoch"] == 1 and state["loop"]["batch_in_epoch"] == 0
    _crash_after(monkeypatch, 2)  # inside epoch 2, after its 6th batch
    with pytest.raises(RuntimeError):
        resume_run(tmp_path / "run", dataset=data)
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert state["loop"]["epoch"] == 1 and state["loop"]["batch_in_epoch"] == 6
    assert "epoch" in state  # the epoch's loader state and accumulators
    monkeypatch.undo()
    resume_run(tmp_path / "run", dataset=data)
    assert _same_weights(reference, tmp_path / "run")
    assert _epoch_records(reference) == _epoch_records(tmp_path / "run")


def _kill_trial(tmp_path: Path, reference: Path, rng: random.Random, kills: int = 2) -> int:
    """Train in a subprocess, SIGKILL it ``kills`` times at random moments while it trains,
    then let a resume finish; every checkpoint must stay readable, every kill but a run that
    finished first must be followed by a real ``--resume``, and the end must equal the
    reference run. Returns the number of resumes."""
    run = tmp_path / "run"
    base = [sys.executable, "-m", "mtvae", "train"]
    command, resumes = [*base, "--model", "vae", "--out", str(run), *_cli_sets()], 0
    for attempt in range(kills + 1):
        seen = _checkpoint_id(run)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if attempt < kills:  # kill only once this attempt has written a checkpoint
            while proc.poll() is None and _checkpoint_id(run) == seen:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.2))  # somewhere in the epochs that follow
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        load_checkpoint(run / CHECKPOINT)  # never unreadable, whenever the kill came
        command, resumes = [*base, "--resume", str(run)], resumes + 1
    assert proc.returncode == 0, proc.stderr.read().decode()
    assert resumes >= 1  # the SIGKILL -> resume path really ran
    assert _same_weights(reference, run)
    assert _epoch_records(reference) == _epoch_records(run)
    return resumes


def _checkpoint_id(run: Path) -> tuple[int, int] | None:
    """Identity of the current checkpoint file (a new write replaces the inode)."""
    try:
        stat = (run / CHECKPOINT).stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _cli_sets() -> list[str]:
    sets = {"data.n_train": 320, "data.n_val": 32, "data.n_test": 32, "data.image_size": 16,
            "model.latent_dim": 4, "model.encoder.arch": "mlp", "model.encoder.hidden": "[32]",
            "train.epochs": 10, "train.batch_size": 32, "train.progress": "false",
            "train.checkpoint_every": 3, "train.restore_best": "false", "train.threads": 1}
    return [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli_ref") / "run"
    command = [sys.executable, "-m", "mtvae", "train", "--model", "vae", "--out", str(run),
               *_cli_sets()]
    subprocess.run(command, check=True, capture_output=True,
                   env={**os.environ, "PYTHONHASHSEED": "0"})
    return run


@pytest.mark.parametrize("trial", range(2))
def test_sigkill_at_random_moments_then_resume_matches_uninterrupted(tmp_path, cli_reference, trial):
    _kill_trial(tmp_path, cli_reference, random.Random(trial))


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(2, 22))
def test_sigkill_series(tmp_path, cli_reference, trial):
    _kill_trial(tmp_path, cli_reference, random.Random(trial), kills=4)


def _nan_data(data):
    bad = load_shapes(**{k: v for k, v in DATA.items()})
    bad.train.x[5] = float("nan")  # one poisoned image: exactly one batch per epoch is bad
    return bad


def test_non_finite_loss_can_skip_batches(tmp_path, data):
    run = train_run(_config(nonfinite="skip"), tmp_path / "run", dataset=_nan_data(data))
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    skips = [r for r in records if r["kind"] == "skip"]
    assert len(skips) == 3 and skips[0]["terms"] == ["recon", "kl"]
    assert json.loads((run / "results.json").read_text())["train/steps"] == 27
    assert all(torch.isfinite(t).all() for t in load_file(run / "model.safetensors").values())


def test_too_many_skipped_batches_stop_the_run(tmp_path, data):
    with pytest.raises(UserError, match="more than train.max_skipped=1"):
        train_run(_config(nonfinite="skip", max_skipped=1), tmp_path / "run",
                  dataset=_nan_data(data))


def test_non_finite_loss_stops_by_default_and_keeps_the_last_good_checkpoint(tmp_path, data):
    run = tmp_path / "run"
    with pytest.raises(UserError, match=r"non-finite at step (\d+)") as err:
        train_run(_config(epochs=2), run, dataset=_nan_data(data))
    failed_step = int(err.value.args[0].split("at step ")[1].split()[0])
    state = load_checkpoint(run / CHECKPOINT)  # the last good checkpoint is intact
    assert state["loop"]["step"] < failed_step
    assert not (run / "model.safetensors").exists()
