"""Do two runs of the same study with disjoint seeds make the same claims?

Reads two finished study directories (the same spec, other seeds; e.g. the quick preset with
seeds 0-2 and with seeds 3-5), computes both first screens with :func:`mtvae.load_study`, and
measures their agreement, the rule of issue #31:

* every *better* / *worse* claim of the pooled estimates (one per hypothesis and dataset) of
  one set has the same sign of Δ in the other, and at least 80% of them are claims there too
  (a claim is the Answer's: a difference between models that converged,
  :func:`~mtvae.analysis.inference.is_claim`; one marked ‡ is listed apart, and not claimed,
  in either set);
* every crossover one names, the other names at the same pair of levels (or neither names any).

The same counts for the per-point cells (each hypothesis at each condition point) are given
for comparison: the detail under the headline, not what the first screen claims.

How often the pooled claims would replicate with 3, 5 and 8 seeds per run is simulated from
the runs together (:func:`simulate`): each hypothesis' pooled effect and the spread of its
seed means over every seed of the runs given (two or more), pairs of disjoint seed sets drawn
from normals with those, each set tested as the first screen tests a study (the pooled t-test, Holm across the
study's hypotheses, the verdict from the interval at Holm's level) and the two sets' claims
compared by the rule above. A claim is made again about as often as the test's power at the
true effect; this estimates it at the effects the runs measured.

    python docs/hooks/replication.py RUN_A RUN_B [RUN_C ...] [--preset quick] [--out FILE]
        [--power-out FILE] [--pairs N]
    python docs/hooks/replication.py --sets RUN_A RUN_B RUN_C ... [--preset quick] [--out FILE]

With ``--sets`` (three or more runs with disjoint seeds): every pair's agreement and each
hypothesis' verdict in every run (:func:`every_pair`), so a reader sees which claims come and
go between seed sets, not one pair's verdict only.

``--preset NAME`` answers the preset's hypotheses as they are now (the studies keep their runs;
a hypothesis added to the preset since they ran is computed from the same stored results).

Writes a Markdown paragraph and table (to ``--out``, else stdout) and the simulated table (to
``--power-out``, else next to ``--out`` as ``NAME-power.md``, else stdout); exits 1 when the
rule does not hold for the two runs, so a script can check it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from mtvae.analysis.inference import CLAIMS, pooled_interval, verdict
from mtvae.analysis.stats import holm_levels, pooled_test

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Agreement:
    """Claims of set A checked in set B: how many, with the same sign, claimed there too."""

    claims: int
    same_sign: int
    confirmed: int

    @property
    def share(self) -> float:
        return self.confirmed / self.claims if self.claims else 1.0

    def text(self) -> str:
        if not self.claims:
            return "no claim"
        return (f"{self.claims} claim(s): {self.same_sign} same sign, {self.confirmed} "
                f"claimed ({self.share:.0%})")


Record = tuple[str, float, bool]  # (verdict, Δ, whether the Answer claims it)


def records(frame: pd.DataFrame, keys: list[str]) -> dict[tuple, Record]:
    """``{key: (verdict, Δ, claimed)}`` of every row (its ``claim`` column: a difference
    between models that converged, :func:`~mtvae.analysis.inference.is_claim`)."""
    claimed = frame["claim"] if "claim" in frame else frame["verdict"].isin(CLAIMS)
    return {tuple(r[k] for k in keys): (r["verdict"], r["diff"], bool(claimed[i]))
            for i, r in frame.iterrows()}


def agreement(mine: dict[tuple, Record], other: dict[tuple, Record]) -> Agreement:
    """The claims of ``mine`` looked up in ``other`` (both ``{key: (verdict, Δ, claimed)}``):
    the same sign of Δ there, the same claim."""
    claimed = {key: word for key, (word, _, claim) in mine.items() if claim}
    same = confirmed = 0
    for key, word in claimed.items():
        if key not in other:
            continue
        verdict, diff, claim = other[key]
        same += (diff > 0) == (word == "better") and diff != 0
        confirmed += claim and verdict == word
    return Agreement(len(claimed), same, confirmed)


def agree(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> Agreement:
    """A's claims in B: same sign of Δ, same claim."""
    return agreement(records(a, keys), records(b, keys))


