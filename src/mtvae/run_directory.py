"""Run directories on disk: make one ready, guard it, read and merge its results, load its run.

A run directory holds ``config.yaml`` (the resolved config), ``model.safetensors`` (the
weights, with :func:`weights_meta` in its metadata so the model is rebuilt without its data),
``checkpoint/`` (resumable state), ``log.jsonl`` and ``results.json``. This module reads and
writes those files; :mod:`mtvae.pipeline` trains, resumes and evaluates the run that fills them.
Loading only reads safetensors and YAML, so it never executes code from the files.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from mtvae import __version__
from mtvae.batch_memory import check_model_memory
from mtvae.data.dataset import DataInfo
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError, WriteError, yaml_problem
from mtvae.io import atomic_write, read_json, read_yaml, write_json
from mtvae.models.registry import build_model
from mtvae.runconfig import RunConfig, resolve_config
from mtvae.train.checkpoint import (
    PREVIOUS,
    load_state_into,
    read_weights,
    weights_meta_problem,
)

RUN_FILES = ("config.yaml", "model.safetensors", "checkpoint", "log.jsonl", "results.json", "figures",
             "tensorboard", "results.json.damaged")


def prepare_run_dir(out: Path, overwrite: bool = False) -> None:
    """Make ``out`` ready for a new run; refuse to clobber another run unless told to."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file; choose a directory for the run.")
    if out.is_dir() and not (out / "config.yaml").exists():
        _refuse_foreign_files(out)
    if (out / "config.yaml").exists():
        if not overwrite:
            raise UserError(
                f"'{out}' already holds a run. Continue it with `mtvae train --resume {out}`, "
                "replace it with --overwrite, or choose another --out."
            )
        for name in RUN_FILES:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create run directory '{out}': {exc.strerror}.") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"Run directory '{out}' is not writable; choose another --out.")


def refuse_links_out(run_dir: Path) -> None:
    """Refuse a run directory whose own folders (``figures/``, ``checkpoint/``, ...) are
    symbolic links to somewhere outside it: its files would be written (or replaced) there."""
    root = Path(run_dir).resolve()
    for name in RUN_FILES:
        path = Path(run_dir) / name
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise UserError(
                f"'{path}' is a symbolic link to '{path.resolve()}', outside the run directory; "
                "mtvae writes a run's files only inside it. Replace the link with a real "
                f"directory (e.g. `rm {path}`; copy what you need from the target first), then "
                "run the command again.")


def _refuse_foreign_files(out: Path) -> None:
    """A directory that is not a run must be empty (or hold only a run's leftovers)."""
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name not in RUN_FILES and not _is_temp_file(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise UserError(
            f"--out '{out}' is not empty and is not a run directory (it holds {shown}); a run "
            "would mix its files with yours. Choose a new or empty directory."
        )


def _is_temp_file(name: str) -> bool:
    """A temporary file an atomic write left behind when the process was killed."""
    return name.startswith(".") and name.endswith(".tmp")


def weights_meta(config: RunConfig, info: DataInfo) -> dict[str, Any]:
    """What ``model.safetensors`` records about itself so it can be rebuilt without data."""
    return {
        "model": config.model_name,
        "image_shape": list(info.image_shape),
        "tasks": {
            name: {"kind": t.kind, "n_classes": t.n_classes} for name, t in info.tasks.items()
        },
        "mtvae_version": __version__,
        "torch_version": torch.__version__,
    }


def recovery_hint(run_dir: Path) -> str:
    """The way out of an unusable checkpoint, naming what ``--restart`` will do."""
    previous = Path(run_dir) / "checkpoint" / PREVIOUS
    start = ("continue from the previous checkpoint" if previous.is_file()
             else "start the run again from scratch in the same directory (keeping its "
                  "config.yaml)")
    return f"To {start}, run `mtvae train --resume {run_dir} --restart`."


class ResultsNotSaved(WriteError):
    """A write of ``evaluate`` failed (``results.json`` or a figure); ``results`` holds the
    metrics computed, which the CLI prints before the message."""

    def __init__(self, error: WriteError, results: dict[str, Any],
                 next_step: str = "then run the command again (the metrics are printed above)"
                 ) -> None:
        super().__init__(error.path, error.cause, error.fix, next_step)
        self.results = results


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """The metrics in ``results.json``; empty when there is none or it is damaged."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        return {}
    try:
        results = read_json(path)
    except (OSError, ValueError):  # ValueError: invalid JSON or text that is not UTF-8
        return {}
    return results if isinstance(results, dict) else {}


def merge_results(run_dir: str | Path, results: dict[str, Any]) -> dict[str, Any]:
    """Merge ``results`` into ``results.json`` atomically and return the merged metrics.

    A damaged ``results.json`` is kept as ``results.json.damaged`` and written anew, so the
    metrics just computed are never lost to it; a failed write raises
    :class:`ResultsNotSaved`, which carries them.
    """
    path = Path(run_dir) / "results.json"
    merged = read_results(run_dir)
    try:
        if not merged and path.is_file() and _is_damaged_json(path):
            data = path.read_bytes()
            atomic_write(path.with_name("results.json.damaged"), lambda tmp: tmp.write_bytes(data))
            print(f"mtvae: '{path}' was damaged; kept it as results.json.damaged and wrote it anew.",
                  file=sys.stderr)
        merged.update(results)
        write_json(path, merged)
    except WriteError as exc:
        raise ResultsNotSaved(exc, results) from None
    return merged


def _is_damaged_json(path: Path) -> bool:
    """True when ``path`` does not hold a JSON mapping."""
    try:
        return not isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return True


def load_config(run_dir: str | Path) -> RunConfig:
    """The validated config of a run directory; a damaged ``config.yaml`` is a UserError."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"'{run_dir}' is not a run directory (no config.yaml). Train one first.")
    fix = ("Restore the file from a copy, or train a new run; the checkpoint "
           "(checkpoint/last.pt) holds the same config under 'config'.")
    try:
        raw = read_yaml(path)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(
            f"'{path}' is damaged: it is not valid YAML ({yaml_problem(exc)}). {fix}"
        ) from None
    if not isinstance(raw, dict):
        raise UserError(f"'{path}' is damaged: expected a mapping of config sections. {fix}")
    try:
        return resolve_config(raw)
    except UserError as exc:
        raise UserError(f"'{path}' is damaged: {exc} {fix}") from None


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, RunConfig]:
    """Load a trained run: returns ``(model, config)`` with the model in evaluation mode.

    Only safetensors and YAML are read, so loading never executes code from the files.
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    tensors, meta = read_weights(run_dir / "model.safetensors")
    problem = weights_meta_problem(meta)
    if problem:
        raise UserError(
            f"Weights file '{run_dir / 'model.safetensors'}' is damaged: {problem}. Train the "
            f"run again (`mtvae train --resume {run_dir} --restart`) or restore the file."
        )
    if meta.get("model") != config.model_name:
        raise UserError(
            f"'{run_dir}/model.safetensors' holds a '{meta.get('model')}' model but config.yaml "
            f"names '{config.model_name}'; the run directory is inconsistent."
        )
    tasks = {
        name: TaskSpec(name, spec["kind"], spec.get("n_classes"))
        for name, spec in meta.get("tasks", {}).items()
    }
    info = DataInfo(image_shape=tuple(meta["image_shape"]), tasks=tasks)
    check_model_memory(config.model, info, training=False)
    model = build_model(config.model, info)
    load_state_into(model, tensors, str(run_dir / "model.safetensors"))
    return model.to(device).eval(), config
