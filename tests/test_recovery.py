"""Recovery that always ends, loading that validates and never runs code, signals, size bounds
and the other promises of RELIABILITY.md's "No traceback ever" section, through the CLI."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers_runs import SETTINGS, TINY, run_cli, same_weights, snapshot, train_argv, umask


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from mtvae.cli import main

    run = tmp_path_factory.mktemp("reference") / "run"
    assert main(train_argv(run)) == 0
    return run


def copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def refused(capsys, *argv) -> str:
    status, _, err = run_cli(capsys, *argv)
    assert status == 2, err
    assert err.startswith("mtvae: error: ") and err.strip().count("\n") == 0, err
    return err


def rewrite_checkpoint(path: Path, change) -> None:
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)


def no_optimizer(state):
    del state["optimizer"]


def loop_not_a_dict(state):
    state["loop"] = [1, 2]


def loop_with_a_foreign_key(state):
    state["loop"]["epochs_left"] = 3


def rng_of_floats(state):
    state["torch_rng"] = torch.zeros(10)


def nan_weight(state):
    key = next(iter(state["model"]))
    state["model"][key] = torch.full_like(state["model"][key], float("nan"))


def optimizer_of_another_model(state):
    state["optimizer"]["param_groups"][0]["params"] = [0]


# --- recovery ---------------------------------------------------------------------------
@pytest.mark.parametrize("change", [no_optimizer, loop_not_a_dict, loop_with_a_foreign_key,
                                    rng_of_floats, nan_weight, optimizer_of_another_model])
def test_a_checkpoint_of_the_wrong_structure_is_refused_and_restart_continues_exactly(
    capsys, tmp_path, reference, change
):
    run = copy(reference, tmp_path)
    rewrite_checkpoint(run / "checkpoint/last.pt", change)
    before = snapshot(run)
    err = refused(capsys, "train", "--resume", run)
    assert "checkpoint/last.pt" in err and "previous checkpoint" in err and "--restart" in err
    assert snapshot(run) == before
    status, _, err = run_cli(capsys, "train", "--resume", run, "--restart")
    assert status == 0, err
    assert same_weights(reference, run)  # resumed from previous.pt: still exact
    assert (run / "checkpoint/last.pt.damaged").read_bytes() == before["checkpoint/last.pt"]


def test_without_a_usable_checkpoint_restart_starts_again_in_place(capsys, tmp_path, reference):
    run = copy(reference, tmp_path)
    (run / "checkpoint/previous.pt").unlink()
    data = (run / "checkpoint/last.pt").read_bytes()
    (run / "checkpoint/last.pt").write_bytes(data[: len(data) // 2])
    err = refused(capsys, "train", "--resume", run)
    assert "damaged" in err and "from scratch in the same directory" in err
    # the loop of issue #19: a new run into the directory points back to --resume
    assert "--resume" in refused(capsys, *train_argv(run))
    status, _, err = run_cli(capsys, "train", "--resume", run, "--restart")
    assert status == 0, err
    assert same_weights(reference, run)
    assert (run / "config.yaml").read_bytes() == (reference / "config.yaml").read_bytes()


def test_a_run_that_never_checkpointed_points_to_restart(capsys, tmp_path, reference):
    run = copy(reference, tmp_path)
    shutil.rmtree(run / "checkpoint")
    err = refused(capsys, "train", "--resume", run)
    assert "does not exist" in err and "--restart" in err
    assert run_cli(capsys, "train", "--resume", run, "--restart")[0] == 0
    assert same_weights(reference, run)


def test_restart_needs_resume(capsys):
    assert "--restart goes with --resume" in refused(capsys, "train", "--restart")


def test_a_partial_last_line_in_the_log_is_dropped_on_resume(capsys, tmp_path, reference):
    run = copy(reference, tmp_path)
    shutil.copy(run / "checkpoint/previous.pt", run / "checkpoint/last.pt")  # one step back
    with open(run / "log.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"kind": "epoch", "epoch": 2, "st')  # a crash in the middle of a line
    assert run_cli(capsys, "train", "--resume", run)[0] == 0
    lines = (run / "log.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines]  # every line whole
    records = [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]
    expected = [{k: v for k, v in json.loads(line).items() if k != "time_s"}
                for line in (reference / "log.jsonl").read_text().splitlines()]
    assert records == expected
    assert same_weights(reference, run)


# --- loading validates and never runs code ---------------------------------------------
def test_weights_with_a_valid_header_and_non_finite_values_are_refused(capsys, tmp_path,
                                                                      reference):
    run = copy(reference, tmp_path)
    path = run / "model.safetensors"
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
    tensors = load_file(path)
    key = sorted(tensors)[0]
    tensors[key] = torch.full_like(tensors[key], float("inf"))
    save_file(tensors, str(path), metadata=metadata)
    for argv in (["evaluate", run, "--metrics", "recon"],
                 ["sample", run, "--out", tmp_path / "s.png"]):
        err = refused(capsys, *argv)
        assert "non-finite" in err and key in err and "--restart" in err
    assert not (tmp_path / "s.png").exists()


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("target", ["model.safetensors", "checkpoint/last.pt"])
def test_a_pickle_payload_is_refused_without_running_it_or_advising_unsafe_loading(
    capsys, tmp_path, reference, target
):
    run = copy(reference, tmp_path)
    marker = tmp_path / "code-ran"
    (run / target).write_bytes(pickle.dumps({"model": _Payload(marker)}))
    command = ["evaluate", run] if target == "model.safetensors" else ["train", "--resume", run]
    err = refused(capsys, *command)
    assert "damaged" in err
    assert "weights_only" not in err and "allow_pickle" not in err and "unsafe" not in err
    assert not marker.exists()


def test_a_python_tag_in_config_yaml_is_refused_without_running_it(capsys, tmp_path, reference):
    run = copy(reference, tmp_path)
    marker = tmp_path / "code-ran"
    text = (run / "config.yaml").read_text()
    # a payload an unsafe loader does run (yaml.unsafe_load creates the directory)
    (run / "config.yaml").write_text(f"evil: !!python/object/apply:os.mkdir ['{marker}']\n{text}")
    for argv in (["evaluate", run], ["sample", run, "--out", tmp_path / "s.png"],
                 ["train", "--resume", run]):
        err = refused(capsys, *argv)
        assert "config.yaml' is damaged" in err and "not valid YAML" in err
    assert not marker.exists()


def test_a_python_tag_in_a_study_spec_is_refused_without_running_it(capsys, tmp_path):
    marker = tmp_path / "code-ran"
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    err = refused(capsys, "study", "--spec", spec, "--out", tmp_path / "study")
    assert "spec.yaml" in err
    assert not marker.exists() and not (tmp_path / "study").exists()


# --- signals ------------------------------------------------------------------------------
SLOW = [*TINY, "--set", "train.epochs=400", "--set", "train.threads=1"]


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory):
    from mtvae.cli import main

    run = tmp_path_factory.mktemp("slow") / "run"
    assert main(["train", "--model", "vae", "--out", str(run), *SLOW]) == 0
    return run


def default_signal_dispositions() -> None:
    """Runs in the child before exec: a non-interactive shell starts a background job (`make test
    &`, `nohup ... &`) with SIGINT ignored, children inherit that, and the CLI rightly leaves an
    ignored signal ignored. This test is about the CLI's handler, so its child starts with the
    dispositions a user at a terminal has, wherever the suite was launched."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_says_how_to_resume_and_exits_128_plus_signal(
    capsys, tmp_path, slow_reference, signum
):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mtvae", "train", "--model", "vae", "--out", str(run), *SLOW],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_signal_dispositions,
    )
    deadline = time.monotonic() + 900  # only against a hang: a busy machine starts slowly
    while not (run / "checkpoint/last.pt").exists():  # training has started
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signum)
    err = proc.communicate(timeout=900)[1]
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert f"`mtvae train --resume {run}`" in err and "checkpoint" in err
    assert not (run / "model.safetensors").exists()  # it stopped mid-way ...
    assert run_cli(capsys, "train", "--resume", run)[0] == 0
    assert same_weights(slow_reference, run)  # ... and resumes exactly


