"""Which runs behind an estimate did not converge: one reading of the convergence record.

Every run records whether its training converged by the rule of
:mod:`mtvae.train.convergence`: the ``converged`` column of ``results.db`` (0/1, NULL before
mtvae recorded it), or ``train/converged`` in its metrics (``results.json``). The analyses and
the report read it through :func:`run_converged` only, so a cell, a pooled estimate and the
report's convergence line agree on which runs did not converge.

A comparison on an outcome the generative objective trains for (reconstruction, generation:
:data:`~mtvae.evaluate.catalogue.GENERATIVE_FAMILIES`) also needs that objective converged
(``train/generative_converged``): a model with task heads is stopped, and its weights chosen,
by its whole loss, and its task terms can end training while its reconstruction still
improves. Its reconstruction then describes where its tasks stopped it, not what it reaches.
"""

from __future__ import annotations

from typing import Any

from mtvae.evaluate.catalogue import GENERATIVE_FAMILIES

CellKey = tuple[str, str, str]  # (dataset, condition point, variant)


def run_converged(run: dict[str, Any], family: str | None = None) -> bool | None:
    """Whether a run's training converged (None: not recorded, e.g. an older study); for an
    outcome ``family`` of :data:`GENERATIVE_FAMILIES`, its generative objective too (where
    recorded: a model without task terms has it equal to the whole loss)."""
    value = run.get("converged")
    if value is None:
        value = (run.get("metrics") or {}).get("train/converged")
    if value is None:
        return None
    generative = generative_converged(run)
    if family in GENERATIVE_FAMILIES and generative is not None:
        return bool(value) and generative
    return bool(value)


def generative_converged(run: dict[str, Any]) -> bool | None:
    """Whether the run's generative objective converged (``train/generative_converged``;
    None: not recorded or no generative objective)."""
    value = (run.get("metrics") or {}).get("train/generative_converged")
    return None if value is None else bool(value)


def generative_gap(run: dict[str, Any]) -> float | None:
    """How much higher the run's generative objective is at its kept epoch than at its own
    best (``train/generative_gap``; None: not recorded or no generative objective)."""
    value = (run.get("metrics") or {}).get("train/generative_gap")
    return None if value is None else float(value)


def runs_by_cell(cells: list[dict], run_by_id: dict[str, dict]) -> dict[CellKey, list[dict]]:
    """``{(dataset, point, variant): its finished runs}`` (one per seed)."""
    out: dict[CellKey, list[dict]] = {}
    for cell in cells:
        run = run_by_id.get(cell["run_id"])
        if run is not None and run.get("status", "done") == "done":
            out.setdefault((cell["dataset"], cell["point"], cell["variant"]), []).append(run)
    return out


def behind(by_cell: dict[CellKey, list[dict]], sides: list[CellKey],
           family: str | None = None) -> tuple[list[str], list[str]]:
    """``(run ids, run ids that did not converge)`` of the runs behind a comparison of the
    ``sides`` on an outcome ``family`` (cells sharing a run count it once)."""
    runs = {r["run_id"]: r for side in sides for r in by_cell.get(side, [])}
    return sorted(runs), sorted(i for i, r in runs.items() if run_converged(r, family) is False)
