"""Whether a run's model can hold the tasks it is given, asked before any data is loaded.

A model whose options bound its number of tasks (an MT-VAE's partitioned latent: one
``task_dim`` block per task within ``latent_dim``) says so through
:meth:`~mtvae.models.task_heads.TaskOptions.task_capacity_problem`, the rule its build applies.
:func:`task_capacity_problem` counts the tasks from ``model.tasks`` or the source's file headers
(:func:`mtvae.data.sources.planned_tasks`), so ``mtvae train`` and ``mtvae study`` refuse such
a run before anything is decoded, trained or written; each adds the fix in its own terms.
"""

from __future__ import annotations

from typing import Any

from mtvae.data.sources import default_tasks, planned_tasks
from mtvae.errors import UserError
from mtvae.models.task_heads import TaskOptions


def task_capacity_problem(model: Any, data: Any) -> str | None:
    """Why ``model`` (a model config) cannot learn the tasks it gets on ``data`` (a
    :class:`~mtvae.data.config.DataConfig`): how many, whose, the limit and the option that
    sets it; None when it can, when it learns no task, or when the tasks are known only on
    loading (the model's build then applies the same rule)."""
    if not isinstance(model, TaskOptions):
        return None
    tasks = planned_tasks(data, model.tasks)
    if tasks is None:
        return None
    problem = model.task_capacity_problem(len(tasks))
    if problem is None:
        return None
    whose = "named in model.tasks" if model.tasks is not None else f"every task of {data.source}"
    return f"model '{model.name}' would learn {len(tasks)} tasks ({whose}), but {problem}"


def check_task_capacity(model: Any, data: Any) -> None:
    """Refuse a run whose model cannot hold its tasks (:func:`task_capacity_problem`), saying
    how to name fewer tasks (``mtvae train``'s terms)."""
    problem = task_capacity_problem(model, data)
    if problem:
        example = ",".join(example_tasks(model, data))
        raise UserError(f"Cannot train: {problem}. Or name the tasks it learns, e.g. "
                        f"--set 'model.tasks=[{example}]'.")


def example_tasks(model: Any, data: Any, n: int = 3) -> list[str]:
    """A few task names to show in a fix: the source's default, else the first ``n`` of the
    tasks ``model`` would learn on ``data``."""
    return default_tasks(data.source) or (planned_tasks(data, model.tasks) or [])[:n]
