"""A directory or a device given where a file is expected is called what it is, not "does
not exist": config files, study specs and a study's results.db (issue #29)."""

from __future__ import annotations

from helpers_runs import run_cli, train_argv


def refused(capsys, *argv) -> str:
    status, _, err = run_cli(capsys, *argv)
    assert status == 2, err
    assert err.startswith("mtvae: error: ") and err.strip().count("\n") == 0, err
    return err


def test_a_directory_as_config_spec_or_results_db(capsys, tmp_path):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    err = refused(capsys, *train_argv(tmp_path / "r"), "--config", folder)
    assert f"Config file '{folder}' is a directory, not a file" in err
    err = refused(capsys, "study", "--spec", folder, "--out", tmp_path / "s")
    assert f"Study spec '{folder}' is a directory, not a file" in err
    study = tmp_path / "study"
    (study / "results.db").mkdir(parents=True)
    err = refused(capsys, "report", study)
    assert "results.db' is a directory, not a file" in err


def test_a_device_as_config(capsys, tmp_path):
    err = refused(capsys, *train_argv(tmp_path / "r"), "--config", "/dev/null")
    assert "'/dev/null' is not a regular file" in err
