"""``TrainConfig``: optimisation and bookkeeping of one training run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mtvae.base import StrictModel
from mtvae.train.convergence import DEFAULT_MIN_IMPROVEMENT, DEFAULT_PATIENCE


class TrainConfig(StrictModel):
    """Optimisation and bookkeeping for one training run."""

    epochs: int = Field(
        100, ge=1, description="the most passes over the training split (early stopping "
        "usually ends training sooner)"
    )
    batch_size: int = Field(
        128, ge=1, description="training samples per optimizer step (summed over all DDP "
        "processes; labelled oversampling appends train.labelled_per_batch more)"
    )
    lr: float = Field(1e-3, gt=0, description="learning rate of the optimizer")
    optimizer: Literal["adam", "adamw"] = Field(
        "adam", description="adam: Adam with L2 weight decay; adamw: AdamW's decoupled decay"
    )
    weight_decay: float = Field(
        0.0, ge=0, description="weight decay of the optimizer (0: none)"
    )
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm (None: no clipping)")
    early_stopping: int | None = Field(
        DEFAULT_PATIENCE, ge=1, description="patience: stop once this many epochs in a row did "
        "not improve the validation objective (None: train all train.epochs); the same window "
        "decides train/converged (mtvae.train.convergence)"
    )
    min_improvement: float = Field(
        DEFAULT_MIN_IMPROVEMENT, ge=0, lt=1, description="the relative fall of the best "
        "validation objective an epoch must bring to count as an improvement"
    )
    restore_best: bool = Field(True, description="final weights = best validation epoch")
    checkpoint_every: int | None = Field(
        None, ge=1, description="also checkpoint every N batches within an epoch (None: per epoch)"
    )
    nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="on a NaN/inf loss: stop with a message, or skip that batch"
    )
    max_skipped: int = Field(100, ge=0, description="with nonfinite=skip: give up after this many")
    labelled_per_batch: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="extra labelled samples appended to each training batch (0: off); auto: "
        "batch_size // 2 for models with task heads when under half the training samples "
        "carry a label, else 0",
    )
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch default)")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where to train; auto: CUDA when a GPU is available, else the CPU"
    )
    amp: bool | Literal["auto"] = Field(
        False, description="bfloat16 autocast of training's forward passes and losses (on "
        "CUDA or the CPU; validation and evaluation stay float32); auto: on where the device "
        "computes bfloat16 natively (a CPU with AVX512-BF16 or AMX), off elsewhere"
    )
    log_every: int = Field(50, ge=1, description="log a training record every N steps")
    tensorboard: bool = Field(False, description="also write TensorBoard events (needs tensorboard)")
    progress: bool = Field(True, description="show a progress bar")
