"""The run pipeline: train a run into its directory, resume it, run its second stage, evaluate it.

:func:`train_run` checks the config against the data, resolves its ``auto`` settings, trains
and then runs the model's second stage (e.g. a VQ-VAE's prior); :func:`resume_run` continues
from a checkpoint; :func:`evaluate_run` computes the metric families and merges them into
``results.json``. A run just trained can also be evaluated in memory (:func:`train_in_memory`
returns a :class:`TrainedRun`, which :func:`evaluate_run` takes): the model that was saved,
without reading it back. The files of a run directory, and loading a run from them, are
:mod:`mtvae.run_directory`'s.

Recovery always ends: a run whose checkpoint is missing or unusable continues with
``mtvae train --resume RUN --restart`` from its previous checkpoint, or, when there is none,
starts again from scratch in the same directory with its own ``config.yaml``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from mtvae.autoconf import model_tasks, resolve_auto
from mtvae.batch_memory import (
    check_evaluation_memory,
    check_model_memory,
    check_training_memory,
)
from mtvae.data.dataset import Dataset
from mtvae.data.sources import check_task_names, load_dataset
from mtvae.errors import UserError, WriteError
from mtvae.io import write_yaml
from mtvae.models.capabilities import Multitask, Staged
from mtvae.models.capacity import check_task_capacity
from mtvae.models.registry import build_model
from mtvae.models.task_heads import TaskOptions
from mtvae.run_directory import (
    ResultsNotSaved,
    load,
    load_config,
    merge_results,
    prepare_run_dir,
    read_results,
    recovery_hint,
    refuse_links_out,
    weights_meta,
)
from mtvae.runconfig import RunConfig
from mtvae.train.checkpoint import PREVIOUS, CheckpointError
from mtvae.train.distributed import DistContext, barrier, init_distributed


def set_threads(config: RunConfig) -> None:
    """Apply ``train.threads`` (torch intra-op threads) when set."""
    if config.train.threads:
        torch.set_num_threads(config.train.threads)


@dataclass(frozen=True)
class TrainedRun:
    """A run just trained, kept in memory so that it is evaluated without loading it back.

    ``config`` is what its ``config.yaml`` holds (``auto`` values resolved); ``model`` equals
    its ``model.safetensors`` (best weights restored, second stage trained) and is, like a
    model :func:`load` returns, on the CPU in evaluation mode; ``dataset`` is its data.
    """

    run_dir: Path
    config: RunConfig
    model: torch.nn.Module
    dataset: Dataset

    def sharing(self, run_dir: str | Path, config: RunConfig, dataset: Dataset) -> TrainedRun:
        """The same trained model as the run of another directory that shares this training
        (a study run whose labels differ), with that run's own config and data."""
        return dataclasses.replace(self, run_dir=Path(run_dir), config=config, dataset=dataset)


def train_run(
    config: RunConfig, out: str | Path, overwrite: bool = False, dataset: Dataset | None = None
) -> Path:
    """Train a new run described by ``config`` into ``out``; return the run directory."""
    return _train(config, out, overwrite, dataset)[0]


def train_in_memory(
    config: RunConfig, out: str | Path, overwrite: bool = False, dataset: Dataset | None = None
) -> TrainedRun:
    """:func:`train_run`, keeping the trained model, its resolved config and its data in
    memory for the evaluation that follows (a study's worker)."""
    run_dir, config, model, dataset = _train(config, out, overwrite, dataset)
    return TrainedRun(run_dir, config, as_loaded(model), dataset)


def _train(config: RunConfig, out: str | Path, overwrite: bool, dataset: Dataset | None
           ) -> tuple[Path, RunConfig, torch.nn.Module, Dataset]:
    """Train into ``out``: the run directory, the config it records, the trained model (as
    the trainer left it) and the data."""
    from mtvae.train.trainer import resolve_device

    out = Path(out)
    set_threads(config)
    if dataset is None:
        check_task_names(config.data, model_tasks(config.model))  # before a slow first decode
        check_task_capacity(config.model, config.data)
        dataset = load_dataset(config.data)
    config = resolve_auto(config, dataset)  # config.yaml records the values `auto` stood for
    check_model_memory(config.model, dataset.info, training=True)  # before allocating it
    torch.manual_seed(config.seed)
    model = build_model(config.model, dataset.info)
    check_training_memory(config, dataset)
    # Only now touch the disk, so bad data or a config that cannot work leaves nothing behind
    # (and an existing run is not replaced by one that would fail).
    ctx = init_distributed(resolve_device(config.train.device))
    if ctx.is_main:  # under DDP, rank 0 alone touches the disk
        refuse_links_out(out)
        prepare_run_dir(out, overwrite=overwrite)
        write_yaml(out / "config.yaml", config.to_dict())
    barrier(ctx)
    with resumable(out):
        trainer = make_trainer(config, model, dataset, out, dist=ctx)
        _finish(trainer, config, out)
    return out, config, trainer.model, dataset


