"""Label policies: which samples keep which task labels, in the training and validation splits.

How many labels a task keeps is set either as a share (``data.label_fraction``, one number or
per task) or as a count (``data.n_labelled``, one integer or per task; tasks it does not name
keep every label). Which samples keep them is the policy's choice, seeded by ``data.seed``:

- ``mcar`` (missing completely at random): for each task independently, a random subset of
  exactly ``k`` samples keeps its label. With ``data.label_balance: per_class`` that subset is
  balanced over the classes of a categorical or binary task, as in the semi-supervised
  literature (100 labels of a 10-class task: 10 per class; a class with too few samples gives
  its share to the others, and ``k mod K`` extra labels go to randomly chosen classes).
  Regression and multilabel tasks have no classes and fall back to a random subset.
- ``disjoint``: every sample is labelled for at most one task. A random permutation of the
  samples is cut into consecutive chunks, one per task (in name order), of ``k_t`` samples
  each, so the shares must add up to at most 1.
- ``mnar`` (missing not at random): the chance that a label is missing depends on its value.
  Each sample gets a score ``s`` in ``[0, 1]`` from its label (categorical: ``class / (K - 1)``;
  binary: the label; regression: the label's rank quantile (mid-rank for ties); multilabel: the
  mean of its entries) and exactly ``k`` samples keep their label, drawn without replacement
  with weights ``exp(-strength * s)`` (``data.mnar_strength``). Strength 0 is MCAR; a positive
  strength keeps low labels more often (high classes, large values go missing), a negative one
  the reverse; for small fractions the odds of keeping a label with ``s = 0`` over one with
  ``s = 1`` approach ``exp(strength)``.

``k`` is ``round(fraction * N)`` of the split's ``N`` samples (any label the source itself
lacks stays missing), or the count ``n_labelled``, drawn among the samples whose label is
known (more than that is an error). Random subsets are nested: with the same seed, the
labels kept at a smaller ``k`` are among those kept at a larger one.

**Validation labels** follow the training policy by default (``data.val_labels: policy``):
the validation split keeps the same share of each task's labels as the training split, under
the same policy (a separate seeded draw), so model selection (the trainer's validation loss:
best epoch, early stopping) sees only labels a user with that labelling budget would have
(Oliver et al. 2018, "Realistic Evaluation of Deep Semi-Supervised Learning Algorithms").
A task that keeps any training label keeps at least one validation label.
``val_labels: all`` keeps every validation label. The test split always keeps every label,
so every model is scored on the same labelled data.
"""

from __future__ import annotations

import torch

from mtvae.data.dataset import Split
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError, unknown_name

SEED_OFFSET = {"train": 17, "val": 29}  # one label stream per split (train: as it always was)


def task_fractions(fraction: float | dict[str, float], tasks: list[str]) -> dict[str, float]:
    """Expand one fraction or a per-task dict (unnamed tasks keep all labels) to every task."""
    if not isinstance(fraction, dict):
        return dict.fromkeys(tasks, float(fraction))
    for name in fraction:
        if name not in tasks:
            raise unknown_name("task in data.label_fraction", name, tasks)
    return {task: float(fraction.get(task, 1.0)) for task in tasks}


def task_counts(n_labelled: int | dict[str, int], tasks: list[str]) -> dict[str, int | None]:
    """Expand one count or a per-task dict to every task (None: the task keeps all labels)."""
    if not isinstance(n_labelled, dict):
        return dict.fromkeys(tasks, int(n_labelled))
    for name in n_labelled:
        if name not in tasks:
            raise unknown_name("task in data.n_labelled", name, tasks)
    return {task: n_labelled.get(task) for task in tasks}


