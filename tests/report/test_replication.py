"""docs/hooks/replication.py: the agreement of two runs of a study, generated."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

from conftest import SPEC, fake_metrics, write_study

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("replication", ROOT / "docs/hooks/replication.py")
replication = importlib.util.module_from_spec(_spec)
sys.modules["replication"] = replication  # dataclasses look their module up there
_spec.loader.exec_module(replication)


def test_a_study_agrees_with_itself_and_other_seeds_are_counted(tmp_path):
    a = write_study(tmp_path / "a", SPEC)
    b = write_study(tmp_path / "b", copy.deepcopy(SPEC) | {"seeds": [3, 4, 5]}, fake_metrics)
    same = replication.compare(a, a)
    assert same["holds"] and same["pooled_ab"].confirmed == same["pooled_ab"].claims
    assert same["cells_ab"].claims > 0  # the synthetic study makes per-point claims
    other = replication.compare(a, b)
    results_a, results_b = other["a"], other["b"]
    claims = results_a.table[results_a.table["verdict"].isin(["better", "worse"])]
    confirmed = sum(
        (results_b.table.set_index(["hypothesis", "point"]).loc[(r.hypothesis, r.point),
                                                                 "verdict"] == r.verdict)
        for r in claims.itertuples())
    assert (other["cells_ab"].claims, other["cells_ab"].confirmed) == (len(claims), confirmed)
    text = replication.markdown(other, "a", "b")
    assert "| pooled estimates (the first screen) |" in text and "Crossovers named:" in text
    out = tmp_path / "snippet.md"
    code = replication.main([str(a), str(a), "--out", str(out)])
    assert code == 0 and "**holds**" in out.read_text()
