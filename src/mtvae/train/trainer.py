"""The training loop: one readable loop, model-agnostic, resumable exactly.

The trainer knows no model by name: it calls ``model(batch, step=step)`` and minimises the
returned ``Output.loss``, logging ``Output.terms`` (and, at each epoch's end, the statistics of
the whole epoch of an :class:`~mtvae.models.capabilities.EpochStatistics` model). A checkpoint after every epoch holds the
weights, optimizer, loop counters and every RNG state, so ``--resume`` continues bit for bit.

Under the CLI, SIGINT and SIGTERM stop training at the next batch boundary after a checkpoint
(a second signal stops at once); the command then exits with ``128 + signal``.

Why one module of over 400 lines: it is one loop, read top to bottom (step, epoch,
validation, checkpoint, resume), in one class whose methods share its state; what is not the
loop already lives apart (checkpoints, distributed helpers, precision, logging, progress).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from mtvae.allocator import tune_cpu_allocator
from mtvae.data.dataset import Dataset
from mtvae.data.loader import InMemoryLoader
from mtvae.errors import Interrupted, UserError, on_signal
from mtvae.models.capabilities import EpochStatistics, TaskWeighted
from mtvae.objectives.weighting import STRATEGIES, WeightingStrategy
from mtvae.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_into,
    read_weights,
    save_checkpoint,
    save_weights,
)
from mtvae.train.config import TrainConfig
from mtvae.train.convergence import improves
from mtvae.train.convergence import window as convergence_window
from mtvae.train.distributed import (
    DistContext,
    all_reduce_sums,
    barrier,
    check_global_batch,
    gather_objects,
    init_distributed,
    rank_device,
    rank_seed,
)
from mtvae.train.logger import NullLogger, RunLogger
from mtvae.train.precision import resolve_amp
from mtvae.train.progress import draws_bars, print_epoch_line

CHECKPOINT = "checkpoint/last.pt"


@dataclass
class LoopState:
    """Counters of the loop, saved in every checkpoint."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_val: float = math.inf
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the last improving one (mtvae.train.convergence)
    train_seconds: float = 0.0
    batch_in_epoch: int = 0  # batches of the current epoch done (mid-epoch checkpoints)
    skipped_steps: int = 0  # batches skipped for a non-finite loss (train.nonfinite=skip)
    anchor_val: float = math.inf  # the best validation objective at the last improving epoch
    # The same rule applied to the generative objective alone (the loss less its label terms,
    # ``Output.generative_loss``), and its value at the epoch whose weights are kept: a model
    # with task heads can be stopped by its task terms while its generative part still
    # improves, and its reconstruction then describes that stop (mtvae.train.convergence).
    gen_best: float = math.inf
    gen_anchor: float = math.inf
    gen_stale: int = 0
    gen_kept: float = math.inf


# Counters added after checkpoints were first written: an older checkpoint lacks them and
# gets them from the counters it has.
LATER_COUNTERS = {"anchor_val": lambda loop: loop.get("best_val", math.inf),
                  "gen_best": lambda loop: math.inf, "gen_anchor": lambda loop: math.inf,
                  "gen_stale": lambda loop: 0, "gen_kept": lambda loop: math.inf}


def _loop_state(loop: dict, path: Path) -> LoopState:
    """The checkpoint's loop counters, checked field by field."""
    fields = {f.name: f.type for f in dataclasses.fields(LoopState)}
    loop = {**{k: fill(loop) for k, fill in LATER_COUNTERS.items() if k not in loop}, **loop}
    unknown = sorted(set(loop) - set(fields))
    problem = None
    if unknown or not set(fields) <= set(loop):
        problem = (f"its loop counters are not mtvae's (unexpected or missing: "
                   f"{', '.join(unknown or sorted(set(fields) - set(loop)))})")
    for name, value in loop.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            problem = f"its loop counter '{name}' is {value!r}, not a number"
        elif fields.get(name) == "int" and not isinstance(value, int):
            problem = f"its loop counter '{name}' is {value!r}, not an integer"
    if problem:
        raise CheckpointError(f"Checkpoint '{path}' is not a usable mtvae checkpoint: {problem}.")
    return LoopState(**loop)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without it is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available; use auto or cpu.")
    return torch.device(name)


