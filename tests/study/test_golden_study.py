"""Golden study: a fixed tiny study gives the same run ids and results.db metrics as the
committed ``golden_study.json``, so refactors are checked to change no number.

Regenerate the file only for an intended change of behaviour:
``MTVAE_WRITE_GOLDEN=1 python -m pytest tests/study/test_golden_study.py``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path

from mtvae.study.spec import parse_spec
from mtvae.study.study import run_study

GOLDEN = Path(__file__).with_name("golden_study.json")
REL_TOL = 1e-6
ABS_TOL = 1e-9

SPEC = {
    "name": "golden",
    "datasets": {"digits": {"tasks": ["digit", "parity"]}},
    "base": {"data": {"n_train": 192, "n_val": 32, "n_test": 64, "image_size": 16},
             "model": {"latent_dim": 4, "encoder": {"arch": "mlp", "hidden": [32]}},
             "train": {"epochs": 2, "batch_size": 32, "progress": False},
             "eval": {"iwae_k": 4, "iwae_n": 16, "n_grid": 8, "probe_budgets": ["all"],
                      "gen_samples": 32, "kid_subsets": 2}},
    "variants": {
        "vae": {"model": "vae"},
        "mtvae": {"model": "mtvae", "set": {"model.task_dim": 2},
                  "baselines": {"reconstruction": "vae", "representation": "vae"}},
        "supervised": {"model": "supervised"},
        "vqvae": {"model": "vqvae",
                  "set": {"model.n_latents": 2,
                          "model.quantizer": {"num_codes": 8, "code_dim": 2, "ema": True},
                          "model.prior": {"epochs": 1, "hidden": 8, "layers": 2}}},
    },
    "conditions": {"label_fraction": [0.5, 1.0]},
    "seeds": [0],
    "metrics": ["recon", "nll", "task", "probe", "leakage", "vq"],
}


def _stable(key: str) -> bool:
    """Metrics that depend on the clock are left out."""
    return not key.startswith("time/") and not key.endswith("_s")


def study_results(out: Path) -> dict:
    """``{run_id: {variant, status, metrics}}`` of a finished study's results.db."""
    with sqlite3.connect(out / "results.db") as db:
        rows = db.execute("SELECT run_id, variant, status, metrics FROM runs").fetchall()
    return {rid: {"variant": variant, "status": status,
                  "metrics": {k: v for k, v in sorted(json.loads(metrics or "{}").items())
                              if _stable(k)}}
            for rid, variant, status, metrics in sorted(rows)}


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def test_tiny_study_matches_the_golden_results(tmp_path):
    out = run_study(parse_spec(SPEC), tmp_path / "study", workers=1, threads=1,
                    log=lambda _: None)
    got = study_results(out)
    if os.environ.get("MTVAE_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(golden), "run ids changed"
    for rid, want in golden.items():
        have = got[rid]
        assert (have["variant"], have["status"]) == (want["variant"], "done"), rid
        assert sorted(have["metrics"]) == sorted(want["metrics"]), f"metric keys of {rid}"
        differ = {k: (have["metrics"][k], v) for k, v in want["metrics"].items()
                  if not _close(have["metrics"][k], v)}
        assert not differ, f"{want['variant']} ({rid}): {differ}"