def label_masks(
    n: int,
    fractions: dict[str, float],
    policy: str,
    seed: int,
    scores: dict[str, torch.Tensor] | None = None,
    strength: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Boolean keep-masks ``(n,)`` per task keeping ``round(fraction_t * n)`` labels each.

    ``mnar`` needs ``scores[task]`` ``(n,)`` in ``[0, 1]`` (see :func:`label_scores`).
    """
    _check_disjoint_shares(fractions, policy)
    counts = {task: round(f * n) for task, f in fractions.items()}
    available = {task: torch.ones(n, dtype=torch.bool) for task in fractions}
    return select_labels(available, counts, policy, _generator(seed, "train"), scores, strength)


def select_labels(
    available: dict[str, torch.Tensor],
    counts: dict[str, int],
    policy: str,
    generator: torch.Generator,
    scores: dict[str, torch.Tensor] | None = None,
    strength: float = 0.0,
    classes: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Keep-masks per task: ``counts[task]`` samples among ``available[task]`` under ``policy``.

    ``classes[task]`` (class index per sample), when given for a task, balances its subset
    over classes (``mcar`` only). A task with fewer available samples keeps all of them.
    """
    tasks = sorted(counts)
    if policy == "disjoint":
        return _disjoint(available, counts, tasks, generator)
    masks = {}
    for task in tasks:
        pool = torch.nonzero(available[task]).flatten()
        k = min(counts[task], len(pool))
        if policy == "mnar":
            # Gumbel top-k: exactly k draws without replacement, weights exp(-strength * s).
            uniform = torch.rand(len(pool), generator=generator, dtype=torch.float64)
            keys = -strength * scores[task][pool].double() - torch.log(
                -torch.log(uniform.clamp_min(1e-300))
            )
            chosen = pool[torch.topk(keys, k).indices] if k else pool[:0]
        else:
            order = pool[torch.randperm(len(pool), generator=generator)]
            if classes is not None and task in classes:
                order = _class_round_robin(order, classes[task][order], generator)
            chosen = order[:k]
        masks[task] = _mask_of(len(available[task]), chosen)
    return masks


def _class_round_robin(
    order: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Reorder shuffled indices so that every prefix is as class-balanced as it can be.

    The first of each class come first (classes in a random order), then the second of each,
    and so on; a class that runs out simply drops out of the later rounds.
    """
    labels = labels.long()
    values, inverse = torch.unique(labels, return_inverse=True)
    rank_of_class = torch.randperm(len(values), generator=generator)[inverse]
    by_class = torch.argsort(inverse, stable=True)  # shuffled order kept within a class
    first = torch.searchsorted(inverse[by_class], torch.arange(len(values)))
    within = torch.empty_like(inverse)
    within[by_class] = torch.arange(len(order)) - first[inverse[by_class]]
    key = within * len(values) + rank_of_class
    return order[torch.argsort(key, stable=True)]


def _disjoint(available, counts, tasks, generator) -> dict[str, torch.Tensor]:
    """One permutation of the samples, taken task by task, each sample at most once."""
    n = len(next(iter(available.values())))
    order = torch.randperm(n, generator=generator)
    taken = torch.zeros(n, dtype=torch.bool)
    masks = {}
    for task in tasks:
        free = order[(available[task] & ~taken)[order]]
        chosen = free[: counts[task]]
        taken[chosen] = True
        masks[task] = _mask_of(n, chosen)
    return masks


def label_scores(spec: TaskSpec, targets: torch.Tensor) -> torch.Tensor:
    """The MNAR score ``(N,)`` in ``[0, 1]`` of each label (higher: more often missing)."""
    return spec.task_kind.label_score(targets.double())


def apply_label_policy(dataset, cfg) -> None:
    """Remove labels from the training and (``val_labels: policy``) validation splits in place.

    ``cfg`` is a :class:`~mtvae.data.config.DataConfig` (its label keys and ``seed``).
    """
    names = sorted(dataset.train.targets)
    if not names:
        return
    train_counts = _training_counts(dataset.train, cfg, names)
    val_counts = _validation_counts(dataset, cfg, train_counts)  # before train is narrowed
    _narrow(dataset.train, train_counts, cfg, dataset.tasks, "train")
    if cfg.val_labels == "policy":
        _narrow(dataset.val, val_counts, cfg, dataset.tasks, "val")


def _by_count(cfg) -> bool:
    """Counts (``n_labelled``) are drawn among the known labels; shares among all samples."""
    return cfg.n_labelled is not None


def _training_counts(split: Split, cfg, names: list[str]) -> dict[str, int | None]:
    """Labels each task keeps in the training split (None: all of them)."""
    if not _by_count(cfg):
        fractions = task_fractions(cfg.label_fraction, names)
        _check_disjoint_shares(fractions, cfg.label_policy)
        return {task: round(f * len(split)) for task, f in fractions.items()}
    counts = task_counts(cfg.n_labelled, names)
    for task, k in counts.items():
        have = int(split.masks[task].sum())
        if k is not None and k > have:
            raise UserError(
                f"data.n_labelled asks for {k} labels of task '{task}', but the training split "
                f"has only {have} labelled samples for it; ask for at most {have} (or leave the "
                "task out of a per-task n_labelled to keep all its labels)."
            )
    if cfg.label_policy == "disjoint" and sum(k or 0 for k in counts.values()) > len(split):
        raise UserError(
            f"data.label_policy=disjoint labels each sample for at most one task, so "
            f"data.n_labelled must add up to at most the {len(split)} training samples."
        )
    return counts


def _validation_counts(dataset, cfg, train_counts) -> dict[str, int | None]:
    """The training split's share of each task's labels, applied to the validation split
    (at least one label for a task that keeps any)."""
    counts: dict[str, int | None] = {}
    for task, k in train_counts.items():
        if k is None:
            counts[task] = None
            continue
        train_pool, val_pool = (len(dataset.train), len(dataset.val))
        if _by_count(cfg):
            train_pool = int(dataset.train.masks[task].sum())
            val_pool = int(dataset.val.masks[task].sum())
        share = k / max(train_pool, 1)
        counts[task] = max(1, round(share * val_pool)) if k > 0 else 0
    return counts


def _narrow(split: Split, counts, cfg, tasks: dict[str, TaskSpec], role: str) -> None:
    """Narrow ``split.masks`` in place to the labels the policy keeps."""
    counts = {t: k for t, k in counts.items() if k is not None}
    n = len(split)
    pools = {t: split.masks[t] if _by_count(cfg) else torch.ones(n, dtype=torch.bool)
             for t in counts}
    if cfg.label_policy != "disjoint" and all(
        counts[t] >= int(pools[t].sum()) for t in counts
    ):
        return  # every label stays
    scores = classes = None
    if cfg.label_policy == "mnar":
        scores = {t: label_scores(tasks[t], split.targets[t]) for t in counts}
    if cfg.label_balance == "per_class":
        classes = {t: split.targets[t] for t in counts if tasks[t].discrete}  # classes to balance over
    keep = select_labels(pools, counts, cfg.label_policy, _generator(cfg.seed, role), scores,
                         cfg.mnar_strength, classes)
    for task, mask in keep.items():
        split.masks[task] = split.masks[task] & mask


def _check_disjoint_shares(fractions: dict[str, float], policy: str) -> None:
    total = sum(fractions.values())
    if policy == "disjoint" and total > 1.0 + 1e-9:
        raise UserError(
            f"data.label_policy=disjoint labels each sample for at most one task, so the "
            f"label fractions must add up to at most 1 (they add up to {total:.3g})."
        )


def _generator(seed: int, split: str) -> torch.Generator:
    return torch.Generator().manual_seed(10_007 * seed + SEED_OFFSET[split])


def _mask_of(n: int, index: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[index] = True
    return mask
