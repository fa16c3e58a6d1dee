"""A directory or a device given where a file is expected is called what it is, not "does
not exist": config files, study specs and a study's results.db; and an interrupt advises
``--resume`` only for a run that has a checkpoint (issue #29)."""

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


def test_an_interrupt_advises_resume_only_where_a_checkpoint_exists(capsys, monkeypatch,
                                                                     tmp_path):
    """A signal while the data load (no run directory yet) or during evaluate says to run
    the command again; only a run with a checkpoint is pointed to --resume."""
    import signal

    import mtvae.pipeline
    from mtvae.errors import Interrupted

    def interrupt(*args, **kwargs):
        raise Interrupted(signal.SIGINT)

    run = tmp_path / "r"
    assert run_cli(capsys, *train_argv(run))[0] == 0
    monkeypatch.setattr(mtvae.pipeline, "load_dataset", interrupt)
    status, _, err = run_cli(capsys, *train_argv(tmp_path / "new"))
    assert status == 130 and "--resume" not in err and "run the same command again" in err
    assert not (tmp_path / "new").exists()
    status, _, err = run_cli(capsys, "evaluate", run)
    assert status == 130 and "--resume" not in err and "run the same command again" in err
    status, _, err = run_cli(capsys, "train", "--resume", run)
    assert status == 130 and f"continue the run with `mtvae train --resume {run}`" in err
    (run / "checkpoint" / "last.pt").unlink()
    status, _, err = run_cli(capsys, "train", "--resume", run)
    assert status == 130 and f"`mtvae train --resume {run} --restart`" in err
