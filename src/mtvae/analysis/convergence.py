"""Which runs behind an estimate did not converge: one reading of the convergence record.

Every run records whether its training converged by the rule of
:mod:`mtvae.train.convergence`: the ``converged`` column of ``results.db`` (0/1, NULL before
mtvae recorded it), or ``train/converged`` in its metrics (``results.json``). The analyses and
the report read it through :func:`run_converged` only, so a cell, a pooled estimate and the
report's convergence line agree on which runs did not converge.
"""

from __future__ import annotations

from typing import Any

CellKey = tuple[str, str, str]  # (dataset, condition point, variant)


def run_converged(run: dict[str, Any]) -> bool | None:
    """Whether a run's training converged (None: not recorded, e.g. an older study)."""
    value = run.get("converged")
    if value is None:
        value = (run.get("metrics") or {}).get("train/converged")
    return None if value is None else bool(value)


def runs_by_cell(cells: list[dict], run_by_id: dict[str, dict]) -> dict[CellKey, list[dict]]:
    """``{(dataset, point, variant): its finished runs}`` (one per seed)."""
    out: dict[CellKey, list[dict]] = {}
    for cell in cells:
        run = run_by_id.get(cell["run_id"])
        if run is not None and run.get("status", "done") == "done":
            out.setdefault((cell["dataset"], cell["point"], cell["variant"]), []).append(run)
    return out


def behind(by_cell: dict[CellKey, list[dict]], sides: list[CellKey]) -> tuple[list[str], list[str]]:
    """``(run ids, run ids that did not converge)`` of the runs behind a comparison of the
    ``sides`` (cells sharing a run count it once)."""
    runs = {r["run_id"]: r for side in sides for r in by_cell.get(side, [])}
    return sorted(runs), sorted(i for i, r in runs.items() if run_converged(r) is False)
