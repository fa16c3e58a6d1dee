"""Convergence: one rule, the same for every model, for when training has converged.

The rule reads the *validation objective*: the model's own loss on the validation split at
full beta, computed after every epoch (``val/loss`` in ``log.jsonl``), with the validation
labels the label policy leaves (``data.val_labels``).

* An epoch **improves** when it lowers the best validation objective by more than
  ``train.min_improvement`` (relative) below the best value at the last improving epoch.
  Smaller gains still update the best weights, but do not count as progress.
* A run has **converged** when its last ``k`` epochs did not improve, where ``k`` is the
  early-stopping patience ``train.early_stopping`` (with early stopping off, the default
  patience, :data:`DEFAULT_PATIENCE`).

Early stopping fires exactly when the rule is met, so a run that stopped early has
converged, and one that used up ``train.epochs`` (the maximum) without meeting it has not.
Every run records the outcome in ``results.json`` (``train/converged``,
``train/epochs_trained``, ``train/best_epoch``) and a study stores it in ``results.db``.

The trainer applies the same rule to the **generative objective** alone (the loss less its
task terms, ``Output.generative_loss``; ``val/generative`` in ``log.jsonl``) and records
``train/generative_converged`` and ``train/generative_gap`` (that objective at the kept epoch
minus its best of the run): the whole objective still decides the stop and the kept weights,
and these say whether its task terms ended training while its reconstruction still improved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_PATIENCE = 10  # train.early_stopping's default; the window when early stopping is off
DEFAULT_MIN_IMPROVEMENT = 1e-3  # train.min_improvement's default (relative)


def improves(value: float, anchor: float, min_improvement: float) -> bool:
    """Whether ``value`` lowers ``anchor`` (the best at the last improving epoch) by more than
    ``min_improvement`` of its size; every finite value improves on no value yet (inf)."""
    if not math.isfinite(value):
        return False
    if not math.isfinite(anchor):
        return True
    return value < anchor - min_improvement * abs(anchor)


def window(patience: int | None) -> int:
    """How many epochs without improvement make a run converged (the patience, or the
    default patience when early stopping is off)."""
    return patience if patience is not None else DEFAULT_PATIENCE


@dataclass(frozen=True)
class Convergence:
    """What the rule says about one validation curve."""

    epochs_trained: int
    best_epoch: int  # 1-based; 0 when no epoch had a finite validation objective
    converged: bool
    stale_epochs: int  # epochs since the last improving one


def assess(val_losses: Sequence[float], patience: int | None,
           min_improvement: float = DEFAULT_MIN_IMPROVEMENT) -> Convergence:
    """Apply the rule to a whole validation curve (one value per epoch, in order).

    The trainer applies it epoch by epoch (and must agree with this); this form serves runs
    and reports that only have the logged curve.
    """
    best, best_epoch, anchor, stale = math.inf, 0, math.inf, 0
    for epoch, value in enumerate(val_losses, start=1):
        if math.isfinite(value) and value < best:
            best, best_epoch = value, epoch
        if improves(best, anchor, min_improvement):
            anchor, stale = best, 0
        else:
            stale += 1
    return Convergence(len(val_losses), best_epoch, stale >= window(patience), stale)
