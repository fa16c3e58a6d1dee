"""Fault injection: every write of a run can fail (full disk, no permission, read-only file
system); the command then exits 2 with a message naming the file and the cause, leaves no
partial file, and the command the message suggests finishes the run exactly as if nothing
had happened."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import pytest

from helpers_runs import (
    failing_serialisers,
    failing_writes,
    run_cli,
    same_weights,
    snapshot,
    train_argv,
)

CAUSE = {errno.ENOSPC: "disk is full", errno.EACCES: "permission denied",
         errno.EROFS: "read-only"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny run, trained without faults."""
    from mtvae.cli import main

    run = tmp_path_factory.mktemp("reference") / "run"
    assert main(train_argv(run)) == 0
    return run


def epoch_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records
            if r["kind"] == "epoch"]


def nth_write_of(name: str, skip: int = 0):
    """Accept writes to files called ``name`` after the first ``skip`` of them."""
    seen = {"n": 0}

    def when(path: Path) -> bool:
        if path.name != name:
            return False
        seen["n"] += 1
        return seen["n"] > skip

    return when


def suggested_command(err: str) -> list[str] | None:
    """The ``mtvae train ...`` command a message tells the user to run, if any."""
    found = re.search(r"`mtvae (train [^`]*)`", err)
    return found.group(1).split() if found else None


@pytest.mark.parametrize(
    ("name", "skip", "code"),
    [
        ("last.pt", 0, errno.ENOSPC),  # the disk fills before the first checkpoint
        ("last.pt", 2, errno.ENOSPC),  # ... or after some checkpoints
        ("last.pt", 2, errno.EACCES),
        ("last.pt", 2, errno.EROFS),
        ("model.safetensors", 0, errno.ENOSPC),
        ("results.json", 0, errno.ENOSPC),
        ("results.json", 0, errno.EROFS),
        ("log.jsonl", 1, errno.ENOSPC),  # the second epoch record
        ("config.yaml", 0, errno.ENOSPC),
    ],
)
def test_a_failed_write_during_training_exits_2_and_the_suggested_command_finishes_the_run(
    capsys, monkeypatch, tmp_path, reference, name, skip, code
):
    run = tmp_path / "run"
    failed = failing_writes(monkeypatch, code, nth_write_of(name, skip))
    status, _, err = run_cli(capsys, *train_argv(run))
    assert status == 2 and failed, err
    assert err.startswith("mtvae: error: Cannot write ") and name in err
    assert CAUSE[code] in err
    if code == errno.ENOSPC:
        assert "Free disk space" in err
    assert not [p for p in run.rglob("*.tmp")]  # no partial file left behind
    monkeypatch.undo()

    command = suggested_command(err) or train_argv(run)  # config.yaml: "run it again"
    status, _, err = run_cli(capsys, *command)
    assert status == 0, err
    assert same_weights(reference, run)
    assert epoch_records(reference) == epoch_records(run)


def test_a_serialiser_that_fails_like_a_full_disk_is_a_write_error(capsys, monkeypatch, tmp_path,
                                                                     reference):
    run = tmp_path / "run"
    failing_serialisers(monkeypatch, errno.ENOSPC)
    status, _, err = run_cli(capsys, *train_argv(run))
    assert status == 2 and "checkpoint/last.pt" in err and "disk is full" in err
    assert "--restart" in err  # no checkpoint yet: the way out starts again in place
    monkeypatch.undo()
    assert run_cli(capsys, *suggested_command(err))[0] == 0
    assert same_weights(reference, run)


def test_evaluate_keeps_its_metrics_when_results_json_cannot_be_written(capsys, monkeypatch,
                                                                        tmp_path, reference):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    before = (run / "results.json").read_bytes()
    failing_writes(monkeypatch, errno.ENOSPC, nth_write_of("results.json"))
    status, out, err = run_cli(capsys, "evaluate", run, "--metrics", "recon")
    assert status == 2 and "results.json" in err and "disk is full" in err
    assert "recon/mse" in out  # the computed metrics are shown, not lost
    assert "printed above" in err
    assert (run / "results.json").read_bytes() == before
    monkeypatch.undo()
    assert run_cli(capsys, "evaluate", run, "--metrics", "recon")[0] == 0
    assert "recon/mse" in json.loads((run / "results.json").read_text())


