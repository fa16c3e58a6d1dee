"""A study backend is one entry in ``BACKENDS``: the CLI's --backend choices, its help and the
options it passes on come from the registry and the backend class."""

from __future__ import annotations

from pathlib import Path

import pytest

import mtvae.study.study
from mtvae.cli import main
from mtvae.study import workers


class _Remote:
    """A backend registered in a test: it takes --address, nothing else."""

    description = "somewhere else entirely"
    options = ("address",)

    def __init__(self, workers: int, threads: int, address: str | None = None) -> None:
        pass


@pytest.fixture
def started(monkeypatch):
    """The keyword arguments of each run_study the CLI starts (which then does nothing)."""
    calls = []
    monkeypatch.setattr(mtvae.study.study, "run_study",
                        lambda spec, out, **kwargs: calls.append(kwargs) or Path(out))
    return calls


def test_a_registered_backend_is_a_choice_with_its_description(monkeypatch, capsys):
    monkeypatch.setitem(workers.BACKENDS, "remote", _Remote)
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "{local,ray,remote}" in help_text and "remote, somewhere else entirely" in help_text


@pytest.mark.parametrize(("argv", "backend", "options"), [
    ([], "local", {}),
    (["--backend", "ray", "--address", "ray://x:1"], "ray", {"address": "ray://x:1", "gpus": 0.0}),
    (["--backend", "remote", "--address", "x"], "remote", {"address": "x"}),
    (["--backend", "remote"], "remote", {"address": None}),
])
def test_the_cli_passes_each_backend_the_options_it_declares(
        monkeypatch, tmp_path, started, argv, backend, options):
    monkeypatch.setitem(workers.BACKENDS, "remote", _Remote)
    assert main(["study", "--preset", "quick", "--out", str(tmp_path / "s"), *argv]) == 0
    assert started[0]["backend"] == backend and started[0]["backend_options"] == options


def test_an_option_the_backend_does_not_declare_is_refused(monkeypatch, tmp_path, started,
                                                            capsys):
    monkeypatch.setitem(workers.BACKENDS, "remote", _Remote)
    argv = ["study", "--preset", "quick", "--out", str(tmp_path / "s"), "--backend", "remote",
            "--gpus-per-run", "1"]
    assert main(argv) == 2 and not started
    assert "--gpus-per-run applies to --backend ray only" in capsys.readouterr().err
    argv[-4:] = ["--address", "x"]  # local takes neither
    assert main(argv) == 2 and not started
    assert "--address applies to --backend ray or --backend remote only" in capsys.readouterr().err
