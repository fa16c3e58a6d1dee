"""Schedules are pure functions of the training step."""

from __future__ import annotations


def linear_warmup(step: int | None, warmup_steps: int) -> float:
    """Factor rising linearly from 0 at step 0 to 1 at ``warmup_steps`` (1 when step is None).

    ``step=None`` means "not training" (evaluation), where the full weight applies.
    """
    if step is None or warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)