def claims_agree(ab: Agreement, ba: Agreement) -> bool:
    """The rule for the claims of two runs: every claim of one has the same sign in the
    other, and at least 80% of them are claims there too (both ways)."""
    return all(p.same_sign == p.claims and p.share >= 0.8 for p in (ab, ba))


def crossovers(results) -> set[tuple]:
    frame = results.crossovers
    if frame.empty:
        return set()
    return {(r["hypothesis"], r["dataset"], r["axis"], str(r["low"]), str(r["high"]))
            for _, r in frame.iterrows()}


def load_run(path: Path, preset: str | None):
    """The study's results, with the preset's current hypotheses when one is named."""
    from mtvae import load_study

    results = load_study(path)
    if preset is None:
        return results
    from mtvae.analysis.results import StudyResults
    from mtvae.study.spec import load_preset

    spec = dict(results.spec, hypotheses=load_preset(preset).model_dump(mode="json")[
        "hypotheses"])
    return StudyResults(spec, results.runs, results.cells, results.sessions)


def compare(path_a: Path, path_b: Path, preset: str | None = None) -> dict:
    """Every agreement count between the two studies."""
    return compare_results(load_run(path_a, preset), load_run(path_b, preset))


def compare_results(a, b) -> dict:
    """Every agreement count between two loaded studies."""
    pooled_keys = ["hypothesis", "dataset"]
    cell_keys = ["hypothesis", "dataset", "point"]
    cross_a, cross_b = crossovers(a), crossovers(b)
    out = {
        "a": a, "b": b,
        "pooled_ab": agree(a.pooled, b.pooled, pooled_keys),
        "pooled_ba": agree(b.pooled, a.pooled, pooled_keys),
        "cells_ab": agree(a.table, b.table, cell_keys),
        "cells_ba": agree(b.table, a.table, cell_keys),
        "cross_a": cross_a, "cross_b": cross_b,
    }
    out["holds"] = claims_agree(out["pooled_ab"], out["pooled_ba"]) and cross_a == cross_b
    return out


def _seeds(results) -> str:
    return ", ".join(map(str, results.spec["seeds"]))


def markdown(result: dict, name_a: str, name_b: str, preset: str | None = None) -> str:
    """The agreement as a generated paragraph and table."""
    a, b = result["a"], result["b"]
    which = f" --preset {preset}" if preset else ""
    rows = [
        ("pooled estimates (the first screen)", result["pooled_ab"], result["pooled_ba"]),
        ("per-point cells (the detail)", result["cells_ab"], result["cells_ba"]),
    ]
    lines = [
        f"<!-- generated by `python docs/hooks/replication.py {name_a} {name_b}{which}`; "
        "do not edit -->",
        "",
        f"The same study run twice with disjoint seeds ({name_a}: seeds {_seeds(a)}; "
        f"{name_b}: seeds {_seeds(b)}), {len(a.pooled)} pooled hypotheses "
        f"({', '.join(dict.fromkeys(a.pooled.get('hypothesis', [])))}). Each claim (better or "
        "worse, between models that converged: a difference marked ‡ is listed apart in the "
        "Answer, not claimed) of one run is looked up in the other: the same sign of Δ there, "
        "and the same claim.",
        "",
        f"| level | claims of {name_a} in {name_b} | claims of {name_b} in {name_a} |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {label} | {ab.text()} | {ba.text()} |" for label, ab, ba in rows]
    ca, cb = result["cross_a"], result["cross_b"]
    lines += ["", f"Crossovers named: {len(ca)} by {name_a}, {len(cb)} by {name_b}, "
              f"{len(ca & cb)} by both. The replication rule (every pooled claim the same "
              "sign in the other run, at least 80% claimed there too, the same crossovers) "
              + ("**holds**." if result["holds"] else "**does not hold**."), ""]
    return "\n".join(lines)


# --- three or more seed sets: every pair, and each hypothesis across the sets ---------------

