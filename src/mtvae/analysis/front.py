"""The MT-VAE's trade-off over its task weight: fronts, their verdicts, adaptive strategies
against the tuned front, and Δm against single-task models.

The task weight (``model.task_scale_factor``, the study axis ``task_weight``) moves an MT-VAE
from a VAE with untrained heads (weight 0) towards a supervised network. Per dataset, condition
point of the other axes, variant and task, the **front** is each fixed weight's mean
reconstruction (``nll/iwae``, else ``recon/bce``) against the task's primary metric (the head's
accuracy, or R² for regression; at weight 0, where no head is trained, the linear probe on the
same latent: the two-stage VAE), each with its t-interval over seeds. Beside it: the VAE's
point (its reconstruction and its probe) and the supervised network's task level.

* :func:`front_verdicts` — does some weight **dominate the VAE**: its task metric better than
  the VAE's probe (paired superiority test) and its reconstruction no worse than the VAE's
  within the smallest effect of interest (paired non-inferiority test with that margin)? Holm
  runs across the weights, for each of the two tests; the weights where both hold are named.
* :func:`placements` — each adaptive weighting strategy (a run whose
  ``model.weighting.strategy`` is not ``fixed``) against the **best fixed weight**, chosen on
  the validation split (``val/task/...``, metric family ``val``; the test split when a study
  did not evaluate it, which the table says) and compared on the test split: ``above`` the
  front when the strategy dominates that weight (one outcome better, the other no worse within
  the smallest effect), ``below`` when the weight dominates the strategy, ``on`` otherwise.
* :func:`delta_m` — LibMTL's Δm of a multitask run against the single-task runs of its tasks
  (same config but ``model.tasks: [t]``): ``100 · mean_t (-1)^{s_t} (M_m,t − M_b,t) / M_b,t``
  with ``s_t = 1`` where lower is better, so positive favours multitask; per seed (paired), then
  the t-interval over seeds.

Every verdict and Δm row also counts its runs (``n_runs``), those that did not converge
(``not_converged``) and names the scores not shown above chance (``unlearned``), for the
report's † and ‡. :func:`analyse` computes it all at once (:class:`FrontAnalysis`);
:attr:`mtvae.analysis.results.StudyResults.front` keeps that one result for every part of a
report.

Everything here is a pure function of a study's runs and cells (as ``Store.runs()`` and
``Store.cells()`` give them) and its spec.

Why one module of over 400 lines: the three analyses above read one table, the front's
points per seed, and its grouping (dataset, condition point, variant, task); apart, each would
rebuild it or import it back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from mtvae.analysis import learnability
from mtvae.analysis.convergence import run_converged
from mtvae.analysis.hypotheses import DEFAULT_METRICS, control_tasks
from mtvae.analysis.run_settings import WEIGHT_KEY, weight_of
from mtvae.analysis.run_settings import setting as _get
from mtvae.analysis.stats import holm, paired_test, t_interval
from mtvae.evaluate.catalogue import higher_is_better, smallest_effect
from mtvae.models.registry import MODELS
from mtvae.objectives.weighting import STRATEGIES, WeightingConfig
from mtvae.study.axes import axis_of, level_label

STRATEGY_KEY = "model.weighting.strategy"
FIXED = WeightingConfig.model_fields["strategy"].default  # a run with no weighting has it
VALIDATION = "val/"
SCORES = tuple(p.rsplit("/", 1)[1] for p in DEFAULT_METRICS["task"])  # accuracy, r2
RECON = DEFAULT_METRICS["reconstruction"]  # nll/iwae, else recon/bce
SEEDLESS = (("seed",), ("data", "seed"))  # what differs between the seeds of one config


class Role(StrEnum):
    """What a point of a front figure is (the ``kind`` column of :func:`front_points`)."""

    WEIGHT = "weight"  # the variant at one fixed task weight: a point of the front
    ADAPTIVE = "adaptive"  # an adaptive strategy's run, placed against the front
    RECON_REFERENCE = "reconstruction reference"  # the VAE, its task read by a probe
    TASK_REFERENCE = "task reference"  # the supervised network: a task level, no reconstruction


@dataclass(frozen=True)
class Group:
    """The runs of one front: a dataset, the condition point of the other axes, a variant."""

    dataset: str
    rest: str  # canonical JSON of the point without the weight (and weighting) axes
    variant: str


def weight_axes(spec: dict) -> list[str]:
    """The spec's condition axes that set the task weight (``task_weight`` or its key)."""
    return [a for a in spec.get("conditions", {}) if axis_of(a).key == WEIGHT_KEY]