def as_loaded(model: torch.nn.Module) -> torch.nn.Module:
    """A trained model as :func:`load` would give it back: on the CPU, where evaluation
    runs, in evaluation mode, its conv weights in the default memory layout again (the
    trainer makes them channels-last on a CPU, which can change the last bits of a
    convolution) and its gradients dropped."""
    model.zero_grad(set_to_none=True)
    return model.to("cpu", memory_format=torch.contiguous_format).eval()


def resume_run(
    run_dir: str | Path, dataset: Dataset | None = None, restart: bool = False
) -> Path:
    """Continue a run from its last checkpoint (same config, same RNG streams).

    With ``restart``, an unusable checkpoint is not an error: the run continues from the
    previous checkpoint if that one is usable, or starts again from scratch in the same
    directory with its own config.
    """
    from mtvae.train.trainer import CHECKPOINT, resolve_device

    run_dir = Path(run_dir)
    config = load_config(run_dir)
    refuse_links_out(run_dir)
    set_threads(config)
    dataset = dataset or load_dataset(config.data)
    # config.yaml records resolved values; resolving again keeps them and turns an `auto`
    # written there by hand into its number, as for a new run
    config = resolve_auto(config, dataset)
    check_model_memory(config.model, dataset.info, training=True)
    check_training_memory(config, dataset)
    candidates = [CHECKPOINT, f"checkpoint/{PREVIOUS}"] if restart else [CHECKPOINT]
    ctx = init_distributed(resolve_device(config.train.device))
    for name in candidates:
        try:
            trainer = _resumed_trainer(config, dataset, run_dir, run_dir / name, ctx)
        except CheckpointError as exc:
            if not restart:
                raise CheckpointError(f"{exc} {recovery_hint(run_dir)}") from None
            print(f"mtvae: {exc}", file=sys.stderr)
            continue
        if name != CHECKPOINT and (run_dir / CHECKPOINT).is_file():  # keep the damaged one
            os.replace(run_dir / CHECKPOINT, run_dir / (CHECKPOINT + ".damaged"))
        with resumable(run_dir):
            _finish(trainer, config, run_dir)
        return run_dir
    print(f"mtvae: no usable checkpoint; starting '{run_dir}' again from scratch with its "
          "config.yaml.", file=sys.stderr)
    return train_run(config, run_dir, overwrite=True, dataset=dataset)