def every_pair(runs: dict[str, object], preset: str | None = None) -> str:
    """For three or more loaded runs of a study with disjoint seeds (``{name: results}``):
    each pair's agreement (both ways) and whether the rule holds, then each pooled
    hypothesis' verdict and Δ in every run. ``preset``: the one their hypotheses came from."""
    names = list(runs)
    which = f" --preset {preset}" if preset else ""
    lines = [f"<!-- generated by `python docs/hooks/replication.py --sets "
             f"{' '.join(names)}{which}`; do not edit -->", "",
             f"The same study run {len(runs)} times with disjoint seeds ("
             + "; ".join(f"{n}: seeds {_seeds(r)}" for n, r in runs.items())
             + "), each pair compared as above.", "",
             "| pair | claims of the first in the second | claims of the second in the first "
             "| crossovers (first, second, both) | rule |", "| --- | --- | --- | --- | --- |"]
    held = 0
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            r = compare_results(runs[first], runs[second])
            held += r["holds"]
            ca, cb = r["cross_a"], r["cross_b"]
            lines.append(f"| {first} – {second} | {r['pooled_ab'].text()} | "
                         f"{r['pooled_ba'].text()} | {len(ca)}, {len(cb)}, {len(ca & cb)} | "
                         + ("holds" if r["holds"] else "does not hold") + " |")
    pairs = len(names) * (len(names) - 1) // 2
    lines += ["", f"The rule holds for {held} of {pairs} pairs. Each pooled hypothesis in every "
              "run (verdict, Δ; ‡: a difference not claimed, as a model behind it did not "
              "converge):", "",
              "| hypothesis | dataset | " + " | ".join(names) + " | claimed by |",
              "| --- | --- | " + " | ".join("---" for _ in names) + " | --- |"]
    verdicts = {n: records(r.pooled, ["hypothesis", "dataset"]) for n, r in runs.items()}
    for key in verdicts[names[0]]:
        cells = [verdicts[n].get(key, ("—", float("nan"), False)) for n in names]
        claimed = sum(claim for _, _, claim in cells)
        lines.append(f"| {key[0]} | {key[1]} | "
                     + " | ".join(f"{word}{_apart(word, claim)} ({diff:+.3g})"
                                  for word, diff, claim in cells)
                     + f" | {claimed} of {len(names)} |")
    return "\n".join(lines + [""])


def _apart(word: str, claim: bool) -> str:
    """`` ‡`` after a difference the Answer lists apart instead of claiming."""
    return " ‡" if word in CLAIMS and not claim else ""


# --- how often claims replicate at n seeds, simulated from the runs' effects ------------------

PAIRS = 4000  # simulated pairs of seed sets per n: a share's Monte Carlo error is below 0.8 %
SEED_COUNTS = (3, 5, 8)


@dataclass
class Replicability:
    """Simulated pairs of disjoint sets of ``n`` seeds: the mean number of pooled claims per
    set, the share of one set's claims that the other set also claims (the same claim, so the
    same sign), and the share of pairs in which the replication rule holds."""

    n: int
    claims: float
    reclaimed: float
    holds: float


def effects(a, *others) -> pd.DataFrame:
    """Each pooled hypothesis of two or more runs of a study, from every seed of all: its
    effect (the mean over seeds of the seed's mean paired difference over the condition
    points) and the sd of those seed means (:func:`~mtvae.analysis.stats.pooled_test`), with
    its test, margin and smallest effect of interest. A seed in several runs is taken from the
    first of them."""
    theirs: dict[tuple, dict] = {}
    for other in reversed(others):  # the earlier run's seed wins
        for _, r in other.table.iterrows():
            key = (r["hypothesis"], r["dataset"], r["point"])
            theirs[key] = theirs.get(key, {}) | r["seed_diffs"]
    rows = []
    for (name, dataset), group in (a.table.groupby(["hypothesis", "dataset"], sort=False)
                                   if not a.table.empty else ()):
        diffs = pd.DataFrame({r["point"]: pd.Series(theirs.get((name, dataset, r["point"]), {})
                                                    | r["seed_diffs"])
                              for _, r in group.iterrows()})
        test = pooled_test(diffs)
        first = group.iloc[0]
        rows.append({"hypothesis": name, "dataset": dataset, "diff": test["diff"],
                     "sd": test["sd"], "n_seeds": test["n_seeds"], "test": first["test"],
                     "margin": float(first["margin"]), "sesoi": float(first["sesoi"])})
    return pd.DataFrame(rows, columns=["hypothesis", "dataset", "diff", "sd", "n_seeds", "test",
                                       "margin", "sesoi"])