def has_front(spec: dict) -> bool:
    """Whether the study varies the task weight."""
    return bool(weight_axes(spec))


def strategy_of(config: dict) -> str:
    """The run's weighting strategy (``fixed`` when the model has none)."""
    return str(_get(config, "model", "weighting", "strategy", default=FIXED))


def on_front(strategy: str) -> bool:
    """Whether runs of ``strategy`` train the plain weighted sum, so that their task weight
    places them on the front (an adaptive strategy's are placed against it instead)."""
    cls = STRATEGIES.get(strategy)
    return bool(cls and cls.plain_sum)


def _rest(point: str, spec: dict) -> str:
    varied = {a for a in spec.get("conditions", {})
              if axis_of(a).key in (WEIGHT_KEY, STRATEGY_KEY)}
    values = {k: v for k, v in json.loads(point).items() if k not in varied}
    return json.dumps(values, separators=(",", ":"))


def run_rows(spec: dict, runs: list[dict], cells: list[dict]) -> pd.DataFrame:
    """One row per done cell: dataset, rest, variant, seed, run_id, weight, strategy, model,
    metrics (a dict), converged (True, False or None: not recorded)."""
    by_id = {r["run_id"]: r for r in runs if r.get("status") == "done"}
    rows = []
    for cell in cells:
        run = by_id.get(cell["run_id"])
        if run is None:
            continue
        rows.append({"dataset": cell["dataset"], "rest": _rest(cell["point"], spec),
                     "point": cell["point"], "variant": cell["variant"], "seed": cell["seed"],
                     "run_id": run["run_id"], "model": run["model"],
                     "weight": weight_of(run["config"]), "strategy": strategy_of(run["config"]),
                     # every front point is read on its reconstruction too
                     "metrics": run["metrics"],
                     "converged": run_converged(run, "reconstruction")})
    columns = ["dataset", "rest", "point", "variant", "seed", "run_id", "model", "weight",
               "strategy", "metrics", "converged"]
    return pd.DataFrame(rows, columns=columns)


# --- which metric --------------------------------------------------------------------------
def recon_metric(metrics: list[dict]) -> str | None:
    """The first of ``nll/iwae``, ``recon/bce`` that every run has."""
    return next((k for k in RECON if metrics and all(k in m for m in metrics)), None)


def task_metric(task: str, metrics: list[dict], prefix: str = "task") -> str | None:
    """``<prefix>/<task>/accuracy`` (or ``r2`` for regression) when every run has it."""
    for score in SCORES:
        key = f"{prefix}/{task}/{score}"
        if metrics and all(key in m for m in metrics):
            return key
    return None


def head_tasks(rows: pd.DataFrame, controls: set[str]) -> list[str]:
    """Tasks whose heads were scored in these runs, without the random control tasks."""
    tasks: dict[str, None] = {}
    for metrics in rows["metrics"]:
        for key in metrics:
            parts = key.split("/")
            if len(parts) == 3 and parts[0] == "task" and parts[2] in SCORES:
                tasks.setdefault(parts[1])
    return [t for t in tasks if t not in controls]


def _by_seed(rows: pd.DataFrame, key: str | None) -> pd.Series:
    """``{seed: value}`` of ``key`` (one value per seed; runs without it left out)."""
    if key is None or rows.empty:
        return pd.Series(dtype=float)
    pairs = {int(s): float(m[key]) for s, m in zip(rows["seed"], rows["metrics"], strict=True)
             if key in m}
    return pd.Series(pairs, dtype=float).sort_index()


def _mean_ci(values: pd.Series) -> tuple[float, float, float]:
    return t_interval(values.to_numpy()) if len(values) else (math.nan,) * 3


