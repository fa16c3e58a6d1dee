"""Did a task head learn anything? One warning line per head that scores at chance, for one run.

A head at chance usually means a setting, not a hard task: the task loss drowned by the
reconstruction, too few labelled passes, or too short a run. ``mtvae train`` and ``mtvae
evaluate`` print these lines for the validation split, so a user learns it before reading
numbers that compare models which never learned the task. (Across a study, whether each
variant learned each task is decided from stored scores with intervals:
:mod:`mtvae.analysis.learnability`.)
"""

from __future__ import annotations

import math

import numpy as np

from mtvae.data.task_kinds import TaskKind
from mtvae.evaluate.tasks import chance_accuracy, predict_split
from mtvae.models.capabilities import Multitask

NOISE_SE = 2.0  # accuracy within 2 binomial standard errors of the majority rate is "chance"
HINT = (
    "Likely causes: the task loss is small next to the reconstruction, too few passes over "
    "the labels, or too short a run; try a larger model.task_scale or "
    "model.task_weights.{task}, train.labelled_per_batch, or more train.epochs."
)


def at_chance(kind: TaskKind, y_true: np.ndarray, y_pred: np.ndarray) -> str | None:
    """Why predictions ``y_pred`` are at chance for targets ``y_true`` (None when they are not).

    Categorical and binary: accuracy at most the majority-class rate plus two standard errors
    of an accuracy at that rate on ``len(y_true)`` points. Regression: R² <= 0 (no better than
    predicting the mean). Multi-label tasks are not judged.
    """
    n = len(y_true)
    if n < 2 or not kind.scalar:
        return None
    scores = kind.scores(y_true, y_pred)
    if kind.continuous:
        r2 = scores["r2"]
        return f"R² {r2:.2f} <= 0, no better than predicting the mean" if r2 <= 0 else None
    chance = chance_accuracy(y_true)
    noise = NOISE_SE * math.sqrt(chance * (1 - chance) / n)
    acc = scores["accuracy"]
    if acc > chance + noise:
        return None
    return (f"accuracy {acc:.3f}, while always guessing the most frequent class gives "
            f"{chance:.3f} (n={n})")


def chance_warnings(
    model, split, split_name: str = "validation", data_tasks: dict | None = None
) -> list[str]:
    """One line per task head of ``model`` that is at chance on the labelled part of ``split``.

    Control tasks of ``data_tasks`` (random labels, independent of the image) are at chance by
    design and get no warning.
    """
    if not isinstance(model, Multitask) or not model.tasks or len(split) == 0:
        return []
    tasks = model.tasks
    model.eval()
    predictions = predict_split(model, split.x)
    lines = []
    for task, pred in predictions.items():
        if data_tasks and task in data_tasks and data_tasks[task].control:
            continue
        mask = split.masks[task].numpy()
        reason = at_chance(tasks[task].task_kind, split.targets[task].numpy()[mask], pred[mask])
        if reason:
            lines.append(f"warning: the '{task}' head is at chance on the {split_name} split "
                         f"({reason}). " + HINT.replace("{task}", task))
    return lines
