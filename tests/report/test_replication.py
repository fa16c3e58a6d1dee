"""docs/hooks/replication.py: the agreement of two runs of a study, generated."""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from stored_study import SPEC, fake_metrics, write_study

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
    code = replication.main([str(a), str(a), "--out", str(out), "--pairs", "5"])
    assert code == 0 and "**holds**" in out.read_text()


def test_three_seed_sets_compare_every_pair_and_list_each_hypothesis(tmp_path):
    a = write_study(tmp_path / "a", SPEC)
    b = write_study(tmp_path / "b", copy.deepcopy(SPEC) | {"seeds": [3, 4, 5]}, fake_metrics)
    c = write_study(tmp_path / "c", SPEC)  # a again: the same spec and seeds
    text = replication.every_pair({p.name: replication.load_run(p, None) for p in (a, b, c)})
    rows = [line for line in text.splitlines() if line.startswith("| a – ") or
            line.startswith("| b – ")]
    assert [r.split(" | ")[0] for r in rows] == ["| a – b", "| a – c", "| b – c"]
    assert rows[1].endswith("| holds |")  # a run agrees with its twin
    holds = sum(r.endswith("| holds |") for r in rows)
    assert f"The rule holds for {holds} of 3 pairs." in text
    # each pooled hypothesis once, with its verdict in every run and how many claim it
    pooled = replication.compare(a, b)["a"].pooled
    table = [line for line in text.splitlines() if line.endswith(" of 3 |")]
    assert len(table) == len(pooled)
    for line, r in zip(table, pooled.itertuples(), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == r.hypothesis and cells[2].startswith(r.verdict)
        assert cells[2] == cells[4]  # a and its twin
    out = tmp_path / "sets.md"
    assert replication.main(["--sets", str(a), str(b), str(c), "--out", str(out)]) == 0
    assert out.read_text() == text


def test_a_difference_marked_in_one_run_is_not_its_claim(tmp_path):
    """A run behind a pooled difference did not converge in set b (its MT-VAE's task terms
    stopped it): b lists the difference apart, so a's claim is not made again there, b claims
    nothing there, and the simulation never claims that hypothesis."""
    a = write_study(tmp_path / "a", SPEC)
    stopped = lambda run, m: m | {"train/converged": not (run.model == "mtvae" and run.seed == 0)}  # noqa: E731
    b = write_study(tmp_path / "b", SPEC, adjust=stopped)
    result = replication.compare(a, b)
    claimed_a = result["a"].pooled[result["a"].pooled["verdict"].isin(["better", "worse"])]
    marked = result["b"].pooled[result["b"].pooled["not_converged"] > 0]
    assert len(claimed_a) and set(marked["hypothesis"]) <= set(result["b"].pooled["hypothesis"])
    lost = set(claimed_a["hypothesis"]) & set(marked["hypothesis"])
    assert lost  # the MT-VAE is in every hypothesis of this study that a claims
    ab, ba = result["pooled_ab"], result["pooled_ba"]
    assert (ab.claims, ab.same_sign, ab.confirmed) == (len(claimed_a), len(claimed_a),
                                                       len(claimed_a) - len(lost))
    assert ba.claims == len(claimed_a) - len(lost)
    text = replication.every_pair({"a": result["a"], "b": result["b"], "c": result["a"]})
    row = next(line for line in text.splitlines() if line.startswith(f"| {sorted(lost)[0]} |"))
    assert " ‡ (" in row.split(" | ")[3] and " ‡ (" not in row.split(" | ")[2]
    power = replication.power_markdown(result, "a", "b", pairs=5)
    assert "Never claimed: " in power and sorted(lost)[0] in power


def _hypotheses(diffs, sd=1.0, test="superiority", margin=0.0):
    """Synthetic pooled effects (the frame :func:`replication.effects` gives)."""
    return pd.DataFrame({"hypothesis": [f"h{i}" for i in range(len(diffs))], "dataset": "d",
                         "diff": diffs, "sd": sd, "n_seeds": 10, "test": test,
                         "margin": margin, "sesoi": 0.0})


def test_one_hypothesis_is_claimed_again_as_often_as_the_t_tests_power():
    # One hypothesis (Holm is the plain test): a set claims "better" with probability
    # p+ = P(T > c) and "worse" with p- = P(T < -c), T noncentral t (df n - 1, δ = √n).
    pairs = 1500
    rows = replication.simulate(_hypotheses([1.0]), 0.05, (3, 4, 5), pairs=pairs)

    def near(value, share, trials):  # within 4 Monte Carlo standard errors
        return abs(value - share) < 4 * math.sqrt(share * (1 - share) / trials)

    for row in rows:
        df, nc = row.n - 1, np.sqrt(row.n)
        crit = stats.t.ppf(0.975, df)
        up, down = stats.nct.sf(crit, df, nc), stats.nct.cdf(-crit, df, nc)
        assert near(row.claims, up + down, 2 * pairs)
        assert near(row.reclaimed, (up**2 + down**2) / (up + down), 2 * pairs * (up + down))
        # the rule holds when both claim the same or neither claims anything
        assert near(row.holds, up**2 + down**2 + (1 - up - down) ** 2, pairs)
    assert rows[0].reclaimed < rows[1].reclaimed < rows[2].reclaimed  # power grows with n


def test_a_huge_effect_always_replicates_and_no_effect_is_claimed_at_holms_rate():
    huge = replication.simulate(_hypotheses([100.0] * 8 + [-100.0]), 0.05, (3,), pairs=30)
    assert (huge[0].claims, huge[0].reclaimed, huge[0].holds) == (9, 1.0, 1.0)
    null = replication.simulate(_hypotheses([0.0] * 9), 0.05, (3,), pairs=1000)[0]
    family = 1 - (1 - 0.05 / 9) ** 9  # Holm's first step: P(some claim) under the null
    assert null.claims == pytest.approx(family, abs=0.02)
    assert null.reclaimed < 0.05  # a false claim is rarely made again
    assert null.holds == pytest.approx((1 - family) ** 2, abs=0.03)
    # a hypothesis marked ‡ in the runs is tested (Holm's family keeps 9) but never claimed
    apart = frozenset({("h8", "d")})
    some = replication.simulate(_hypotheses([100.0] * 8 + [-100.0]), 0.05, (3,), pairs=30,
                                apart=apart)[0]
    assert (some.claims, some.reclaimed, some.holds) == (8, 1.0, 1.0)
    null_apart = replication.simulate(_hypotheses([0.0] * 9), 0.05, (3,), pairs=1000,
                                      apart=apart)[0]
    assert null_apart.claims < null.claims  # the same tests at Holm's levels over nine
    constant = replication.simulate(_hypotheses([1.0], sd=0.0), 0.05, (3,), pairs=5)[0]
    assert constant.claims == 0 and math.isnan(constant.reclaimed) and constant.holds == 1.0


def test_a_set_gets_the_verdicts_its_study_gives(tmp_path):
    study = replication.load_run(write_study(tmp_path / "a", SPEC), None)
    pooled = study.pooled
    hypotheses = replication.effects(study, study)
    def seed_means(h) -> np.ndarray:  # each seed's mean paired difference over the points
        rows = study.table[(study.table["hypothesis"] == h.hypothesis)
                           & (study.table["dataset"] == h.dataset)]
        return pd.DataFrame(list(rows["seed_diffs"])).mean(axis=0).sort_index().to_numpy()

    means = np.array([seed_means(h) for h in hypotheses.itertuples()])
    got = replication.set_verdicts(means, list(hypotheses.itertuples()), study.alpha)
    assert {k: v[0] for k, v in got.items()} == {
        (r.hypothesis, r.dataset): r.verdict for r in pooled.itertuples()}
    assert set(pooled["verdict"]) & {"better", "worse"}  # the synthetic study claims something
    assert np.allclose(hypotheses["diff"], pooled["diff"]) and np.allclose(
        hypotheses["sd"], pooled["sd"])  # a run with itself: its own pooled effects


def test_both_runs_seeds_are_pooled_and_the_table_is_written(tmp_path):
    a = write_study(tmp_path / "a", SPEC)
    b = write_study(tmp_path / "b", copy.deepcopy(SPEC) | {"seeds": [3, 4, 5]}, fake_metrics)
    result = replication.compare(a, b)
    both = replication.effects(result["a"], result["b"])
    assert set(both["n_seeds"]) == {6}
    # three seeds each: the pooled effect is the mean of the two runs' pooled effects
    assert np.allclose(both["diff"], (result["a"].pooled["diff"] + result["b"].pooled["diff"]) / 2)
    out = tmp_path / "snippets" / "replication.md"
    replication.main([str(a), str(b), "--out", str(out), "--pairs", "20"])
    text = (tmp_path / "snippets" / "replication-power.md").read_text()
    assert text.startswith("<!-- generated by `python docs/hooks/replication.py a b`")
    assert f"{len(both)} pooled hypotheses" in text and "20 pairs of disjoint seed sets" in text
    assert "the 6 seeds" in text and "seeds 3, 4, 5" in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    counts = [f"| {n}" for n in replication.SEED_COUNTS]
    assert [line.split(" | ")[0] for line in table[2:]] == counts


def test_a_third_run_pools_its_seeds_into_the_simulation(tmp_path):
    a = write_study(tmp_path / "a", SPEC)
    b = write_study(tmp_path / "b", copy.deepcopy(SPEC) | {"seeds": [3, 4, 5]}, fake_metrics)
    c = write_study(tmp_path / "c", copy.deepcopy(SPEC) | {"seeds": [6, 7, 8]}, fake_metrics)
    runs = [replication.load_run(p, None) for p in (a, b, c)]
    every = replication.effects(*runs)
    assert set(every["n_seeds"]) == {9}
    # three seeds each: the pooled effect is the mean of the three runs' pooled effects
    assert np.allclose(every["diff"], sum(r.pooled["diff"] for r in runs) / 3)
    out = tmp_path / "snippets" / "replication.md"
    replication.main([str(a), str(b), str(c), "--out", str(out), "--pairs", "20"])
    power = (tmp_path / "snippets" / "replication-power.md").read_text()
    assert power.startswith("<!-- generated by `python docs/hooks/replication.py a b c`")
    assert "the 9 seeds" in power and "c (seeds 6, 7, 8) together" in power
    assert "| claims of a in b |" in out.read_text()  # the agreement is still of a and b
