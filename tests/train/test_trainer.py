"""The trainer and run directories: contract files, save/load round trip, resume equals
uninterrupted (bitwise), early stopping, non-finite losses, overwrite and unsafe checkpoints."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import mtvae
from mtvae.autoconf import resolve_auto
from mtvae.config import resolve_config
from mtvae.data.shapes import load_shapes
from mtvae.errors import UserError
from mtvae.pipeline import resume_run, train_run
from mtvae.train.trainer import Trainer

EPOCHS = 3
STEPS_PER_EPOCH = 4  # 256 training images, batches of 64


@pytest.fixture(scope="module")
def data():
    return load_shapes(n_train=256, n_val=64, n_test=64, image_size=16)


def make_config(**train):
    return resolve_config(
        {
            "data": {"n_train": 256, "n_val": 64, "n_test": 64, "image_size": 16},
            "model": {"name": "vae", "latent_dim": 4, "encoder": {"arch": "mlp", "hidden": [32]}},
            "train": {"epochs": EPOCHS, "batch_size": 64, "lr": 3e-3, "restore_best": False,
                      "device": "cpu", "progress": False, "log_every": 3} | train,
        }
    )


def epoch_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "epoch"]


def without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    """A 3-epoch run, with the in-memory model the trainer fitted."""
    import mtvae.pipeline

    built = []

    def spy(config, info):
        built.append(build(config, info))
        return built[-1]

    build = mtvae.pipeline.build_model
    config = make_config()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mtvae.pipeline, "build_model", spy)
        run = train_run(config, tmp_path_factory.mktemp("runs") / "a", dataset=data)
    return run, config, built[0]


def copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "copy"))


# --- the run directory contract -------------------------------------------------------------
def test_train_run_writes_every_contract_file(trained, data):
    run, config, _ = trained
    for name in ("config.yaml", "model.safetensors", "checkpoint/last.pt", "log.jsonl"):
        assert (run / name).is_file(), name
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert written == resolve_auto(config, data).to_dict()  # `auto` settings as numbers
    assert written["train"]["labelled_per_batch"] == 0 and config.train.labelled_per_batch == "auto"
    assert [r["epoch"] for r in epoch_records(run)] == [1, 2, 3]
    results = json.loads((run / "results.json").read_text())
    assert results["time/train_s"] > 0
    assert results["train/epochs"] == EPOCHS
    assert results["train/steps"] == EPOCHS * STEPS_PER_EPOCH


def test_loss_goes_down(trained):
    records = epoch_records(trained[0])
    assert records[-1]["train/loss"] < records[0]["train/loss"]
    assert records[-1]["val/loss"] < records[0]["val/loss"]


def test_load_round_trips_model_and_config(trained, data):
    run, config, fitted = trained
    model, loaded_config = mtvae.load(run)
    assert loaded_config.to_dict() == resolve_auto(config, data).to_dict()
    assert not model.training
    fitted.eval()
    assert fitted.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in fitted.state_dict().items())
    x = data.test.x[:16]
    q, q_fitted = model.encode(x), fitted.encode(x)
    assert torch.equal(q.loc, q_fitted.loc) and torch.equal(q.scale, q_fitted.scale)
    assert torch.equal(model.reconstruct(x), fitted.reconstruct(x))


# --- resume ---------------------------------------------------------------------------------
def test_resume_after_a_crash_equals_an_uninterrupted_run(trained, data, tmp_path):
    run_a, config, _ = trained
    original = Trainer._save_checkpoint
    calls = []

    def crash_on_second_save(self):
        calls.append(self.state.epoch)
        if len(calls) == 2:  # epoch 2 is trained and logged, its checkpoint never written
            raise RuntimeError("simulated crash")
        original(self)

    run_b = tmp_path / "b"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "_save_checkpoint", crash_on_second_save)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train_run(config, run_b, dataset=data)
    assert not (run_b / "model.safetensors").exists()
    assert len(epoch_records(run_b)) == 2

    resume_run(run_b, dataset=data)
    a, b = load_file(run_a / "model.safetensors"), load_file(run_b / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The epoch-2 records of the crashed attempt are dropped and written again, identically.
    assert without_time(epoch_records(run_b)) == without_time(epoch_records(run_a))
    results = json.loads((run_b / "results.json").read_text())
    assert results["train/epochs"] == EPOCHS


def test_damaged_checkpoint_is_a_user_error(trained, tmp_path):
    run = copy_run(trained[0], tmp_path)
    path = run / "checkpoint/last.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="damaged"):
        resume_run(run)


def test_checkpoint_from_another_config_is_refused(trained, tmp_path):
    run = copy_run(trained[0], tmp_path)
    raw = yaml.safe_load((run / "config.yaml").read_text())
    raw["train"]["lr"] = 0.5
    (run / "config.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match="different configuration"):
        resume_run(run)


class _Touch:
    """Unpickling this object creates a file: the shape of a code-execution payload."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_resume_never_unpickles_code(trained, tmp_path, writer):
    run = copy_run(trained[0], tmp_path)
    marker = tmp_path / "pwned"
    payload = {"model": _Touch(marker)}
    # Control: the payload really runs code when unpickled without restrictions.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Touch(control))).close()
    assert control.exists()

    path = run / "checkpoint/last.pt"
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UserError, match="not an mtvae checkpoint"):
        resume_run(run)
    assert not marker.exists()


# --- stopping and failing -------------------------------------------------------------------
def test_early_stopping_ends_training_before_the_last_epoch(data, tmp_path, monkeypatch):
    losses = iter(range(1, 100))  # validation gets worse every epoch
    monkeypatch.setattr(Trainer, "validate", lambda self: {"loss": float(next(losses))})
    run = train_run(make_config(epochs=6, early_stopping=2), tmp_path / "run", dataset=data)
    results = json.loads((run / "results.json").read_text())
    # Epoch 1 is the best; epochs 2 and 3 exhaust a patience of 2.
    assert results["train/epochs"] == 3
    assert results["val/best_epoch"] == 1
    assert len(epoch_records(run)) == 3


def test_non_finite_loss_is_a_user_error_naming_the_step(data, tmp_path):
    bad = load_shapes(n_train=256, n_val=64, n_test=64, image_size=16)
    bad.train.x[:] = float("nan")
    with pytest.raises(UserError, match=r"non-finite at step 0 .*recon"):
        train_run(make_config(), tmp_path / "run", dataset=bad)


def test_existing_run_needs_overwrite(data, tmp_path):
    config = make_config(epochs=1)
    run = train_run(config, tmp_path / "run", dataset=data)
    with pytest.raises(UserError, match="--resume"):
        train_run(config, run, dataset=data)
    (run / "notes.txt").write_text("mine")
    train_run(config, run, overwrite=True, dataset=data)
    assert len(epoch_records(run)) == 1  # the old log is replaced, not appended to
    assert (run / "notes.txt").read_text() == "mine"  # files that are not the run's are kept
