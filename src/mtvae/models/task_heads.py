"""Task heads: the options, weights and MLP heads every model with supervised tasks shares.

:class:`TaskHeads` is the module a model composes (the MT-VAE on latent blocks, the supervised
baseline on its representation, the MT-VQ-VAE on its code grid): one MLP per task, sized by the
task's kind (:mod:`mtvae.data.task_kinds`), each reading its slices of the input. The task
losses are :func:`mtvae.objectives.task_losses.task_loss_terms`; predictions go back to the
user's units through :class:`~mtvae.objectives.task_losses.TargetScaling`.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from mtvae.base import StrictModel
from mtvae.data.dataset import DataInfo
from mtvae.data.task_kinds import RegressionLoss
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError, unknown_name
from mtvae.nn.heads import TaskHead
from mtvae.objectives.task_losses import TargetScaling
from mtvae.objectives.weighting import WeightingConfig


class TaskOptions(StrictModel):
    """Options shared by models with task heads."""

    # Whether the model also reconstructs its input, the term task_scale: auto balances against.
    reconstructs: ClassVar[bool] = True

    tasks: list[str] | None = Field(None, description="tasks to learn (None: all the data's)")
    task_weights: dict[str, float] = Field(
        default_factory=dict, description="per-task weight, on top of model.task_scale"
    )
    task_scale: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="factor on every task loss; auto: (values per image) / 10 for models that "
        "reconstruct (a reconstruction sums over pixels, a task loss is ~1 nat), 1 otherwise",
    )
    # MSE on z-scored targets stays on the scale of a cross-entropy; a Gaussian NLL with a
    # learned variance sharpens its variance as the fit improves, and its gradients (residual
    # over variance) then outgrow the other tasks' (Seitzer et al. 2022): it halved the digit
    # accuracy of an MT-VAE learning digit and thickness together (docs/guides/models.md, "Balanced by default").
    regression_loss: RegressionLoss = Field(
        "mse", description="mse (on z-scored targets) or gaussian_nll (learned variance)"
    )
    head_hidden: list[int] = Field(default_factory=lambda: [64], description="head MLP sizes")
    weighting: WeightingConfig = Field(
        default_factory=WeightingConfig, description="how the loss terms are weighted against "
        "each other during training (model.weighting.*)"
    )

    def resolve_auto(self, image_shape: tuple[int, ...]) -> None:
        """``task_scale: auto`` becomes the number it stands for (:func:`resolved_task_scale`)."""
        super().resolve_auto(image_shape)
        self.task_scale = resolved_task_scale(self, image_shape)

    def task_capacity_problem(self, n_tasks: int) -> str | None:
        """Why these options cannot hold ``n_tasks`` tasks, and which option to change; None
        when they can (any number, unless a model's latent gives each task a block)."""
        return None


class TaskWeightOption(StrictModel):
    """The task weight as a multiple of ``task_scale``: the knob that moves a model with a
    decoder and heads along its trade-off, from a VAE with untrained heads (0) towards a
    supervised network (large). The study axis ``task_weight`` varies it."""

    # Left out of config.yaml at 1 (exclude_if), so adding it changed no earlier run id.
    task_scale_factor: float = Field(
        1.0, ge=0, exclude_if=lambda v: v == 1.0,
        description="multiplies model.task_scale (auto or a number) on every task loss; 0 "
        "trains no head (the VAE's objective), the task_weight study axis varies it",
    )


def resolved_task_scale(options: TaskOptions, image_shape) -> float:
    """The number ``model.task_scale: auto`` stands for: D / 10 for D values per image.

    A Bernoulli or Gaussian reconstruction is a sum over the D values of an image, about 0.1
    to 0.2 nats each (hundreds of nats for 32x32), while a task loss is one or two nats, so
    with weight 1 the shared encoder barely serves the tasks. D / 10 puts both on comparable
    scales; the measurements behind the choice are in docs/guides/models.md ("Balanced by default").
    Models that do not reconstruct (``supervised``) have nothing to balance: 1.
    """
    if options.task_scale != "auto":
        return float(options.task_scale)
    return balanced_task_scale(image_shape) if options.reconstructs else 1.0


def balanced_task_scale(image_shape) -> float:
    """D / 10 for D values per image: the weight that puts a task loss (about one nat) on the
    scale of a reconstruction summed over the image (0.1 to 0.2 nats per value). Every model
    that adds task losses to a reconstruction defaults to it (the MT-VAE's ``task_scale``,
    M2's ``alpha``), so the baselines get the same balance as the MT-VAE."""
    return math.prod(image_shape) / 10


def effective_task_weights(options: TaskOptions, tasks, image_shape) -> dict[str, float]:
    """Weight per task: ``task_scale`` times ``task_scale_factor`` (for models that have it)
    times the task's entry in ``task_weights`` (default 1)."""
    scale = resolved_task_scale(options, image_shape)
    if isinstance(options, TaskWeightOption):
        scale *= options.task_scale_factor
    return {t: scale * options.task_weights.get(t, 1.0) for t in tasks}


def select_tasks(names: list[str] | None, info: DataInfo) -> dict:
    """The dataset's task specs named in ``names`` (all of them when None), in order."""
    if names is None:
        return dict(info.tasks)
    if not names:
        raise UserError("model.tasks is empty: name at least one task, e.g. [shape].")
    for name in names:
        if name not in info.tasks:
            raise unknown_name("task", name, info.tasks)
    return {name: info.tasks[name] for name in names}


class TaskHeads(nn.ModuleDict):
    """One MLP head per task (keys: the task names), sized by the task's kind.

    ``reads`` gives, per task, the slices of the input its head reads (an MT-VAE head reads
    its latent blocks); an ``int`` is the input width every head reads whole.
    """

    def __init__(self, tasks: dict[str, TaskSpec], reads: int | dict[str, list[slice]],
                 options: TaskOptions, activation: str) -> None:
        if isinstance(reads, int):
            reads = {t: [slice(0, reads)] for t in tasks}
        super().__init__({
            t: TaskHead(_width(reads[t]), spec.task_kind.head_size(options.regression_loss),
                        options.head_hidden, activation)
            for t, spec in tasks.items()
        })
        self._tasks, self._reads = tasks, reads

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs for head inputs ``h`` ``(B, W)``."""
        return {t: head(gather(h, self._reads[t])) for t, head in self.items()}

    def predictions(self, outputs: dict[str, torch.Tensor], scaling: TargetScaling
                    ) -> dict[str, torch.Tensor]:
        """Point predictions per task in the user's units, from raw head ``outputs``."""
        return {t: scaling.unstandardize(t, self._tasks[t].task_kind.predict(out))
                for t, out in outputs.items()}


def task_setup(options: TaskOptions, info: DataInfo
               ) -> tuple[dict[str, TaskSpec], TargetScaling, dict[str, float]]:
    """The tasks a model learns (``model.tasks``), the z-scoring of their regression targets
    and each task's effective loss weight."""
    tasks = select_tasks(options.tasks, info)
    weights = effective_task_weights(options, tasks, info.image_shape)
    return tasks, TargetScaling(tasks, info.target_stats), weights


def gather(h: torch.Tensor, slices: list[slice]) -> torch.Tensor:
    """The columns of ``h`` in ``slices``, side by side."""
    if len(slices) == 1:
        return h[:, slices[0]]
    return torch.cat([h[:, s] for s in slices], dim=1)


def _width(slices: list[slice]) -> int:
    return sum(s.stop - s.start for s in slices)