# --- sizes ----------------------------------------------------------------------------------
def test_sample_count_is_bounded_before_loading(capsys, tmp_path):
    err = refused(capsys, "sample", tmp_path / "nowhere", "--n", "100000000", "--out",
                  tmp_path / "s.png")
    assert "at most 10,000" in err


def test_sample_out_directory_writes_samples_png_inside(capsys, tmp_path, reference):
    out = tmp_path / "grids"
    out.mkdir()
    status, stdout, err = run_cli(capsys, "sample", reference, "--n", "4", "--out", out)
    assert status == 0, err
    assert (out / "samples.png").is_file() and not (tmp_path / "grids.png").exists()
    assert str(out / "samples.png") in stdout


def test_sample_seed_reproduces_the_grid_and_another_seed_differs(capsys, tmp_path, reference):
    from matplotlib.image import imread

    def grid(seed: int, name: str):
        path = tmp_path / name
        assert run_cli(capsys, "sample", reference, "--n", "4", "--seed", seed, "--out",
                       path)[0] == 0
        return imread(path)

    first = grid(3, "a.png")
    assert (first == grid(3, "b.png")).all()
    assert not (first == grid(4, "c.png")).all()


def test_shapes_refuses_more_samples_than_it_has_factor_combinations(
    capsys, tmp_path, monkeypatch
):
    def rendered(*args, **kwargs):
        raise AssertionError("images were rendered before the size was refused")

    monkeypatch.setattr("mtvae.data.shapes.render", rendered)
    err = refused(capsys, "train", "--model", "vae", "--out", tmp_path / "r", *TINY,
                  "--set", "data.n_train=999999")
    assert "73,728" in err and "data.n_train" in err
    assert not (tmp_path / "r").exists()


