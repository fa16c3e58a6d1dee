"""A run directory whose figures/ or checkpoint/ is a symbolic link to another place: evaluate
and --resume refuse (exit 2) instead of writing into that place (issue #29)."""

from __future__ import annotations

import shutil

import pytest

from helpers_runs import run_cli, snapshot, train_argv


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from mtvae.cli import main

    run = tmp_path_factory.mktemp("links") / "run"
    assert main([*map(str, train_argv(run)), "--set", "train.epochs=1"]) == 0
    return run


@pytest.mark.parametrize("folder", ["figures", "checkpoint"])
@pytest.mark.parametrize("command", ["evaluate", "resume"])
def test_a_run_folder_linked_elsewhere_is_refused_and_nothing_is_written_there(
    capsys, tmp_path, trained, folder, command
):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    elsewhere = tmp_path / "elsewhere"
    if (run / folder).exists():
        shutil.copytree(run / folder, elsewhere)
        shutil.rmtree(run / folder)
    else:
        elsewhere.mkdir()
    (run / folder).symlink_to(elsewhere, target_is_directory=True)
    before, run_before = snapshot(elsewhere), snapshot(run)
    argv = ["evaluate", run, "--metrics", "recon"] if command == "evaluate" else [
        "train", "--resume", run]
    status, _, err = run_cli(capsys, *argv)
    assert status == 2, err
    assert err.startswith("mtvae: error: ") and err.strip().count("\n") == 0, err
    assert f"'{run / folder}' is a symbolic link to '{elsewhere}', outside the run directory" in err
    assert snapshot(elsewhere) == before and snapshot(run) == run_before


def test_a_link_inside_the_run_directory_is_followed(capsys, tmp_path, trained):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "figures").mkdir(exist_ok=True)
    shutil.move(run / "figures", run / "figures.real")
    (run / "figures").symlink_to(run / "figures.real", target_is_directory=True)
    assert run_cli(capsys, "evaluate", run, "--metrics", "recon")[0] == 0
