"""Task performance of a model's own heads on the test split: ``task/<task>/<metric>``."""

from __future__ import annotations

import numpy as np
import torch

from mtvae.evaluate.metric import info, outcome

METRICS = (
    outcome("task/*/balanced_accuracy", "task", "higher", "fraction",
            "the model's own head: test accuracy averaged over classes"),
    outcome("task/*/accuracy", "task", "higher", "fraction", "the model's own head: test accuracy"),
    outcome("task/*/mae", "task", "lower", "target units",
            "the model's own head: mean absolute error on the test split"),
    outcome("task/*/r2", "task", "higher", "",
            "the model's own head: coefficient of determination R² on the test split"),
    info("chance/*/accuracy", "fraction", "chance level of a categorical task: the share of its "
         "most frequent class among the labelled test points (always guessing it)", "task"),
)


def chance_accuracy(y_true: np.ndarray) -> float:
    """The accuracy of always guessing the most frequent class of ``y_true``."""
    if len(y_true) == 0:
        return float("nan")
    return float(np.unique(y_true, return_counts=True)[1].max() / len(y_true))


@torch.inference_mode()
def predict_split(model, x: torch.Tensor, batch_size: int = 500) -> dict[str, np.ndarray]:
    """The model's task predictions on ``x``, batched, as numpy arrays."""
    chunks: dict[str, list] = {}
    for start in range(0, len(x), batch_size):
        for task, pred in model.predict(x[start : start + batch_size]).items():
            chunks.setdefault(task, []).append(pred.cpu().numpy())
    return {task: np.concatenate(parts) for task, parts in chunks.items()}


def task_metrics(model, split, batch_size: int = 500, only=None) -> dict[str, float]:
    """``task/<task>/<metric>`` on the labelled samples of ``split`` (of the tasks in ``only``,
    when given), as the task's kind scores them (:meth:`~mtvae.data.task_kinds.TaskKind.scores`:
    accuracy and balanced accuracy, accuracy over every entry for multilabel, MAE and R²)."""
    predictions = predict_split(model, split.x, batch_size)
    results = {}
    for task, pred in predictions.items():
        if only is not None and task not in only:
            continue
        mask = split.masks[task].numpy()
        y_true = split.targets[task].numpy()[mask]
        spec = model.tasks[task]
        for key, value in spec.task_kind.scores(y_true, pred[mask]).items():
            results[f"task/{task}/{key}"] = value
        if spec.discrete:
            results[f"chance/{task}/accuracy"] = chance_accuracy(y_true)
    return results