# --- the front -----------------------------------------------------------------------------
@dataclass
class Front:
    """One front: a group's fixed-weight runs, its adaptive runs, its baselines' runs."""

    group: Group
    weights: dict[float, pd.DataFrame]  # fixed weight -> its runs (one per seed)
    adaptive: dict[tuple[str, str, float], pd.DataFrame]  # (variant, strategy, weight) -> runs
    vae: pd.DataFrame
    supervised: pd.DataFrame
    tasks: list[str]
    vae_name: str = "vae"  # the variant of the reconstruction baseline (a VAE + probe)
    supervised_name: str = "supervised"


def _baseline(spec: dict, variant: str, family: str) -> str | None:
    """The variant's baseline on ``family``, else the study's first variant whose model is
    the registered reference for that family (``ModelEntry.reference_for``)."""
    named = spec["variants"][variant].get("baselines", {}).get(family)
    if named:
        return named
    return next((n for n, v in spec["variants"].items()
                 if family in getattr(MODELS.get(v["model"]), "reference_for", ())), None)


def fronts(spec: dict, runs: list[dict], cells: list[dict]) -> list[Front]:
    """Every front of the study: per dataset, rest point and variant with fixed runs at two
    or more task weights."""
    table = run_rows(spec, runs, cells)
    if table.empty or not has_front(spec):
        return []
    controls = control_tasks(runs)
    out = []
    for (dataset, rest), part in table.groupby(["dataset", "rest"], sort=False):
        for variant in dict.fromkeys(part["variant"]):
            front = _front(spec, Group(dataset, rest, variant), part, controls)
            if front is not None:
                out.append(front)
    return out