def _resumed_trainer(config: RunConfig, dataset: Dataset, run_dir: Path, checkpoint: Path,
                     dist: DistContext):
    """A trainer restored from ``checkpoint`` (:class:`CheckpointError` when it is unusable)."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, dataset.info)
    trainer = make_trainer(config, model, dataset, run_dir, dist=dist)
    trainer.resume(checkpoint)
    return trainer


def make_trainer(config: RunConfig, model: torch.nn.Module, dataset: Dataset, run_dir: Path,
                 dist: DistContext | None = None):
    """The :class:`~mtvae.train.trainer.Trainer` of a run: its ``TrainConfig``, the model's
    task-weighting strategy (None for the plain sum) and the config its checkpoints record.

    ``config`` must be resolved (:func:`mtvae.autoconf.resolve_auto`: every ``auto`` a number);
    ``dist``: the process group the run has joined (None: the trainer joins it).
    """
    from mtvae.objectives.weighting import training_weighting
    from mtvae.train.trainer import Trainer

    wcfg = config.model.weighting if isinstance(config.model, TaskOptions) else None
    weighting = None if wcfg is None else training_weighting(wcfg, model.loss_names())
    # the tasks the built model learns (M2: its one class task), else the config's
    learned = list(model.tasks) if isinstance(model, Multitask) else []
    return Trainer(
        model, dataset, config.train, run_dir,
        seed=config.seed,
        dist=dist,
        weighting=weighting,
        labelled_tasks=learned or model_tasks(config.model),
        record=config.to_dict(),
        weights_meta=weights_meta(config, dataset.info),
    )


@contextlib.contextmanager
def resumable(run_dir: Path) -> Iterator[None]:
    """Turn a failed write during training into a message that says how to continue."""
    from mtvae.train.trainer import CHECKPOINT

    try:
        yield
    except WriteError as exc:
        how = ("then continue with `mtvae train --resume {run}`"
               if (Path(run_dir) / CHECKPOINT).is_file()
               else "then start it again with `mtvae train --resume {run} --restart`")
        raise exc.with_next_step(how.format(run=run_dir)) from None


def _finish(trainer, config: RunConfig, run_dir: Path) -> None:
    state = trainer.fit()
    if not trainer.dist.is_main:
        return
    merge_results(
        run_dir,
        {
            "time/train_s": state.train_seconds,
            "train/epochs": state.epoch,
            "train/steps": state.step,
            "val/best_loss": state.best_val,
            "val/best_epoch": state.best_epoch,
            # the convergence record (mtvae.train.convergence)
            "train/epochs_trained": state.epoch,
            "train/best_epoch": state.best_epoch,
            "train/converged": trainer.converged,
            **{f"train/generative_{k}": v for k, v in trainer.generative_convergence.items()},
        },
    )
    if not trainer.converged:
        print(f"mtvae: training used up train.epochs={state.epoch} before it converged (best "
              f"validation epoch {state.best_epoch}; see docs/guides/models.md, 'Training to "
              "convergence'); raise train.epochs to let it finish.", file=sys.stderr)
    warn_at_chance(trainer.model, trainer.dataset)
    stage = trainer.model.second_stage if isinstance(trainer.model, Staged) else None
    if stage is not None:  # e.g. a VQ-VAE's prior, fitted on the trained model's codes
        _run_stage(stage, trainer.model, trainer.dataset, config, run_dir, state.step)


def warn_at_chance(model, dataset: Dataset) -> None:
    """Print a warning line for each task head at chance on the validation split (see
    :mod:`mtvae.evaluate.chance_warnings`); control tasks are at chance by design."""
    from mtvae.evaluate.chance_warnings import chance_warnings

    for line in chance_warnings(model, dataset.val, data_tasks=dataset.tasks):
        print(f"mtvae: {line}", file=sys.stderr)


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
    merge_results(run_dir, results)


def train_stage(run_dir: str | Path, stage: str, dataset: Dataset | None = None) -> Path:
    """Run the post-training ``stage`` (e.g. a VQ-VAE's ``prior``) of a finished run again."""
    from mtvae.train.stages import get_stage
    from mtvae.train.trainer import resolve_device

    run_dir = Path(run_dir)
    get_stage(stage)  # an unknown name fails here, with a suggestion
    config = load_config(run_dir)
    refuse_links_out(run_dir)
    steps = read_results(run_dir).get("train/steps")
    if steps is None or not (run_dir / "model.safetensors").is_file():
        raise UserError(
            f"'{run_dir}' has not finished its main training, so it has no trained model for "
            f"stage '{stage}'; finish it first with `mtvae train --resume {run_dir}`."
        )
    set_threads(config)
    model, _ = load(run_dir, device=resolve_device(config.train.device))
    declared = model.second_stage if isinstance(model, Staged) else None
    if declared != stage:
        has = f"its only stage is '{declared}'" if declared else "it has no second stage"
        raise UserError(
            f"The '{config.model_name}' model of '{run_dir}' has no training stage '{stage}' "
            f"({has}); --stage applies to runs whose model declares that stage, e.g. a vqvae "
            "with model.prior.kind=pixelcnn."
        )
    _run_stage(stage, model, dataset or load_dataset(config.data), config, run_dir, int(steps))
    return run_dir


def evaluate_run(
    run: str | Path | TrainedRun, metrics: str | Collection[str] | None = "all", seed: int = 0,
    log=print, dataset: Dataset | None = None, skip_figures: Collection[str] = (),
) -> dict:
    """Evaluate a run (``all``, a comma list of metric families or a tuple of them); merge
    the metrics into its ``results.json`` and return them.

    ``run`` is a run directory, whose model and config are loaded from its files, or a
    :class:`TrainedRun` just trained in memory (a study's worker), whose model, config and
    data are used as they are. ``dataset``: the run's data when the caller has already
    loaded it; else the TrainedRun's, or loaded from the config. ``skip_figures``: names
    of figures not to draw (see :func:`mtvae.evaluate.runner.evaluate_model`).
    """
    from mtvae.evaluate.runner import FamilyWriteFailed, evaluate_model, parse_metrics

    families = parse_metrics(metrics)
    if isinstance(run, TrainedRun):
        run_dir, model, config = run.run_dir, run.model.eval(), run.config
        dataset = run.dataset if dataset is None else dataset
    else:
        run_dir = Path(run)
        model, config = load(run_dir)
    refuse_links_out(run_dir)
    if dataset is None:
        dataset = load_dataset(config.data)
    check_evaluation_memory(config, dataset)
    try:
        results = evaluate_model(model, dataset, config, run_dir, families, seed, log,
                                 skip_figures)
    except FamilyWriteFailed as failed:
        raise _keep_computed(run_dir, failed.results, failed.error, failed.family) from None
    merge_results(run_dir, results)  # a damaged results.json is kept aside, not fatal
    if "task" in families:
        warn_at_chance(model, dataset)
    return results


def _keep_computed(run_dir: Path, results: dict, error: WriteError, family: str) -> WriteError:
    """The error to raise when ``family`` failed to write a figure: every metric computed, its
    own included, is merged into ``results.json`` (when that write works) and carried along
    for the CLI to print."""
    if not results:
        return error
    try:
        merge_results(run_dir, results)
        kept = "are saved in results.json and printed above"
    except ResultsNotSaved:
        kept = "are printed above (results.json could not be written either)"
    return ResultsNotSaved(
        error, results, f"then run the command again; the metrics computed up to and "
        f"including '{family}' {kept}")


