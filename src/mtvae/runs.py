"""Run directories: create one, train into it, load a trained model back.

A run directory holds ``config.yaml`` (resolved config), ``model.safetensors``,
``checkpoint/`` (resumable state), ``log.jsonl`` and ``results.json``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from mtvae import __version__
from mtvae.config import RunConfig, resolve_config
from mtvae.data.dataset import DataInfo, Dataset
from mtvae.data.sources import load_dataset
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError
from mtvae.io import read_json, read_yaml, write_json, write_yaml
from mtvae.models.registry import build_model
from mtvae.train.checkpoint import load_state_into, read_weights
from mtvae.train.distributed import barrier, init_distributed

RUN_FILES = ("config.yaml", "model.safetensors", "checkpoint", "log.jsonl", "results.json", "figures")


def set_threads(config: RunConfig) -> None:
    """Apply ``train.threads`` (torch intra-op threads) when set."""
    if config.train.threads:
        torch.set_num_threads(config.train.threads)


def prepare_run_dir(out: Path, overwrite: bool = False) -> None:
    """Make ``out`` ready for a new run; refuse to clobber another run unless told to."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file; choose a directory for the run.")
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


def train_run(
    config: RunConfig, out: str | Path, overwrite: bool = False, dataset: Dataset | None = None
) -> Path:
    """Train a new run described by ``config`` into ``out``; return the run directory."""
    from mtvae.train.trainer import Trainer, resolve_device

    out = Path(out)
    set_threads(config)
    dataset = dataset or load_dataset(config.data)
    torch.manual_seed(config.seed)
    model = build_model(config.model, dataset.info)
    # Only now touch the disk, so bad data or a config that cannot work leaves nothing behind
    # (and an existing run is not replaced by one that would fail).
    ctx = init_distributed(resolve_device(config.train.device))
    if ctx.is_main:  # under DDP, rank 0 alone touches the disk
        prepare_run_dir(out, overwrite=overwrite)
        write_yaml(out / "config.yaml", config.to_dict())
    barrier(ctx)
    trainer = Trainer(model, dataset, config, out, weights_meta(config, dataset.info))
    _finish(trainer, out)
    return out


def resume_run(run_dir: str | Path, dataset: Dataset | None = None) -> Path:
    """Continue a run from its last checkpoint (same config, same RNG streams)."""
    from mtvae.train.trainer import Trainer

    run_dir = Path(run_dir)
    config = load_config(run_dir)
    set_threads(config)
    dataset = dataset or load_dataset(config.data)
    torch.manual_seed(config.seed)
    model = build_model(config.model, dataset.info)
    trainer = Trainer(model, dataset, config, run_dir, weights_meta(config, dataset.info))
    trainer.resume()
    _finish(trainer, run_dir)
    return run_dir


def _finish(trainer, run_dir: Path) -> None:
    state = trainer.fit()
    if not trainer.dist.is_main:
        return
    results = _read_results(run_dir)
    results.update(
        {
            "time/train_s": state.train_seconds,
            "train/epochs": state.epoch,
            "train/steps": state.step,
            "val/best_loss": state.best_val,
            "val/best_epoch": state.best_epoch,
        }
    )
    write_json(run_dir / "results.json", results)
    stage = getattr(trainer.model, "second_stage", None)
    if stage is not None:  # e.g. a VQ-VAE's prior, fitted on the trained model's codes
        _run_stage(stage, trainer.model, trainer.dataset, trainer.config, run_dir, state.step)


def _run_stage(
    name: str, model, dataset: Dataset, config: RunConfig, run_dir: Path, step: int
) -> None:
    """Run training stage ``name`` on a trained model; merge its results into results.json."""
    from mtvae.train.logger import RunLogger
    from mtvae.train.stages import get_stage

    log = RunLogger(run_dir, tensorboard=config.train.tensorboard)
    try:
        results = get_stage(name)(model, dataset, config, run_dir, log, start_step=step)
    finally:
        log.close()
    write_json(run_dir / "results.json", _read_results(run_dir) | results)


def train_stage(run_dir: str | Path, stage: str, dataset: Dataset | None = None) -> Path:
    """Run the post-training ``stage`` (e.g. a VQ-VAE's ``prior``) of a finished run again."""
    from mtvae.train.stages import get_stage
    from mtvae.train.trainer import resolve_device

    run_dir = Path(run_dir)
    get_stage(stage)  # an unknown name fails here, with a suggestion
    config = load_config(run_dir)
    steps = _read_results(run_dir).get("train/steps")
    if steps is None or not (run_dir / "model.safetensors").is_file():
        raise UserError(
            f"'{run_dir}' has not finished its main training, so it has no trained model for "
            f"stage '{stage}'; finish it first with `mtvae train --resume {run_dir}`."
        )
    set_threads(config)
    model, _ = load(run_dir, device=resolve_device(config.train.device))
    declared = getattr(model, "second_stage", None)
    if declared != stage:
        has = f"its only stage is '{declared}'" if declared else "it has no second stage"
        raise UserError(
            f"The '{config.model_name}' model of '{run_dir}' has no training stage '{stage}' "
            f"({has}); --stage applies to runs whose model declares that stage, e.g. a vqvae "
            "with model.prior.kind=pixelcnn."
        )
    _run_stage(stage, model, dataset or load_dataset(config.data), config, run_dir, int(steps))
    return run_dir


def _read_results(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "results.json"
    return read_json(path) if path.is_file() else {}


def load_config(run_dir: str | Path) -> RunConfig:
    """The validated config of a run directory."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"'{run_dir}' is not a run directory (no config.yaml). Train one first.")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(f"'{path}' is damaged: expected a mapping of config sections.")
    return resolve_config(raw)


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, RunConfig]:
    """Load a trained run: returns ``(model, config)`` with the model in evaluation mode.

    Only safetensors and YAML are read, so loading never executes code from the files.
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    tensors, meta = read_weights(run_dir / "model.safetensors")
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
    model = build_model(config.model, info)
    load_state_into(model, tensors, str(run_dir / "model.safetensors"))
    return model.to(device).eval(), config
