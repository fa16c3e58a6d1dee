"""The ``mtvae`` command line: listings, one-paragraph user errors with status 2, and a tiny
train -> evaluate -> sample round trip through the run directory."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml

from mtvae.cli import main

SETTINGS = (
    "data.n_train=128", "data.n_val=32", "data.n_test=32", "data.image_size=16",
    "model.encoder.channels=[8,8]", "train.epochs=1", "train.progress=false",
    "eval.iwae_k=5", "eval.iwae_n=8",
)
TINY = [arg for setting in SETTINGS for arg in ("--set", setting)]


def run_ok(capsys, *argv: str) -> str:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


def run_user_error(capsys, *argv: str) -> str:
    """Run a command that must fail as a user error; return its one-paragraph message."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert status == 2
    assert "Traceback" not in err
    assert err.startswith("mtvae: error: ")
    assert err.strip().count("\n") == 0, err  # one paragraph
    return err


# --- listings -------------------------------------------------------------------------------
def test_models_and_datasets_are_listed(capsys):
    assert any(line.split()[0] == "vae" for line in run_ok(capsys, "models").splitlines())
    assert any(line.split()[0] == "shapes" for line in run_ok(capsys, "datasets").splitlines())


def test_config_prints_the_resolved_config_as_yaml(capsys):
    config = yaml.safe_load(run_ok(capsys, "config", "--model", "vae", "--set", "model.beta=4"))
    assert config["model"]["name"] == "vae"
    assert config["model"]["latent_dim"] == 10
    assert config["model"]["beta"] == 4.0
    assert set(config) == {"seed", "data", "model", "train", "eval"}


def test_console_entry_point_runs_in_a_fresh_process():
    done = subprocess.run(
        [sys.executable, "-m", "mtvae", "models"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "vae" in done.stdout.split()


# --- user errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["config", "--model", "vea"], "Did you mean 'vae'"),
        (["config", "--model", "vae", "--set", "train.lrr=1"], "Did you mean 'lr'"),
        (["config", "--model", "vae", "--set", "model.latent_dim=abc"], "model.latent_dim"),
        (["config", "--model", "vae", "--set", "train.lr=-1"], "greater than 0"),
        (["config", "--model", "vae", "--set", "train.lr"], "expected key=value"),
        (["sample", "somewhere", "--n", "0", "--out", "s.png"], "--n must be at least 1"),
        (["train", "--resume", "somewhere", "--model", "vae"], "--resume takes the run's own"),
    ],
)
def test_bad_input_is_a_one_paragraph_error(capsys, argv, needle):
    assert needle in run_user_error(capsys, *argv)


def test_bad_files_and_directories_are_user_errors(capsys, tmp_path):
    listing = tmp_path / "list.yaml"
    listing.write_text("- seed\n- data\n")
    train = ["train", "--model", "vae", "--out", str(tmp_path / "run")]
    missing = str(tmp_path / "missing.yaml")
    assert "does not exist" in run_user_error(capsys, *train, "--config", missing)
    assert "must hold a mapping" in run_user_error(capsys, *train, "--config", str(listing))
    assert "Unknown data source 'nope'" in run_user_error(capsys, *train, "--data", "nope")
    assert "not a run directory" in run_user_error(capsys, "evaluate", str(tmp_path))


def test_a_model_that_cannot_fit_the_images_leaves_no_run(capsys, tmp_path):
    run = tmp_path / "run"
    argv = ["train", "--model", "vae", "--out", str(run), *TINY]
    err = run_user_error(capsys, *argv, "--set", "model.encoder.channels=[8,8,8,8,8]",
                         "--set", "model.encoder.padding=0")
    assert "divisible by 32" in err
    assert not (run / "config.yaml").exists()  # so a corrected retry needs no --overwrite


# --- end to end -----------------------------------------------------------------------------
def test_train_evaluate_sample(capsys, tmp_path):
    run = tmp_path / "run"
    train = ["train", "--model", "vae", "--data", "shapes", *TINY, "--out", str(run)]
    assert str(run) in run_ok(capsys, *train)
    err = run_user_error(capsys, *train)
    assert "--overwrite" in err and "--resume" in err

    table = run_ok(capsys, "evaluate", str(run))
    assert "nll/iwae" in table
    results = json.loads((run / "results.json").read_text())
    for key in ("recon/mse", "recon/bce", "elbo", "kl", "nll/iwae", "active_units"):
        assert math.isfinite(results[key]), key
    assert results["time/train_s"] > 0  # training results are kept, not replaced
    assert (run / "figures/reconstructions.png").is_file()

    from matplotlib import pyplot as plt

    png = tmp_path / "s.png"
    run_ok(capsys, "sample", str(run), "--n", "9", "--out", str(png))
    grid = plt.imread(png)
    assert grid.shape[:2] == (3 * (16 + 1) + 1, 3 * (16 + 1) + 1)  # 3x3 images, 1 px padding
