"""The convergence rule: known answers on curves, the trainer applying it epoch by epoch
(early stopping, the results.json record) and a resume that keeps its state."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mtvae.config import resolve_config
from mtvae.data.shapes import load_shapes
from mtvae.pipeline import resume_run, train_run
from mtvae.train.checkpoint import load_checkpoint, save_checkpoint
from mtvae.train.convergence import DEFAULT_PATIENCE, assess, improves
from mtvae.train.trainer import CHECKPOINT, Trainer

# Improves at epochs 1 and 2; epochs 3-5 lower the best by less than 0.1% each (no
# improvement by the rule, but a new best); then it gets worse.
CURVE = [10.0, 9.0, 8.999, 8.998, 8.997, 12.0, 13.0, 14.0]


@pytest.fixture(scope="module")
def data():
    return load_shapes(n_train=128, n_val=32, n_test=32, image_size=16)


def make_config(**train):
    return resolve_config({
        "data": {"n_train": 128, "n_val": 32, "n_test": 32, "image_size": 16},
        "model": {"name": "vae", "latent_dim": 2, "encoder": {"arch": "mlp", "hidden": [16]}},
        "train": {"epochs": 8, "batch_size": 64, "device": "cpu", "progress": False} | train,
    })


@pytest.fixture
def scripted(monkeypatch):
    """Validation returns CURVE[epoch - 1] for the epoch being completed."""
    monkeypatch.setattr(Trainer, "validate",
                        lambda self: {"loss": CURVE[self.state.epoch]})


def results(run) -> dict:
    return json.loads((run / "results.json").read_text())


def test_improvement_is_relative_to_the_anchor():
    assert improves(9.0, float("inf"), 1e-3)
    assert improves(8.98, 9.0, 1e-3) and not improves(8.995, 9.0, 1e-3)
    assert improves(-10.02, -10.0, 1e-3)  # negative objectives (a learned-variance NLL)
    assert not improves(float("nan"), 9.0, 1e-3)


def test_assess_gives_known_answers():
    got = assess(CURVE[:5], patience=3)
    assert (got.epochs_trained, got.best_epoch, got.converged, got.stale_epochs) == (5, 5, True, 3)
    falling = [100.0 / (e + 1) for e in range(12)]
    assert not assess(falling, patience=3).converged
    assert assess(falling, patience=3).best_epoch == 12
    flat = [5.0] * (DEFAULT_PATIENCE + 1)
    assert assess(flat, patience=None).converged  # early stopping off: the default window
    assert not assess(flat[:DEFAULT_PATIENCE], patience=None).converged
    assert assess([], patience=3) == assess([], patience=3)
    assert assess([float("nan")] * 4, patience=3).best_epoch == 0


def test_early_stopping_fires_when_the_rule_is_met(data, tmp_path, scripted, capsys):
    run = train_run(make_config(early_stopping=3), tmp_path / "run", dataset=data)
    assert "before it converged" not in capsys.readouterr().err
    got = results(run)
    want = assess(CURVE[:5], patience=3)
    assert got["train/epochs_trained"] == got["train/epochs"] == want.epochs_trained == 5
    assert got["train/best_epoch"] == got["val/best_epoch"] == want.best_epoch == 5
    assert got["train/converged"] is True


def test_a_run_that_uses_up_its_epochs_is_not_converged(data, tmp_path, scripted, capsys):
    run = train_run(make_config(epochs=4, early_stopping=3), tmp_path / "run", dataset=data)
    assert "used up train.epochs=4 before it converged" in capsys.readouterr().err
    got = results(run)
    assert (got["train/epochs_trained"], got["train/best_epoch"]) == (4, 4)
    assert got["train/converged"] is False
    off = train_run(make_config(early_stopping=None), tmp_path / "off", dataset=data)
    assert results(off)["train/epochs_trained"] == 8  # no early stopping: the maximum
    assert results(off)["train/converged"] is False  # 6 epochs without improvement < 10


def test_resume_keeps_the_early_stopping_state(data, tmp_path, scripted):
    config = make_config(early_stopping=3, restore_best=True)
    whole = train_run(config, tmp_path / "whole", dataset=data)
    original, saves = Trainer._save_checkpoint, []

    def crash_on_fourth_save(self, *args):
        saves.append(self.state.epoch)
        if len(saves) == 4:  # two epochs without improvement counted, then a crash
            raise RuntimeError("simulated crash")
        original(self, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "_save_checkpoint", crash_on_fourth_save)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train_run(config, tmp_path / "crashed", dataset=data)
    resume_run(tmp_path / "crashed", dataset=data)
    assert results(tmp_path / "crashed")["train/epochs_trained"] == 5
    assert results(tmp_path / "crashed")["train/converged"] is True
    a, b = (load_file(r / "model.safetensors") for r in (whole, tmp_path / "crashed"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the best weights, restored


def test_a_checkpoint_from_before_the_rule_resumes(data, tmp_path, scripted):
    """Checkpoints written before ``anchor_val`` existed resume, anchored at their best."""
    run = train_run(make_config(epochs=4, early_stopping=3), tmp_path / "run", dataset=data)
    state = load_checkpoint(run / CHECKPOINT)
    del state["loop"]["anchor_val"]
    state["loop"].update(epoch=3, stale_epochs=1)  # as after epoch 3 (best 8.999, anchor 9)
    save_checkpoint(run / CHECKPOINT, state)
    resume_run(run, dataset=data)
    # anchored at 8.998 instead of 9: epoch 4 still does not improve, epoch 5 cannot run
    got = results(run)
    assert got["train/epochs_trained"] == 4 and got["train/converged"] is False


# The whole loss is best at epoch 2 and then rises (its task terms overfit) while its
# generative part still falls by 1 per epoch: early stopping (patience 3) ends at epoch 5.
WHOLE = [10.0, 9.0, 9.5, 9.6, 9.7, 9.8]
GENERATIVE = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0]


@pytest.fixture
def scripted_parts(monkeypatch):
    monkeypatch.setattr(Trainer, "validate", lambda self: {
        "loss": WHOLE[self.state.epoch], "generative": GENERATIVE[self.state.epoch]})


def test_the_generative_objective_is_judged_by_the_same_rule(data, tmp_path, scripted_parts):
    run = train_run(make_config(early_stopping=3), tmp_path / "run", dataset=data)
    got = results(run)
    assert (got["train/epochs_trained"], got["train/best_epoch"]) == (5, 2)
    assert got["train/converged"] is True
    assert got["train/generative_converged"] is False  # it improved at every epoch
    assert got["train/generative_gap"] == pytest.approx(9.0 - 6.0)  # kept epoch 2 vs best 5
    assert assess(GENERATIVE[:5], patience=3).converged is False  # the curve form agrees
    kept_last = train_run(make_config(early_stopping=3, restore_best=False),
                          tmp_path / "last", dataset=data)
    assert results(kept_last)["train/generative_gap"] == 0.0  # the last epoch is its best


def test_a_vae_records_its_generative_objective_as_its_whole_loss(data, tmp_path):
    got = results(train_run(make_config(epochs=3), tmp_path / "vae", dataset=data))
    assert got["train/generative_converged"] == got["train/converged"]
    assert got["train/generative_gap"] == 0.0
    config = make_config(epochs=2)
    config.model = resolve_config({"model": {"name": "supervised", "tasks": ["shape"],
                                             "encoder": {"arch": "mlp", "hidden": [16]}}}).model
    supervised = results(train_run(config, tmp_path / "sup", dataset=data))
    assert "train/generative_converged" not in supervised  # no generative objective at all


def test_a_checkpoint_from_before_the_generative_record_resumes(data, tmp_path, scripted_parts):
    """Checkpoints written before the generative counters existed resume: the rule on the
    generative objective starts again from the epochs still to come."""
    run = train_run(make_config(epochs=4, early_stopping=3), tmp_path / "run", dataset=data)
    state = load_checkpoint(run / CHECKPOINT)
    for name in ("gen_best", "gen_anchor", "gen_stale", "gen_kept"):
        del state["loop"][name]
    state["loop"].update(epoch=3)
    save_checkpoint(run / CHECKPOINT, state)
    (run / "results.json").unlink()  # as after a crash: results are written when training ends
    resume_run(run, dataset=data)
    got = results(run)
    assert got["train/epochs_trained"] == 4
    assert got["train/generative_converged"] is False
    assert "train/generative_gap" not in got  # the kept epoch (2) came before the resume