def set_verdicts(seed_means: np.ndarray, hypotheses: list, alpha: float,
                 apart: frozenset = frozenset()) -> dict[tuple, Record]:
    """One set's pooled verdicts, as a study's first screen gives them: ``seed_means`` is
    hypotheses x seeds (``hypotheses``: rows of :func:`effects`, as named tuples); each row
    is pooled-tested (df = seeds − 1), Holm across the hypotheses at ``alpha``, the verdict
    read from the interval at Holm's level for it. A hypothesis in ``apart`` (``(hypothesis,
    dataset)``, marked ‡ in the real runs) is tested, so it counts in Holm's family, but is
    never a claim."""
    tests = [pooled_test(means[:, None]) for means in seed_means]  # one point: the mean
    levels = holm_levels(np.array([t["p"] for t in tests]), alpha)
    out = {}
    for h, test, level in zip(hypotheses, tests, levels, strict=True):
        low, high = pooled_interval(test["diff"], test["se"], test["df"], level, h.test)
        row = SimpleNamespace(constant=test["constant"], diff_low=low, diff_high=high,
                              margin=h.margin, test=h.test, sesoi=h.sesoi)
        word, key = verdict(row), (h.hypothesis, h.dataset)
        out[key] = (word, test["diff"], word in CLAIMS and key not in apart)
    return out


def simulate(hypotheses: pd.DataFrame, alpha: float, seed_counts=SEED_COUNTS,
             pairs: int = PAIRS, rng_seed: int = 0,
             apart: frozenset = frozenset()) -> list[Replicability]:
    """Pairs of disjoint seed sets of each size in ``seed_counts``: each seed's mean paired
    difference of each hypothesis drawn from a normal with the hypothesis' ``diff`` and
    ``sd`` (a fixed RNG), each set given its verdicts (:func:`set_verdicts`; the hypotheses
    in ``apart`` are tested but never claimed), and each pair's claims compared both ways as
    :func:`compare` compares two real runs' pooled estimates."""
    hypotheses = hypotheses[hypotheses["diff"].notna()].reset_index(drop=True)
    mean = hypotheses["diff"].to_numpy(dtype=float)[:, None]
    sd = np.nan_to_num(hypotheses["sd"].to_numpy(dtype=float))[:, None]
    rng = np.random.default_rng(rng_seed)
    rows = list(hypotheses.itertuples())
    out = []
    for n in seed_counts:
        claimed = confirmed = holds = 0
        for _ in range(pairs):
            one, two = (set_verdicts(mean + sd * rng.standard_normal((len(mean), n)),
                                     rows, alpha, apart) for _ in range(2))
            ab, ba = agreement(one, two), agreement(two, one)
            claimed += ab.claims + ba.claims
            confirmed += ab.confirmed + ba.confirmed
            holds += claims_agree(ab, ba)
        out.append(Replicability(n, claimed / (2 * pairs),
                                 confirmed / claimed if claimed else float("nan"),
                                 holds / pairs))
    return out


