"""A run's estimated cost, so a study starts its longest runs first.

Workers that take the longest runs last leave cores idle at a study's end while one run
finishes alone; longest-first (the LPT rule) keeps them busy. Only the order of the estimates
matters: a training costs about its model's ``relative_cost`` (registry) x training images x
pixels x the budget's maximum epochs, and each run that shares the training (a label-free
model re-evaluated at another label count) adds an evaluation, estimated as a tenth of it.
"""

from __future__ import annotations

from typing import Any

from mtvae.models.registry import get_model_entry

UNKNOWN_N_TRAIN = 5000  # data.n_train unset: the source's own size, unknown before loading
EVALUATION_SHARE = 0.1  # an evaluation next to its training, for runs that share one


def training_cost(config: dict[str, Any]) -> float:
    """The estimated cost of training the resolved run ``config`` (arbitrary units)."""
    data, train = config.get("data", {}), config.get("train", {})
    images = data.get("n_train") or UNKNOWN_N_TRAIN
    pixels = (data.get("image_size") or 32) ** 2
    model = get_model_entry(config["model"]["name"])
    return model.relative_cost * images * pixels * train.get("epochs", 1)


def task_cost(config: dict[str, Any], shared: int) -> float:
    """The estimated cost of a task: the training of ``config``, its evaluation and the
    evaluations of the ``shared`` runs evaluated from it."""
    return training_cost(config) * (1 + EVALUATION_SHARE * (1 + shared))


def longest_first(tasks: list, cost) -> list:
    """``tasks`` ordered by ``cost(task)``, largest first (ties keep their order)."""
    return sorted(tasks, key=cost, reverse=True)
