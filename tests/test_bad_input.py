"""The bad-input catalogue of RELIABILITY.md, through the CLI: status 2, one paragraph, and
nothing already written is lost."""

from __future__ import annotations

import shutil

import pytest

from mtvae.cli import main

TINY = [arg for setting in (
    "data.n_train=64", "data.n_val=16", "data.n_test=16", "data.image_size=16",
    "model.encoder.arch=mlp", "model.encoder.hidden=[16]", "model.latent_dim=4",
    "train.epochs=1", "train.progress=false", "eval.iwae_k=2", "eval.iwae_n=4",
) for arg in ("--set", setting)]


def user_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtvae: error: ") and "Traceback" not in err
    assert err.strip().count("\n") == 0, err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    assert main(["train", "--model", "vae", "--out", str(root / "vae"), *TINY]) == 0
    assert main(["train", "--model", "mtvae", "--out", str(root / "mt"), *TINY,
                 "--set", "model.tasks=[shape]"]) == 0
    return root


def test_missing_checkpoint(capsys, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained / "vae", run)
    (run / "checkpoint/last.pt").unlink()
    assert "does not exist" in user_error(capsys, "train", "--resume", str(run))


def test_truncated_checkpoint_is_refused_and_left_alone(capsys, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained / "vae", run)
    data = (run / "checkpoint/last.pt").read_bytes()
    (run / "checkpoint/last.pt").write_bytes(data[: len(data) // 2])
    assert "damaged" in user_error(capsys, "train", "--resume", str(run))
    assert (run / "checkpoint/last.pt").read_bytes() == data[: len(data) // 2]
    assert (run / "model.safetensors").is_file()  # nothing else was touched


def test_foreign_checkpoint_from_another_model(capsys, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained / "mt", run)
    shutil.copy(trained / "vae/checkpoint/last.pt", run / "checkpoint/last.pt")
    assert "different configuration" in user_error(capsys, "train", "--resume", str(run))


def test_foreign_weights_are_refused_on_load(capsys, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained / "mt", run)
    shutil.copy(trained / "vae/model.safetensors", run / "model.safetensors")
    assert "inconsistent" in user_error(capsys, "evaluate", str(run))


def test_truncated_weights(capsys, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained / "vae", run)
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[:100])
    assert "damaged" in user_error(capsys, "sample", str(run), "--out", str(tmp_path / "s.png"))


def test_missing_weights(capsys, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained / "vae", run)
    (run / "model.safetensors").unlink()
    assert "does not exist" in user_error(capsys, "evaluate", str(run))


def test_existing_run_is_not_replaced(capsys, trained):
    before = (trained / "vae/model.safetensors").read_bytes()
    err = user_error(capsys, "train", "--model", "vae", "--out", str(trained / "vae"), *TINY)
    assert "already holds a run" in err
    assert (trained / "vae/model.safetensors").read_bytes() == before


def test_unwritable_output_directory(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    err = user_error(capsys, "train", "--model", "vae", "--out", str(blocker / "run"), *TINY)
    assert "Cannot create run directory" in err
    assert "is a file" in user_error(capsys, "train", "--model", "vae", "--out", str(blocker),
                                     *TINY)
    assert blocker.read_text() == "not a directory"


def test_unknown_task_and_bad_condition(capsys, trained, tmp_path):
    err = user_error(capsys, "train", "--model", "mtvae", "--out", str(tmp_path / "r"), *TINY,
                     "--set", "model.tasks=[shap]")
    assert "Did you mean 'shape'" in err
    assert "Cannot condition" in user_error(capsys, "sample", str(trained / "mt"), "--out",
                                            str(tmp_path / "s.png"), "--condition", "shape=1")


def test_unknown_stage_and_metric_family(capsys, trained):
    assert "metric family" in user_error(capsys, "evaluate", str(trained / "vae"),
                                         "--metrics", "recon,bogus")
    assert "stage" in user_error(capsys, "train", "--resume", str(trained / "vae"),
                                 "--stage", "prior")