def test_a_dataset_larger_than_the_available_memory_is_refused(capsys, tmp_path, monkeypatch):
    import mtvae.limits

    monkeypatch.setattr(mtvae.limits, "available_memory", lambda: 2**10)
    err = refused(capsys, "train", "--model", "vae", "--out", tmp_path / "r", *TINY)
    assert "memory" in err and "available" in err and "data.n_train" in err


# --- directories and files ------------------------------------------------------------------
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_training_into_a_non_empty_directory_that_is_not_a_run_is_refused(capsys, tmp_path,
                                                                          overwrite):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    err = refused(capsys, *train_argv(out), *overwrite)
    assert "not empty" in err and "notes.txt" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_every_run_file_gets_the_usual_permissions(reference):
    expected = 0o666 & ~umask()
    files = [p for p in reference.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"model.safetensors", "last.pt", "config.yaml"}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {
        p.name: oct(expected) for p in files}


def test_every_run_file_is_written_through_the_atomic_writer(capsys, tmp_path, monkeypatch):
    import mtvae.io

    written: set[Path] = set()
    commit, append = mtvae.io._commit, mtvae.io._append
    monkeypatch.setattr(mtvae.io, "_commit", lambda tmp, path: (written.add(Path(path)),
                                                                  commit(tmp, path)))
    monkeypatch.setattr(mtvae.io, "_append", lambda path, line: (written.add(Path(path)),
                                                                   append(path, line)))
    run = tmp_path / "run"
    assert run_cli(capsys, *train_argv(run), "--set", "train.restore_best=true")[0] == 0
    assert run_cli(capsys, "evaluate", run, "--metrics", "recon,nll,figures")[0] == 0
    assert run_cli(capsys, "sample", run, "--n", "4", "--out", run / "s.png")[0] == 0
    files = {p for p in run.rglob("*") if p.is_file()}
    assert len(files) > 8
    # previous.pt is a hard link to an atomically written checkpoint, renamed into place
    assert files - written == {run / "checkpoint/previous.pt"}


# --- the boundary ---------------------------------------------------------------------------
def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(capsys, monkeypatch):
    import mtvae.cli

    def broken(args):
        raise ValueError("something internal")

    parser = mtvae.cli.build_parser

    def patched():
        p = parser()
        p._subparsers._group_actions[0].choices["models"].set_defaults(func=broken)
        return p

    monkeypatch.setattr(mtvae.cli, "build_parser", patched)
    assert mtvae.cli.main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mtvae: internal error: ValueError: something internal")
    assert "--debug" in err and "Traceback" not in err
    with pytest.raises(ValueError):
        mtvae.cli.main(["--debug", "models"])
    monkeypatch.setenv("MTVAE_DEBUG", "1")
    with pytest.raises(ValueError):
        mtvae.cli.main(["models"])


def test_an_os_error_anywhere_is_exit_2_in_plain_words(capsys, monkeypatch):
    import errno

    import mtvae.cli

    def broken(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/some/file")

    parser = mtvae.cli.build_parser

    def patched():
        p = parser()
        p._subparsers._group_actions[0].choices["models"].set_defaults(func=broken)
        return p

    monkeypatch.setattr(mtvae.cli, "build_parser", patched)
    err = refused(capsys, "models")
    assert "'/some/file'" in err and "permission denied" in err


def test_the_tiny_settings_are_valid(capsys):
    assert run_cli(capsys, "config", "--model", "vae", *TINY)[0] == 0
    assert len(SETTINGS) == len(TINY) // 2
    assert os.environ.get("MTVAE_DEBUG") in (None, "", "0")