def _unique(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per seed (cells of other points may share a run)."""
    return rows.drop_duplicates("seed").sort_values("seed")


def _front(spec: dict, group: Group, part: pd.DataFrame, controls: set[str]) -> Front | None:
    fixed = part["strategy"].map(on_front)
    mine = part[(part["variant"] == group.variant) & fixed]
    weights = {float(w): _unique(r) for w, r in mine.groupby("weight", sort=True)}
    if len(weights) < 2:
        return None
    model = mine["model"].iloc[0]
    others = part[(part["model"] == model) & ~fixed]
    adaptive = {(v, s, float(w)): _unique(r)
                for (v, s, w), r in others.groupby(["variant", "strategy", "weight"], sort=False)}
    vae = _baseline(spec, group.variant, "reconstruction")
    sup = _baseline(spec, group.variant, "task")
    trained = pd.concat([r for w, r in weights.items() if w > 0] or [mine.iloc[:0]])
    return Front(group, weights, adaptive, _unique(part[part["variant"] == vae]),
                 _unique(part[part["variant"] == sup]), head_tasks(trained, controls),
                 vae or "", sup or "")


def _task_values(rows: pd.DataFrame, task: str, weight: float) -> tuple[pd.Series, str | None]:
    """A task's values per seed: the head's, or the probe's at weight 0 (no head trained)."""
    metrics = list(rows["metrics"])
    key = task_metric(task, metrics, "probe" if weight == 0 else "task")
    return _by_seed(rows, key), key


def front_points(front: Front) -> pd.DataFrame:
    """The points a front figure draws, per task: each weight, each adaptive run, the VAE
    (reconstruction and probe) and the supervised network's task level (no reconstruction)."""
    rows = []
    everything = [*front.weights.values(), *front.adaptive.values()]
    recon = recon_metric([m for r in everything for m in r["metrics"]])
    for task in front.tasks:
        for weight, runs in front.weights.items():
            values, key = _task_values(runs, task, weight)
            rows.append(_point(front, task, Role.WEIGHT, f"×{level_label(weight)}", weight, FIXED,
                               runs, recon, values, key))
        for (variant, strategy, weight), runs in front.adaptive.items():
            values, key = _task_values(runs, task, weight)
            label = strategy if variant == front.group.variant else f"{variant} ({strategy})"
            rows.append(_point(front, task, Role.ADAPTIVE, label, weight, strategy, runs, recon,
                               values, key))
        probe = task_metric(task, list(front.vae["metrics"]), "probe")
        rows.append(_point(front, task, Role.RECON_REFERENCE, f"{front.vae_name} + probe",
                           math.nan, "", front.vae, recon, _by_seed(front.vae, probe), probe))
        head = task_metric(task, list(front.supervised["metrics"]))
        rows.append(_point(front, task, Role.TASK_REFERENCE, front.supervised_name, math.nan, "",
                           front.supervised, None, _by_seed(front.supervised, head), head))
    return pd.DataFrame(rows)


def _point(front, task, kind, label, weight, strategy, runs, recon, values, key) -> dict:
    r_mean, r_low, r_high = _mean_ci(_by_seed(runs, recon))
    t_mean, t_low, t_high = _mean_ci(values)
    g = front.group
    return {"dataset": g.dataset, "rest": g.rest, "variant": g.variant, "task": task,
            "kind": kind, "label": label, "weight": weight, "strategy": strategy,
            "recon_metric": recon, "task_metric": key, "n": len(values),
            "recon_mean": r_mean, "recon_low": r_low, "recon_high": r_high,
            "task_mean": t_mean, "task_low": t_low, "task_high": t_high}


# --- dominance -----------------------------------------------------------------------------
def _paired(a: pd.Series, b: pd.Series, key: str, margin: float = 0.0) -> dict | None:
    """Paired statistics of ``a`` against ``b`` on their common seeds, > 0 favouring ``a``."""
    seeds = sorted(set(a.index) & set(b.index))
    if len(seeds) < 2:
        return None
    sign = 1.0 if higher_is_better(key) else -1.0
    return paired_test(sign * (a.loc[seeds].to_numpy() - b.loc[seeds].to_numpy()), margin)


def _margin(key: str | None) -> float:
    return (smallest_effect(key) or 0.0) if key else 0.0


def front_verdicts(front: Front, alpha: float) -> pd.DataFrame:
    """Per task: each weight against the VAE (task metric vs its probe, superiority;
    reconstruction, non-inferiority within the smallest effect), Holm across the weights, and
    the weights that dominate the VAE."""
    everything = [*front.weights.values(), front.vae]
    recon = recon_metric([m for r in everything for m in r["metrics"]])
    vae_recon = _by_seed(front.vae, recon)
    rows = []
    for task in front.tasks:
        probe = task_metric(task, list(front.vae["metrics"]), "probe")
        vae_task = _by_seed(front.vae, probe)
        tests = []
        for weight, runs in front.weights.items():
            values, key = _task_values(runs, task, weight)
            t = _paired(values, vae_task, key) if key and probe else None
            r = _paired(_by_seed(runs, recon), vae_recon, recon, _margin(recon)) if recon else None
            if t is not None and r is not None:
                tests.append((weight, t, r))
        row = _verdict_row(front, task, tests, alpha, recon)
        vae_at_chance = not_above_chance(list(front.vae["metrics"]), probe)
        for d in row["details"]:  # which of the two scores compared is not above chance
            runs = front.weights[d["weight"]]
            at_chance = not_above_chance(list(runs["metrics"]),
                                         _task_values(runs, task, d["weight"])[1])
            d["unlearned"] = ([f"×{level_label(d['weight'])}"] if at_chance else []) + (
                [f"{front.vae_name} probe"] if vae_at_chance else [])
        behind = [front.vae, *(front.weights[w] for w in row["tested"])]
        rows.append(row | _convergence(behind))
    return pd.DataFrame(rows)


def not_above_chance(metrics: list[dict], key: str | None) -> bool:
    """Whether the runs' task score ``key`` (``task/<t>/accuracy``, ``probe/<t>/r2``, ...) is
    not shown above chance by :func:`mtvae.analysis.learnability.learned` (chance from the
    runs' ``chance/<t>/accuracy``, 0 for R²); False when it cannot tell."""
    match = learnability.SCORE.match(key or "")
    values = np.array([m[key] for m in metrics if key in m], dtype=float)
    if match is None or not len(values):
        return False
    chances = [m[f"chance/{match['task']}/accuracy"] for m in metrics
               if f"chance/{match['task']}/accuracy" in m]
    chance = 0.0 if match["score"] == "r2" else float(np.mean(chances)) if chances else math.nan
    mean, low, _ = t_interval(values)
    return learnability.learned(mean, low, len(values), chance) is False


def _convergence(frames: list[pd.DataFrame]) -> dict[str, int]:
    """``n_runs`` and ``not_converged``: the distinct runs in ``frames`` and how many of them
    did not converge."""
    runs = pd.concat(frames)[["run_id", "converged"]].drop_duplicates("run_id") if frames \
        else pd.DataFrame(columns=["run_id", "converged"])
    return {"n_runs": len(runs), "not_converged": int((runs["converged"] == False).sum())}  # noqa: E712


def _verdict_row(front: Front, task: str, tests: list, alpha: float, recon) -> dict:
    g = front.group
    row = {"dataset": g.dataset, "rest": g.rest, "variant": g.variant, "task": task,
           "baseline": front.vae_name, "recon_metric": recon, "margin": _margin(recon), "tested": [w for w, *_ in tests],
           "dominating": [], "details": []}
    if not tests:
        row["range"] = "not tested"
        return row
    # one-sided superiority of the task metric: the two-sided p halved in the right direction
    p_task = np.array([t["p_t"] / 2 if t["diff"] > 0 else 1 - t["p_t"] / 2 for _, t, _ in tests])
    p_recon = np.array([r["p_ni"] for *_, r in tests])
    task_holm, recon_holm = holm(p_task), holm(p_recon)
    for (weight, t, r), pt, pr in zip(tests, task_holm, recon_holm, strict=True):
        ok = bool(pt < alpha and pr < alpha)
        row["details"].append({"weight": weight, "task_diff": t["diff"], "task_low": t["diff_low"],
                               "task_high": t["diff_high"], "p_task": float(pt),
                               "recon_diff": r["diff"], "recon_low": r["diff_low"],
                               "recon_high": r["diff_high"], "p_recon": float(pr),
                               "dominates": ok})
        if ok:
            row["dominating"].append(weight)
    row["range"] = weight_range(row["dominating"], row["tested"])
    return row


def weight_range(dominating: list[float], tested: list[float]) -> str:
    """``×0.3–×3`` when the dominating weights are neighbours on the axis, else a list;
    ``none`` when no weight dominates."""
    if not dominating:
        return "none"
    idx = [tested.index(w) for w in dominating]
    labels = [f"×{level_label(w)}" for w in dominating]
    if len(idx) > 1 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{labels[0]}–{labels[-1]}"
    return ", ".join(labels)


# --- adaptive strategies against the tuned front ------------------------------------------
def tuned_weight(front: Front, task: str) -> tuple[float, str] | None:
    """The fixed weight (> 0: a trained head) with the best mean validation score of
    ``task``, and where it was tuned (``validation``, or ``test`` without val metrics)."""
    candidates = {w: r for w, r in front.weights.items() if w > 0}
    if not candidates:
        return None
    test = task_metric(task, [m for r in candidates.values() for m in r["metrics"]])
    if test is None:
        return None
    val = VALIDATION + test
    where = ("validation" if all(val in m for r in candidates.values() for m in r["metrics"])
             else "test")
    key = val if where == "validation" else test
    sign = 1.0 if higher_is_better(test) else -1.0
    means = {w: sign * _by_seed(r, key).mean() for w, r in candidates.items()}
    return max(means, key=lambda w: (means[w], -w)), where


def placements(front: Front, alpha: float) -> pd.DataFrame:
    """Each adaptive run group against the front's tuned weight, per task (see the module
    docstring): Holm across the front's adaptive groups, per test."""
    recon = recon_metric([m for r in [*front.weights.values(), *front.adaptive.values()]
                          for m in r["metrics"]])
    rows = []
    for task in front.tasks:
        tuned = tuned_weight(front, task)
        if tuned is None or recon is None:
            continue
        best, where = tuned
        ref_task, key = _task_values(front.weights[best], task, best)
        ref_recon = _by_seed(front.weights[best], recon)
        part = []
        for (variant, strategy, weight), runs in front.adaptive.items():
            values, _ = _task_values(runs, task, weight)
            mine = _by_seed(runs, recon)
            t = _paired(values, ref_task, key, _margin(key))
            r = _paired(mine, ref_recon, recon, _margin(recon))
            if t is None or r is None:
                continue
            # the other way round: is the tuned weight no worse than the strategy?
            t_back = _paired(ref_task, values, key, _margin(key))
            r_back = _paired(ref_recon, mine, recon, _margin(recon))
            part.append({"dataset": front.group.dataset, "rest": front.group.rest,
                         "variant": variant, "front": front.group.variant, "strategy": strategy,
                         "weight": weight, "task": task, "task_metric": key,
                         "recon_metric": recon, "tuned_weight": best, "tuned_on": where,
                         "n": t["n"], "task_diff": t["diff"], "task_low": t["diff_low"],
                         "task_high": t["diff_high"], "recon_diff": r["diff"],
                         "recon_low": r["diff_low"], "recon_high": r["diff_high"],
                         "_t": t, "_r": r, "_t_back": t_back, "_r_back": r_back})
        rows += _place(part, alpha)
    return pd.DataFrame(rows)


def _place(part: list[dict], alpha: float) -> list[dict]:
    """above / on / below for each row, with Holm over the rows for each of the four tests."""
    if not part:
        return []

    def one_sided(test: dict, up: bool) -> float:
        p = test["p_t"]
        if p != p:
            return 1.0
        return p / 2 if (test["diff"] > 0) == up else 1 - p / 2

    def ni(test: dict, key: str) -> float:  # no worse than the other, within the margin
        return 1.0 if test[key] != test[key] else test[key]

    tests = {
        "task_up": [one_sided(r["_t"], True) for r in part],
        "task_down": [one_sided(r["_t"], False) for r in part],
        "recon_up": [one_sided(r["_r"], True) for r in part],
        "recon_down": [one_sided(r["_r"], False) for r in part],
        "task_ni": [ni(r["_t"], "p_ni") for r in part],  # the strategy no worse (margin)
        "task_nw": [ni(r["_t_back"], "p_ni") for r in part],  # the tuned weight no worse
        "recon_ni": [ni(r["_r"], "p_ni") for r in part],
        "recon_nw": [ni(r["_r_back"], "p_ni") for r in part],
    }
    adj = {k: holm(np.array(v)) < alpha for k, v in tests.items()}
    out = []
    for i, row in enumerate(part):
        above = (adj["task_up"][i] and adj["recon_ni"][i]) or (
            adj["recon_up"][i] and adj["task_ni"][i])
        below = (adj["task_down"][i] and adj["recon_nw"][i]) or (
            adj["recon_down"][i] and adj["task_nw"][i])
        place = "above" if above and not below else "below" if below and not above else "on"
        out.append({k: v for k, v in row.items() if not k.startswith("_")} | {"place": place})
    return out


# --- Δm ------------------------------------------------------------------------------------
def _seedless(config: dict, drop_tasks: bool) -> str:
    copy = json.loads(json.dumps(config))
    for path in SEEDLESS:
        node = copy
        for part in path[:-1]:
            node = node.get(part, {})
        node.pop(path[-1], None)
    if drop_tasks:
        copy.get("model", {}).pop("tasks", None)
    return json.dumps(copy, sort_keys=True)


def delta_m_seed(multi: dict[str, float], single: dict[str, float]) -> float:
    """LibMTL's Δm (in %) of one seed: ``100 · mean_k (-1)^{s_k} (M_m,k − M_b,k) / M_b,k`` over
    the keys both have, ``s_k = 1`` where a lower value of key k is better."""
    terms = [(1.0 if higher_is_better(k) else -1.0) * (multi[k] - single[k]) / single[k]
             for k in multi if k in single]
    return 100.0 * float(np.mean(terms)) if terms else math.nan


def delta_m(spec: dict, runs: list[dict], cells: list[dict]) -> pd.DataFrame:
    """Δm of every multitask run group (dataset, point, variant) whose tasks have single-task
    runs of the same config: per seed, then the mean and t-interval over seeds; ``n_runs``
    and ``not_converged`` count the multitask and single-task runs behind it."""
    done = [r for r in runs if r.get("status") == "done"]
    controls = control_tasks(runs)
    singles: dict[tuple, dict[int, dict]] = {}  # (model config without tasks, task) -> runs
    for run in done:
        tasks = _get(run["config"], "model", "tasks")
        if isinstance(tasks, list) and len(tasks) == 1:
            key = (run["dataset"], _seedless(run["config"], True), tasks[0])
            singles.setdefault(key, {})[int(run["seed"])] = run
    by_id = {r["run_id"]: r for r in done}
    groups: dict[tuple[str, str, str], dict[int, dict]] = {}
    for cell in cells:
        run = by_id.get(cell["run_id"])
        tasks = _get(run["config"], "model", "tasks") if run else None
        if isinstance(tasks, list) and len(tasks) >= 2:
            groups.setdefault((cell["dataset"], cell["point"], cell["variant"]), {})[
                int(cell["seed"])] = run
    rows = []
    for (dataset, point, variant), by_seed in groups.items():
        row = _delta_m_row(dataset, point, variant, by_seed, singles, controls)
        if row is not None:
            rows.append(row)
    return pd.DataFrame(rows)


def _delta_m_row(dataset, point, variant, by_seed, singles, controls) -> dict | None:
    values, used, behind = {}, None, {}
    for seed, run in sorted(by_seed.items()):
        base = _seedless(run["config"], True)
        multi, single = {}, {}
        for task in run["config"]["model"]["tasks"]:
            ref_run = singles.get((dataset, base, task), {}).get(seed)
            ref = ref_run["metrics"] if ref_run else None
            key = task_metric(task, [run["metrics"]] + ([ref] if ref else []))
            if task in controls or ref is None or key is None:
                continue
            multi[key], single[key] = run["metrics"][key], ref[key]
            behind[ref_run["run_id"]] = run_converged(ref_run)
        if multi:
            values[seed] = delta_m_seed(multi, single)
            used = used or sorted(multi)
            behind[run["run_id"]] = run_converged(run)
    if not values:
        return None
    multi_runs = [by_seed[s]["metrics"] for s in values]
    single_runs = {k: [singles.get((dataset, _seedless(by_seed[s]["config"], True),
                                    k.split("/")[1]), {}).get(s, {}).get("metrics", {})
                       for s in values] for k in used}
    unlearned = [f"{who} {k}" for k in used for who, runs in
                 (("multitask", multi_runs), ("single-task", single_runs[k]))
                 if not_above_chance(runs, k)]
    mean, low, high = t_interval(np.array(list(values.values())))
    return {"dataset": dataset, "point": point, "variant": variant, "metrics": used,
            "n": len(values), "delta_m": mean, "low": low, "high": high,
            "per_seed": values, "unlearned": unlearned, "n_runs": len(behind),
            "not_converged": sum(v is False for v in behind.values())}


# --- everything at once ---------------------------------------------------------------------
@dataclass
class FrontAnalysis:
    """A study's fronts with their points, verdicts and placements, and its Δm rows: what the
    report's trade-off section, its figures and the Answer's lines render."""

    alpha: float
    fronts: list[Front]
    points: list[pd.DataFrame]  # front_points of each front, in the same order
    verdicts: pd.DataFrame
    placements: pd.DataFrame
    delta_m: pd.DataFrame


def analyse(spec: dict, runs: list[dict], cells: list[dict], alpha: float) -> FrontAnalysis:
    """Every front of the study, its points, verdicts and placements, and Δm."""
    found = fronts(spec, runs, cells)
    return FrontAnalysis(
        alpha, found, [front_points(f) for f in found],
        pd.concat([front_verdicts(f, alpha) for f in found] or [pd.DataFrame()],
                  ignore_index=True),
        pd.concat([placements(f, alpha) for f in found] or [pd.DataFrame()], ignore_index=True),
        delta_m(spec, runs, cells))
