"""Helpers shared by the run-directory reliability tests: a tiny CLI run and fault injection."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file

from mtvae.cli import main

SETTINGS = (
    "data.n_train=64", "data.n_val=16", "data.n_test=16", "data.image_size=16",
    "model.encoder.arch=mlp", "model.encoder.hidden=[8]", "model.latent_dim=2",
    "train.epochs=2", "train.batch_size=16", "train.checkpoint_every=2", "train.progress=false",
    "train.restore_best=false", "eval.iwae_k=2", "eval.iwae_n=4", "eval.n_grid=4",
)
TINY = [arg for setting in SETTINGS for arg in ("--set", setting)]


def train_argv(run: Path, model: str = "vae") -> list[str]:
    """``mtvae train`` of the tiny run into ``run``."""
    return ["train", "--model", model, "--out", str(run), *TINY]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``mtvae`` in-process: ``(status, stdout, stderr)``; never a traceback."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert "internal error" not in err, err
    return status, out, err


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def same_weights(a: Path, b: Path) -> bool:
    """Whether two runs ended with bitwise equal weights."""
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


STRERROR = {errno.ENOSPC: "No space left on device", errno.EACCES: "Permission denied",
            errno.EROFS: "Read-only file system"}


def failing_writes(monkeypatch, code: int, when: Callable[[Path], bool]) -> list[Path]:
    """Make every atomic write (and log append) of a path ``when`` accepts raise ``code``.

    The failure comes where a real one would: after the data went to the temporary file, at
    its fsync/rename (atomic writes), or at the append (logs). Returns the paths that failed.
    """
    import mtvae.io

    failed: list[Path] = []
    commit, append = mtvae.io._commit, mtvae.io._append

    def fail_commit(tmp: Path, path: Path) -> None:
        if when(Path(path)):
            failed.append(Path(path))
            raise OSError(code, STRERROR[code], str(tmp))
        commit(tmp, path)

    def fail_append(path: Path, line: str) -> None:
        if when(Path(path)):
            failed.append(Path(path))
            raise OSError(code, STRERROR[code], str(path))
        append(path, line)

    monkeypatch.setattr(mtvae.io, "_commit", fail_commit)
    monkeypatch.setattr(mtvae.io, "_append", fail_append)
    return failed


def failing_serialisers(monkeypatch, code: int) -> None:
    """Make torch.save and safetensors' save raise ``code``, as a full disk would."""
    import mtvae.train.checkpoint as checkpoint

    def fail(*args, **kwargs):
        raise OSError(code, STRERROR[code])

    monkeypatch.setattr(checkpoint.torch, "save", fail)
    monkeypatch.setattr(checkpoint, "save_safetensors", fail)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def crashed_and_resumed(config, data, root: Path) -> tuple[Path, Path]:
    """``(uninterrupted, resumed)``: ``config`` trained on ``data`` into ``root/a``, and again
    into ``root/b`` crashing at its second checkpoint, then resumed there."""
    import pytest

    from mtvae.pipeline import resume_run, train_run
    from mtvae.train.trainer import Trainer

    uninterrupted = train_run(config, root / "a", dataset=data)
    original, calls = Trainer._save_checkpoint, []

    def crash_on_second_save(self):
        calls.append(self.state.epoch)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        original(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_save_checkpoint", crash_on_second_save)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train_run(config, root / "b", dataset=data)
    return uninterrupted, resume_run(root / "b", dataset=data)