def power_markdown(result: dict, name_a: str, name_b: str, preset: str | None = None,
                   pairs: int = PAIRS, seed_counts=SEED_COUNTS,
                   more: tuple[tuple[str, object], ...] = ()) -> str:
    """How often the pooled claims would replicate at each of ``seed_counts`` seeds, simulated
    from the two runs together (and the ``more`` runs, ``(name, results)``, with other seeds
    still), as a generated paragraph and table."""
    a, b = result["a"], result["b"]
    runs = [(name_a, a), (name_b, b), *more]
    hypotheses = effects(*(r for _, r in runs))
    apart = frozenset(marked(r for _, r in runs))
    which = f" --preset {preset}" if preset else ""
    names = " ".join(n for n, _ in runs)
    lines = [
        f"<!-- generated by `python docs/hooks/replication.py {names}{which}`; "
        "do not edit -->",
        "",
    ]
    if hypotheses["diff"].notna().sum() == 0:
        return "\n".join(lines + [f"*{name_a} and {name_b} share no pooled hypothesis with an "
                                   "estimate: nothing to simulate.*" + _never_claimed(apart), ""])
    hypotheses = hypotheses[hypotheses["diff"].notna()]
    rows = simulate(hypotheses, a.alpha, seed_counts, pairs, apart=apart)
    seeds = int(hypotheses["n_seeds"].max())
    tested = int((hypotheses["sd"] > 0).sum())  # a constant difference is not tested
    sources = [f"{n} (seeds {_seeds(r)})" for n, r in runs]
    lines += [
        f"Simulated from {', '.join(sources[:-1])} and {sources[-1]} "
        f"together: each of the {len(hypotheses)} pooled hypotheses' effect (the mean over "
        f"the {seeds} seeds of each seed's mean paired difference over the condition points) "
        "and the sd of those seed means. Then "
        f"{pairs:,} pairs of disjoint seed sets per size (normal seed means, fixed RNG), each "
        f"set tested as a study's first screen is (pooled t-test with seeds − 1 degrees of "
        f"freedom, Holm across the {tested} tested hypotheses at α = {a.alpha:g}), and its "
        "claims (better or worse) looked up in the other set's. A pair in which neither set "
        "claims anything counts as agreeing; crossovers are not simulated."
        + _never_claimed(apart),
        "",
        "| seeds per set | claims per set (mean) | claims the other set also makes "
        "(same sign) | pairs in which the rule holds |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        share = "–" if r.reclaimed != r.reclaimed else f"{r.reclaimed:.0%}"
        lines.append(f"| {r.n} | {r.claims:.1f} | {share} | {r.holds:.0%} |")
    return "\n".join(lines + [""])


def marked(runs) -> set[tuple]:
    """``(hypothesis, dataset)`` of the pooled estimates marked ‡ (a run behind them did not
    converge) in any of the loaded ``runs``: the Answer does not claim them, so the
    simulation tests them (they count in Holm's family) but never claims them."""
    out = set()
    for results in runs:
        pooled = results.pooled
        if not pooled.empty and "not_converged" in pooled:
            out |= {(h, d) for h, d, n in zip(pooled["hypothesis"], pooled["dataset"],
                                               pooled["not_converged"], strict=True) if n}
    return out


def _never_claimed(apart: set[tuple]) -> str:
    if not apart:
        return ""
    names = ", ".join(f"{h} ({d})" for h, d in sorted(apart))
    return (f" Never claimed: {names}, marked ‡ in at least one run (a model behind it did not "
            "converge, so the Answer lists it apart); they are tested, and count in Holm's "
            "family.")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("more", type=Path, nargs="*",
                        help="further runs with other disjoint seeds: the simulation pools "
                        "their seeds too (with --sets: every pair is compared)")
    parser.add_argument("--sets", action="store_true",
                        help="compare every pair of the runs given (two or more) and list each "
                        "hypothesis' verdict in every run (no simulation)")
    parser.add_argument("--preset", default=None,
                        help="answer this preset's current hypotheses (default: the stored spec's)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--power-out", type=Path, default=None,
                        help="the simulated replication table (default: next to --out, "
                        "NAME-power.md; stdout without --out)")
    parser.add_argument("--pairs", type=int, default=PAIRS,
                        help=f"simulated pairs of seed sets per size (default {PAIRS})")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error(f"--pairs must be at least 1, not {args.pairs}")
    if args.sets:
        paths = [args.a, args.b, *args.more]
        text = every_pair({p.name: load_run(p, args.preset) for p in paths}, args.preset)
        _write(args.out, text) if args.out else sys.stdout.write(text)
        return 0
    result = compare(args.a, args.b, args.preset)
    text = markdown(result, args.a.name, args.b.name, args.preset)
    more = tuple((p.name, load_run(p, args.preset)) for p in args.more)
    power = power_markdown(result, args.a.name, args.b.name, args.preset, args.pairs, more=more)
    power_out = args.power_out or (args.out and args.out.with_name(
        f"{args.out.stem}-power{args.out.suffix}"))
    if args.out:
        _write(args.out, text)
    else:
        sys.stdout.write(text)
    if power_out:
        _write(power_out, power)
    else:
        sys.stdout.write("\n" + power)
    return 0 if result["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