class Trainer:
    """Fit ``model`` on ``dataset`` according to ``train``, writing into ``run_dir``.

    ``weighting`` is the ready task-weighting strategy (None: the plain sum of the losses),
    ``labelled_tasks`` the tasks whose labels labelled oversampling counts (None: any), and
    ``record`` the run's resolved config as plain data: every checkpoint holds it, and a resume
    refuses a checkpoint written with another. ``train.labelled_per_batch`` must be resolved
    (a number, not ``auto``; see :mod:`mtvae.autoconf`). ``dist``: the process group the
    caller has joined (:func:`~mtvae.train.distributed.init_distributed`, which the run
    pipeline calls once before it touches the run directory); None joins it here.
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        train: TrainConfig,
        run_dir: Path,
        *,
        seed: int = 0,
        weighting: WeightingStrategy | None = None,
        labelled_tasks: list[str] | None = None,
        record: dict | None = None,
        weights_meta: dict | None = None,
        dist: DistContext | None = None,
    ) -> None:
        if weighting is not None and not isinstance(model, TaskWeighted):
            raise TypeError(f"a weighting strategy needs a TaskWeighted model, not a "
                            f"{type(model).__name__}")
        if train.labelled_per_batch == "auto":
            raise ValueError("train.labelled_per_batch=auto must be resolved before training "
                             "(mtvae.autoconf.resolve_auto)")
        self.cfg = train
        self.seed = seed
        self.record = record or {}
        self.weights_meta = weights_meta or {}
        self.run_dir = Path(run_dir)
        base_device = resolve_device(self.cfg.device)
        self.dist = init_distributed(base_device) if dist is None else dist
        self.device = rank_device(base_device, self.dist)
        check_global_batch(self.cfg.batch_size, self.dist)
        self.model = model.to(self.device)
        if self.device.type == "cpu":
            # Channels-last conv weights make oneDNN pick its faster NHWC kernels: 1.1-1.3x
            # samples/s for the conv bodies on CPU (BENCHMARKS.md); a no-op for MLPs.
            self.model = self.model.to(memory_format=torch.channels_last)
            tune_cpu_allocator()  # reuse activation memory between steps (mtvae.allocator)
        self.amp = resolve_amp(self.cfg.amp, self.device)  # bfloat16 autocast of training
        self.weighting = None if weighting is None else weighting.to(self.device)
        self.net = self._data_parallel(self.model)  # what forward passes go through
        if self.dist.enabled:  # DDP has broadcast rank 0's weights: from here ranks draw apart
            torch.manual_seed(rank_seed(seed, self.dist.rank))
        self.dataset = dataset
        self.optimizer = self._make_optimizer()
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.train_loader = InMemoryLoader(
            dataset.train,
            self.cfg.batch_size,
            shuffle=True,
            generator=self.generator,
            labelled_per_batch=int(self.cfg.labelled_per_batch),
            labelled_tasks=labelled_tasks,
            shard=(self.dist.rank, self.dist.world_size),
        )
        self.val_loader = InMemoryLoader(dataset.val, max(self.cfg.batch_size, 256))
        self.state = LoopState()
        self._resumed_epoch: dict | None = None  # set by resume() from a mid-epoch checkpoint
        self._pending_signal: int | None = None  # SIGINT/SIGTERM received, acted on per batch
        self._epoch_start_rng = self.generator.get_state()
        self.logger = (
            RunLogger(self.run_dir, tensorboard=self.cfg.tensorboard)
            if self.dist.is_main
            else NullLogger()
        )

    def _data_parallel(self, model: nn.Module) -> nn.Module:
        """Wrap in DDP under torchrun; options that need per-rank control are refused."""
        if not self.dist.enabled:
            return model
        if self.weighting is not None and self.weighting.per_task_gradients:
            usable = ", ".join(n for n, c in STRATEGIES.items() if not c.per_task_gradients)
            raise UserError(
                f"model.weighting.strategy={self.weighting.config.strategy} computes per-task "
                f"gradients that DDP does not synchronise; use one of {usable} with several "
                "processes."
            )
        if self.cfg.nonfinite == "skip":
            raise UserError("train.nonfinite=skip needs a single process; use stop with DDP.")
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Some parameters (e.g. a VQ-VAE's second-stage prior) take no part in training.
        return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        cls = torch.optim.AdamW if self.cfg.optimizer == "adamw" else torch.optim.Adam
        params = list(self.model.parameters())
        if self.weighting is not None:  # e.g. uncertainty weighting's log-variances
            params += list(self.weighting.parameters())
        # The fused CPU kernel updates each parameter in one pass instead of one per Adam op:
        # 1.45x samples/s for the MLP VAE, where the update is a quarter of a step (BENCHMARKS.md).
        fused = True if self.device.type == "cpu" else None
        return cls(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, fused=fused)

    # --- the loop -------------------------------------------------------------------------
    def fit(self) -> LoopState:
        """Train until ``train.epochs`` or early stopping; write final weights; return counters."""
        with self._deferred_signals():
            while self.state.epoch < self.cfg.epochs and not self._should_stop():
                start = time.perf_counter()
                train_means = self._train_epoch()
                val_means = self.validate()
                self.state.epoch += 1
                self.state.train_seconds += time.perf_counter() - start
                self._track_best(val_means["loss"], val_means.get("generative"))
                record = self._epoch_record(train_means, val_means)
                self.logger.log(record)
                if self.cfg.progress and not draws_bars(True) and self.dist.is_main:
                    print_epoch_line(record, self.cfg.epochs)
                self._save_checkpoint()
                self._stop_if_signalled()
        self._write_final_weights()
        self.logger.close()
        return self.state

    def _train_epoch(self) -> dict[str, float]:
        self.model.train()
        sums, done = self._begin_epoch()
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {self.state.epoch + 1}/{self.cfg.epochs}",
            disable=not draws_bars(self.cfg.progress),
            leave=False,
            dynamic_ncols=True,
        )
        for index, batch in enumerate(bar):
            if index < done:  # already trained before a mid-epoch checkpoint
                continue
            terms = self._train_step(batch.to(self.device))
            self.state.batch_in_epoch = index + 1
            if terms is not None:
                self._accumulate(sums, terms)
                if self.state.step % self.cfg.log_every == 0:
                    self.logger.log({"kind": "train", "epoch": self.state.epoch + 1,
                                     "step": self.state.step, **terms})
                    bar.set_postfix({k: f"{v:.4g}" for k, v in terms.items() if k != "beta"})
            every = self.cfg.checkpoint_every
            if self._pending_signal is not None:
                self._save_checkpoint(sums)
                self._stop_if_signalled()
            if every and self.state.batch_in_epoch % every == 0:
                self._save_checkpoint(sums)
        self.state.batch_in_epoch = 0
        sums = all_reduce_sums(dict(sums), self.dist, self.device)  # every rank's batches
        n_batches = max(sums.pop("_n", 0.0), 1.0)
        means = {k: v / n_batches for k, v in sums.items()}
        if self.weighting is not None:
            self.weighting.end_epoch(
                {k.removeprefix("losses/"): v for k, v in means.items() if k.startswith("losses/")}
            )
        means = {k: v for k, v in means.items() if not k.startswith("losses/")}
        if isinstance(self.model, EpochStatistics):  # over the whole epoch, e.g. VQ code usage
            means.update(self.model.epoch_terms())
        return means

    def _begin_epoch(self) -> tuple[dict[str, float], int]:
        """Epoch accumulators and batches already done; remembers the loader's start state.

        A mid-epoch checkpoint stores the loader generator's state from the start of the epoch
        and the accumulators so far, so a resume replays the same permutation, skips the
        batches already trained on and ends the epoch with the same means.
        """
        resumed = self._resumed_epoch
        self._resumed_epoch = None
        if resumed is not None:
            self.generator.set_state(resumed["loader_rng"])
            self._epoch_start_rng = resumed["loader_rng"]
            # the checkpoint holds all ranks' sums: counted once, on rank 0
            sums = resumed["sums"] if self.dist.is_main else {}
            return defaultdict(float, sums), self.state.batch_in_epoch
        self._epoch_start_rng = self.generator.get_state()
        return defaultdict(float), 0

    def _accumulate(self, sums: dict[str, float], terms: dict[str, float]) -> None:
        sums["_n"] += 1.0
        for key, value in terms.items():
            sums[key] += value
        if self.weighting is not None:
            for key, value in self._step_losses.items():
                sums[f"losses/{key}"] += value

    def _train_step(self, batch) -> dict[str, float] | None:
        """One optimizer step; None when the batch was skipped for a non-finite loss."""
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.net(batch, step=self.state.step)
        loss_value = float(out.loss.detach())
        if not math.isfinite(loss_value):
            if self.cfg.nonfinite == "stop":
                self._raise_non_finite(out)
            return self._skip_batch(out)
        weights = self._backward(out)
        if self.cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        if self.weighting is not None:
            self.weighting.after_step()
        self.state.step += 1
        terms = {"loss": loss_value, **{k: float(v) for k, v in out.terms.items()}}
        terms.update({f"weight/{k}": w for k, w in weights.items()})
        return terms

    def _backward(self, out) -> dict[str, float]:
        if self.weighting is None:
            out.loss.backward()
            return {}
        self._step_losses = {k: float(v.detach()) for k, v in out.losses.items()}
        return self.weighting.backward(out.losses, self.model.shared_parameters())

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean loss terms over the validation split (evaluation mode, full beta, float32:
        it selects the best epoch and decides convergence)."""
        self.model.eval()
        sums: dict[str, float] = defaultdict(float)
        for batch in self.val_loader:
            batch = batch.to(self.device)
            out = self.model(batch)
            n = len(batch.x)
            sums["loss"] += float(out.loss) * n
            generative = out.generative_loss()
            if generative is not None:
                sums["generative"] += float(generative) * n
            for key, value in out.terms.items():
                sums[key] += float(value) * n
        return {k: v / len(self.dataset.val) for k, v in sums.items()}

    # --- signals --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _deferred_signals(self) -> Iterator[None]:
        """While training, the CLI's SIGINT/SIGTERM handler waits for the next batch boundary.

        Only the CLI's own handler is deferred (workers that ignore a signal, and library
        users with Python's default handler, keep theirs); under DDP every rank would have to
        agree on the boundary, so there the signal acts at once as before.
        """
        deferred = []
        if not self.dist.enabled and threading.current_thread() is threading.main_thread():
            deferred = [s for s in (signal.SIGINT, signal.SIGTERM)
                        if signal.getsignal(s) is on_signal]
        for signum in deferred:
            signal.signal(signum, self._on_signal)
        try:
            yield
        finally:
            for signum in deferred:
                signal.signal(signum, on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._pending_signal is not None:  # asked twice: stop now (the last checkpoint stays)
            raise Interrupted(signum)
        self._pending_signal = signum

    def _stop_if_signalled(self) -> None:
        """After a checkpoint: stop if a signal arrived, saying how to resume."""
        if self._pending_signal is not None:
            name = signal.Signals(self._pending_signal).name
            raise Interrupted(self._pending_signal, (
                f"{name}: stopped at step {self.state.step} after saving a checkpoint; resume "
                f"with `mtvae train --resume {self.run_dir}`."))

    # --- bookkeeping ----------------------------------------------------------------------
    def _autocast(self):
        """bfloat16 autocast of a training step when ``train.amp`` is on (mtvae.train.precision)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def _skip_batch(self, out) -> None:
        self.state.skipped_steps += 1
        self.logger.log({"kind": "skip", "epoch": self.state.epoch + 1, "step": self.state.step,
                         "terms": self._non_finite_terms(out)})
        if self.state.skipped_steps > self.cfg.max_skipped:
            raise UserError(
                f"{self.state.skipped_steps} batches had a non-finite loss (more than "
                f"train.max_skipped={self.cfg.max_skipped}); the last good checkpoint is kept. "
                "Lower train.lr, set train.grad_clip, or check the data for NaN values."
            )
        return None

    @staticmethod
    def _non_finite_terms(out) -> list[str]:
        return [k for k, v in out.losses.items() if not math.isfinite(float(v.detach()))]

    def _raise_non_finite(self, out) -> None:
        bad = self._non_finite_terms(out)
        raise UserError(
            f"The loss became non-finite at step {self.state.step} (terms: {', '.join(bad) or 'loss'}). "
            "The last good checkpoint is kept. Lower train.lr, set train.grad_clip, or check "
            "the data for NaN values, then resume with --resume."
        )

    def _track_best(self, val_loss: float, generative: float | None = None) -> None:
        """Keep the best weights; count the epochs since the last improving one (the
        convergence rule of :mod:`mtvae.train.convergence`, which ``assess`` applies to a
        whole curve), for the objective and for its generative part."""
        state = self.state
        new_best = math.isfinite(val_loss) and val_loss < state.best_val
        if new_best:
            state.best_val, state.best_epoch = val_loss, state.epoch
            if self.cfg.restore_best and self.dist.is_main:
                save_weights(self.run_dir / "checkpoint/best.safetensors", self.model, {})
        if improves(state.best_val, state.anchor_val, self.cfg.min_improvement):
            state.anchor_val, state.stale_epochs = state.best_val, 0
        else:
            state.stale_epochs += 1
        if generative is not None:
            self._track_generative(generative, kept=new_best or not self.cfg.restore_best)

    def _track_generative(self, value: float, kept: bool) -> None:
        """The rule on the generative objective alone; ``kept``: this epoch's weights are the
        ones training will end with (so far)."""
        state = self.state
        if kept:
            state.gen_kept = value
        if math.isfinite(value):
            state.gen_best = min(state.gen_best, value)
        if improves(state.gen_best, state.gen_anchor, self.cfg.min_improvement):
            state.gen_anchor, state.gen_stale = state.gen_best, 0
        else:
            state.gen_stale += 1

    @property
    def converged(self) -> bool:
        """Whether training has converged by the rule of :mod:`mtvae.train.convergence`."""
        return self.state.stale_epochs >= convergence_window(self.cfg.early_stopping)

    @property
    def generative_convergence(self) -> dict[str, float | bool]:
        """The convergence record of the generative objective (``train/generative_*`` in
        ``results.json``); empty for a model without one. ``gap``: how much higher it is at
        the epoch whose weights are kept (with ``train.restore_best``, the best epoch of the
        whole objective) than at its own best epoch of the run (left out when the kept epoch's
        value is unknown: it came before a resume from a checkpoint older than this record)."""
        state = self.state
        if not math.isfinite(state.gen_best):
            return {}
        record: dict[str, float | bool] = {
            "converged": state.gen_stale >= convergence_window(self.cfg.early_stopping)}
        if math.isfinite(state.gen_kept):
            record["gap"] = state.gen_kept - state.gen_best
        return record

    def _should_stop(self) -> bool:
        return self.cfg.early_stopping is not None and self.converged

    def _epoch_record(self, train: dict[str, float], val: dict[str, float]) -> dict:
        record = {"kind": "epoch", "epoch": self.state.epoch, "step": self.state.step}
        record.update({f"train/{k}": v for k, v in train.items()})
        record.update({f"val/{k}": v for k, v in val.items()})
        record["time_s"] = self.state.train_seconds
        return record

    def _save_checkpoint(self, epoch_sums: dict[str, float] | None = None) -> None:
        """Atomically write the resumable state; mid-epoch, also the epoch's position."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loop": asdict(self.state),
            "torch_rng": torch.get_rng_state(),
            "loader_rng": self.generator.get_state(),
            "config": self.record,
        }
        if self.weighting is not None:
            state["weighting"] = self.weighting.state_dict()
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        # a collective: every rank takes part, rank 0 writes
        ranks = gather_objects({**self._rank_rng(), "sums": dict(epoch_sums or {})}, self.dist)
        if self.dist.enabled:
            state["ranks"] = [{k: v for k, v in r.items() if k != "sums"} for r in ranks]
        if self.state.batch_in_epoch:
            # every rank's batches so far; rank 0 alone carries them on after a resume
            sums = {k: sum(r["sums"].get(k, 0.0) for r in ranks) for k in ranks[0]["sums"]}
            state["epoch"] = {"loader_rng": self._epoch_start_rng, "sums": sums}
        if self.dist.is_main:
            save_checkpoint(self.run_dir / CHECKPOINT, state)
        barrier(self.dist)  # no rank runs ahead of a checkpoint another may resume from

    def _rank_rng(self) -> dict:
        """This rank's noise streams, which differ between DDP ranks."""
        state: dict = {"torch_rng": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def _restore_rank_rng(self, ranks: list[dict] | None) -> None:
        """This rank's streams from a checkpoint; fresh ones if the world size changed."""
        if not ranks or len(ranks) != self.dist.world_size:
            torch.manual_seed(rank_seed(self.seed, self.dist.rank, self.state.step))
            return
        mine = ranks[self.dist.rank]
        torch.set_rng_state(mine["torch_rng"])
        if "cuda_rng" in mine and self.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda_rng"], self.device)

    def resume(self, path: Path | None = None) -> None:
        """Restore everything from the run's last checkpoint (or from ``path``).

        Anything unusable in the checkpoint raises :class:`CheckpointError` before training.
        """
        path = Path(path or self.run_dir / CHECKPOINT)
        state = load_checkpoint(path)
        if state.get("config") != self.record:
            raise CheckpointError(
                f"Checkpoint '{path}' was written with a different configuration than "
                f"'{self.run_dir / 'config.yaml'}' (edited or damaged?); resume only with the "
                "run's own config, which the checkpoint holds under 'config'."
            )
        try:
            load_state_into(self.model, state["model"], str(path))
            if self.weighting is not None:
                self.weighting.load_state_dict(state["weighting"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.state = _loop_state(state["loop"], path)
            torch.set_rng_state(state["torch_rng"])
            self.generator.set_state(state["loader_rng"])
        except UserError as exc:
            raise CheckpointError(str(exc)) from None
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise CheckpointError(
                f"Checkpoint '{path}' is damaged: its training state does not fit this run "
                f"({type(exc).__name__}: {str(exc).strip()[:200]})."
            ) from None
        self._resumed_epoch = state.get("epoch")
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if self.dist.enabled:
            self._restore_rank_rng(state.get("ranks"))
        self.logger.truncate_after(self.state.step, self.state.epoch)

    def _write_final_weights(self) -> None:
        barrier(self.dist)
        if not self.dist.is_main:
            return
        best = self.run_dir / "checkpoint/best.safetensors"
        if self.cfg.restore_best and best.is_file():
            tensors, _ = read_weights(best)
            load_state_into(self.model, tensors, str(best))
        save_weights(self.run_dir / "model.safetensors", self.model, self.weights_meta)
