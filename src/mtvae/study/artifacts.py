"""Small per-run outputs a study stores in its database so the report needs nothing else.

Nothing here computes: the artifacts are collected from the files a run's evaluation wrote.
Every run keeps its training curve (the ``epoch`` records of ``log.jsonl``). The runs that
represent a variant in the report's figures (first seed) are evaluated with the figure
families too (``FIGURE_FAMILIES``), and keep the PNGs of their ``figures/``:
reconstructions, samples, latent traversals and the model's own figures (interventions,
conditional samples), except those in ``SKIPPED_FIGURES``. Their leakage matrix is stored as
``leakage/*`` metrics, which the report draws.
"""

from __future__ import annotations

import json
from pathlib import Path

Artifacts = dict[str, tuple[str, bytes]]  # name -> (kind, data)

MAX_FIGURE_BYTES = 2_000_000  # a run's own figure larger than this is not copied
# Families a figures run also evaluates for the report, when the spec lacks them: the leakage
# matrix (skipped for a model with a single latent block) and the grids of `figures` (samples,
# latent traversals; no metric keys). Each names the figures it draws that the study does not
# store, which a family added for the report then does not draw: the report draws leakage
# (from the leakage/* metrics) and training curves (from the stored curves) itself, and has no
# section for the 2-D embedding.
FIGURE_FAMILIES: dict[str, tuple[str, ...]] = {
    "leakage": ("leakage",), "figures": ("training_curves", "embedding"),
}
# Not stored, even when the spec's own families drew them into the run directory.
SKIPPED_FIGURES = tuple(figure for figures in FIGURE_FAMILIES.values() for figure in figures)


def run_artifacts(run_dir: str | Path, figures: bool) -> Artifacts:
    """The curve of ``run_dir`` and, when ``figures``, the PNGs of its ``figures/`` (see
    ``SKIPPED_FIGURES``), as ``figure:<name>``."""
    run_dir = Path(run_dir)
    out: Artifacts = {"curve": ("json", json.dumps(epoch_curve(run_dir)).encode())}
    if not figures:
        return out
    for path in sorted((run_dir / "figures").glob("*.png")):
        if path.stem not in SKIPPED_FIGURES and path.stat().st_size <= MAX_FIGURE_BYTES:
            out[f"figure:{path.stem}"] = ("png", path.read_bytes())
    return out


def epoch_curve(run_dir: Path) -> list[dict[str, float]]:
    """Per-epoch ``epoch``, ``train/loss`` and ``val/loss`` records of a run."""
    path = run_dir / "log.jsonl"
    if not path.is_file():
        return []
    keep = ("epoch", "train/loss", "val/loss")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [{k: r[k] for k in keep if k in r} for r in rows if r.get("kind") == "epoch"]