@pytest.mark.parametrize("results_json_fails_too", [False, True])
def test_evaluate_keeps_every_computed_metric_when_a_figure_cannot_be_written(
    capsys, monkeypatch, tmp_path, reference, results_json_fails_too
):
    """nll writes no figure, recon computes its metrics and then writes its figure: a full disk
    at recon's figure keeps nll's metrics and recon's own, printed and (when that write works)
    saved, equal to those of an evaluation that succeeds."""
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    before = (run / "results.json").read_bytes()
    failing = {".png", ".json"} if results_json_fails_too else {".png"}
    failed = failing_writes(monkeypatch, errno.ENOSPC, lambda path: path.suffix in failing)
    status, out, err = run_cli(capsys, "evaluate", run, "--metrics", "nll,recon")
    assert status == 2, err
    assert err.startswith("mtvae: error: Cannot write ") and "reconstructions.png" in err
    assert "disk is full" in err and "Free disk space" in err
    assert "the metrics computed up to and including 'recon'" in err
    assert not (run / "figures" / "reconstructions.png").exists()
    assert [p.name for p in failed if p.suffix == ".png"] == ["reconstructions.png"]
    printed = dict(line.split() for line in out.splitlines()[2:])  # the table's rows
    assert "nll/iwae" in printed and "recon/mse" in printed
    if results_json_fails_too:
        assert "results.json could not be written either" in err
        assert (run / "results.json").read_bytes() == before
    else:
        assert "saved in results.json" in err
    saved = json.loads((run / "results.json").read_text())
    monkeypatch.undo()

    status, out, _ = run_cli(capsys, "evaluate", run, "--metrics", "nll,recon")
    assert status == 0
    again = json.loads((run / "results.json").read_text())
    computed = [k for k in again if k.startswith(("nll/", "recon/"))]
    assert {k: printed[k] for k in computed} == {k: f"{again[k]:.6g}" for k in computed}
    if not results_json_fails_too:
        assert {k: saved[k] for k in computed} == {k: again[k] for k in computed}


def test_evaluate_keeps_the_metrics_a_family_computes_after_its_figure_failed(
    capsys, monkeypatch, tmp_path
):
    """M2's task family writes its intervention figures first, then computes its metrics:
    those are kept too, and the error names the first figure that could not be written."""
    run = tmp_path / "run"
    assert run_cli(capsys, *train_argv(run, "m2"))[0] == 0
    failed = failing_writes(monkeypatch, errno.ENOSPC, lambda path: path.suffix == ".png")
    status, out, err = run_cli(capsys, "evaluate", run, "--metrics", "task")
    assert status == 2 and "intervention_shape.png" in err and "disk is full" in err
    assert [p.name for p in failed] == ["intervention_shape.png", "conditional_shape.png"]
    assert "the metrics computed up to and including 'task'" in err
    printed = dict(line.split() for line in out.splitlines()[2:])
    saved = json.loads((run / "results.json").read_text())
    assert f"{saved['task/shape/accuracy']:.6g}" == printed["task/shape/accuracy"]
    monkeypatch.undo()
    assert run_cli(capsys, "evaluate", run, "--metrics", "task")[0] == 0
    assert json.loads((run / "results.json").read_text())["task/shape/accuracy"] == \
        saved["task/shape/accuracy"]
    assert not list(run.rglob("*.tmp"))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_sample_into_a_failing_location_exits_2(capsys, monkeypatch, tmp_path, reference, code):
    before = snapshot(reference)
    failing_writes(monkeypatch, code, lambda path: path.suffix == ".png")
    status, _, err = run_cli(capsys, "sample", reference, "--n", "4", "--out", tmp_path / "s.png")
    assert status == 2 and "s.png" in err and CAUSE[code] in err
    assert list(tmp_path.iterdir()) == []
    assert snapshot(reference) == before


def test_sample_out_under_a_file_exits_2(capsys, tmp_path, reference):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    status, _, err = run_cli(capsys, "sample", reference, "--n", "4", "--out",
                             blocker / "s.png")
    assert status == 2 and "Cannot write" in err and "is a file, not a directory" in err
    assert blocker.read_text() == "mine"
