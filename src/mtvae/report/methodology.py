"""The report's Methodology section, generated from the stored spec, run configs and timings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from mtvae.base import flatten
from mtvae.evaluate.catalogue import definition, direction_word, lookup
from mtvae.report.findings import fmt
from mtvae.study.axes import axis_of, level_label

# Config values that are mappings of tasks (per-task weights and label shares): one cell each.
PER_TASK = ("task_weights", "label_fraction")


def table(headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """A table for the templates: header strings and rows of display strings."""
    return {"headers": headers, "rows": [[_cell(v) for v in row] for row in rows]}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value)
    if value is None:
        return "—"
    return level_label(value) if isinstance(value, list | dict) else str(value)


def representative_configs(runs: list[dict], cells: list[dict], default: str) -> dict[str, dict]:
    """One resolved config per variant: its run at the default point and first seed."""
    by_id = {r["run_id"]: r for r in runs}
    chosen: dict[str, dict] = {}
    for cell in sorted(cells, key=lambda c: (c["point"] != default, c["seed"])):
        chosen.setdefault(cell["variant"], by_id[cell["run_id"]]["config"])
    return chosen


def methodology(spec: dict, runs: list[dict], cells: list[dict], default: str,
                sessions: list[dict]) -> dict[str, Any]:
    """Everything the Methodology section shows."""
    configs = representative_configs(runs, cells, default)
    variants = list(spec["variants"])
    return {
        "overview": overview(spec, runs, cells),
        "data": data_section(spec, runs),
        "conditions": conditions_section(spec),
        "models": models_section(spec),
        "hyper": hyper_section(configs, variants, runs),
        "metrics": metrics_section(runs),
        "statistics": statistics_text(spec),
        "hardware": hardware_section(sessions, runs),
    }


def overview(spec: dict, runs: list[dict], cells: list[dict]) -> str:
    """One paragraph: what was compared, how often, how many runs finished."""
    points = len({c["point"] for c in cells})
    status = pd.Series([r["status"] for r in runs]).value_counts()
    design = ("the full product of the condition axes" if spec["design"] == "product"
              else "one factor at a time around a default point")
    axes = ", ".join(spec["conditions"]) or "none"
    return (
        f"This study compares {len(spec['variants'])} model variants "
        f"({', '.join(spec['variants'])}) on {len(spec['datasets'])} dataset(s) "
        f"({', '.join(spec['datasets'])}) at {points} condition point(s) — {design}; axes: "
        f"{axes} — with {len(spec['seeds'])} seeds ({', '.join(map(str, spec['seeds']))}) each. "
        f"The grid has {len(cells)} cells filled by {len(runs)} distinct runs (a condition that "
        f"does not change a variant's config reuses its run): {int(status.get('done', 0))} "
        f"finished, {int(status.get('failed', 0))} failed, "
        f"{int(status.get('queued', 0) + status.get('running', 0))} not run."
    )


def data_section(spec: dict, runs: list[dict]) -> dict[str, Any]:
    """Per dataset: split sizes, image size, tasks; and the label policy."""
    rows = []
    for source in spec["datasets"]:
        configs = [r["config"] for r in runs if r["dataset"] == source]
        if not configs:
            continue
        data = configs[0]["data"]
        tasks = sorted({", ".join(c["model"].get("tasks") or []) for c in configs} - {""})
        rows.append([source, data.get("n_train") or "source default",
                     data.get("n_val") or "source default", data.get("n_test") or "source default",
                     data.get("image_size"), "; ".join(tasks) or "all of the data's tasks"])
    policies = sorted({r["config"]["data"]["label_policy"] for r in runs})
    fractions = sorted({level_label(r["config"]["data"]["label_fraction"]) for r in runs})
    text = (
        selection_labels_text(runs)
        + " " + label_budget_text(runs)
        + " Label policy: "
        + ", ".join(policies)
        + " (mcar: each task keeps a random share of its labels independently; disjoint: each "
        f"sample keeps at most one task's label). Label fractions used: {', '.join(fractions)}. "
        + ("Each seed also reseeds the data (generation, splits and label masks), so intervals "
           "cover data variation as well as initialisation." if spec.get("seed_data") else
           "The data are the same for every seed; seeds vary initialisation and shuffling.")
    )
    return {"table": table(["dataset", "n_train", "n_val", "n_test", "image size",
                            "tasks learned by models with heads"], rows), "text": text}


def selection_labels_text(runs: list[dict]) -> str:
    """Which labels training, model selection and testing saw (``data.val_labels``)."""
    modes = {r["config"]["data"].get("val_labels", "all") for r in runs}
    order = {}  # label counts, fewest first (per-task counts and 'all' last)
    for r in runs:
        value = r["config"]["data"].get("n_labelled") or "all"
        order[level_label(value)] = value if isinstance(value, int) else float("inf")
    counts = sorted(order, key=order.get)
    balance = {r["config"]["data"].get("label_balance", "none") for r in runs}
    text = ("Labels are removed from the training split (label counts used: "
            f"{', '.join(counts)}{'; balanced per class' if balance == {'per_class'} else ''}). ")
    if modes == {"policy"}:
        text += ("The validation split keeps the same share of labels as the training split, "
                 "under the same policy, so model selection (best epoch, early stopping) saw "
                 "only the labels a user with that labelling budget would have (Oliver et al. "
                 "2018).")
    elif modes == {"all"}:
        text += ("Model selection (best epoch, early stopping) saw every validation label "
                 "(data.val_labels=all), more labels than training had.")
    else:
        text += ("Some runs select on validation labels that follow the training policy, "
                 "others on every validation label (data.val_labels differs).")
    return text + " The test split keeps every label, so all models are scored on the same data."


def label_budget_text(runs: list[dict]) -> str:
    """How often models with heads saw their labels, and what label-free models did not read."""
    from mtvae.models.registry import MODELS

    def reads(r: dict) -> bool:
        entry = MODELS.get(r["config"]["model"]["name"])
        return entry is None or entry.reads_labels

    extra = sorted({r["config"]["train"].get("labelled_per_batch", 0) for r in runs if reads(r)})
    text = ("Fair label budget: a variant and the baseline it is compared with, when both "
            "learn from labels (MT-VAE, supervised, M2), train with the same epochs, batch size "
            "and labelled oversampling (the study refuses a spec where they differ); an epoch is one "
            "pass over the whole training set in which only labelled samples carry a task loss, "
            "and train.labelled_per_batch = L appends L labelled samples to every batch, so with "
            "n labelled of N training samples in batches of B each label is seen about "
            "1 + L·⌈N/B⌉/n times per epoch by each such model (L used: "
            f"{', '.join(map(str, extra)) or 'none'}); best epoch and early stopping follow the "
            "same rule for all (the model's own validation loss on the same validation labels; "
            "the same maximum epochs, patience and improvement threshold).")
    names = dict.fromkeys(r["config"]["model"]["name"] for r in runs)  # in run order, once
    for entry in (MODELS[n] for n in names if n in MODELS):
        # a model whose configuration the Methodology must state says so itself
        note = getattr(entry.config_cls, "methodology", "")
        text += f" {note}" if note else ""
    if any(not reads(r) for r in runs):
        text += (" Label-free models (vae, vqvae and its prior) read no label in training: "
                 "each is trained once per seed and configuration and re-evaluated, its probes "
                 "re-fitted, at every label condition.")
    return text


def conditions_section(spec: dict) -> dict[str, Any]:
    """The condition axes, their config keys, values and defaults."""
    rows = []
    for name, values in spec["conditions"].items():
        default, axis = spec["default"].get(name, values[0]), axis_of(name)
        rows.append([name, axis.key, ", ".join(axis.label(v) for v in values),
                     axis.label(default), axis.description])
    design = ("Design: full product of the axes." if spec["design"] == "product" else
              "Design: one factor at a time — every axis is varied alone while the others stay "
              "at their default.")
    return {"table": table(["axis", "config key", "values", "default", "meaning"], rows),
            "text": design if rows else "No condition axes: every variant runs once per seed."}


def models_section(spec: dict) -> dict[str, Any]:
    """The variants: model, description, overrides, baselines."""
    from mtvae.models.registry import MODELS

    rows = []
    for name, variant in spec["variants"].items():
        entry = MODELS.get(variant["model"])
        overrides = ", ".join(f"{k}={level_label(v)}" for k, v in variant["set"].items())
        baselines = ", ".join(f"{f}: {b}" for f, b in variant["baselines"].items())
        rows.append([name, variant["model"], variant["description"] or (entry.description if
                     entry else ""), overrides or "—", baselines or "—"])
    return table(["variant", "model", "description", "overrides", "compared with"], rows)


def hyper_section(configs: dict[str, dict], variants: list[str], runs: list[dict]):
    """Model hyperparameters per variant, and training/evaluation settings shared by all."""
    flat = {v: flatten(configs[v]["model"], leaves=PER_TASK) for v in variants if v in configs}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    model_rows = [[k, *[flat[v].get(k, "n/a") if v in flat else "n/a" for v in variants]]
                  for k in keys]
    quantizers = [quantizer_text(configs[v]["model"]) if v in configs else "n/a"
                  for v in variants]
    if any(q != "n/a" for q in quantizers):  # named in words: a default kind is not in the config
        model_rows.insert(0, ["quantizer", *quantizers])
    shared, varying = {}, set()
    for run in runs:
        for key, value in flatten({s: run["config"][s] for s in ("train", "eval")},
                                  leaves=PER_TASK).items():
            if key in shared and shared[key] != value:
                varying.add(key)
            shared.setdefault(key, value)
    shared_rows = [[k, v] for k, v in shared.items() if k not in varying]
    varying_rows = [[k, *[flatten({s: configs[v][s] for s in ("train", "eval")},
                                  leaves=PER_TASK).get(k)
                          if v in configs else "n/a" for v in variants]] for k in sorted(varying)]
    return {"model": table(["model.*", *variants], model_rows + varying_rows),
            "shared": table(["setting (all runs)", "value"], shared_rows)}


def quantizer_text(model: dict[str, Any]) -> str:
    """The quantizer of a resolved model config in words ("n/a" for a model without one)."""
    from mtvae.latent.quantizers import describe_quantizer

    return describe_quantizer(model["quantizer"]) if "quantizer" in model else "n/a"


def metrics_section(runs: list[dict]) -> dict[str, Any]:
    """Every metric key the runs produced, from the metric catalogue: family, kind (outcome
    or info), direction, unit and definition."""
    keys = sorted({k for r in runs for k, v in r["metrics"].items() if isinstance(v, int | float)})
    rows, budgets = [], sorted({k.rsplit("@", 1)[1] for k in keys if "@" in k and
                                k.startswith("probe/")})
    for key in keys:
        metric = lookup(key)
        if metric is None or metric.family is None or "@" in key:
            continue  # bookkeeping, and budgeted copies summarised in one row below
        rows.append([key, metric.family, metric.kind, direction_word(key), metric.unit or "—",
                     definition(key)])
    if budgets:
        rows.append([f"probe/<task>/<metric>@<budget> ({', '.join(budgets)})", "representation",
                     "outcome", "as without @", "—",
                     "the linear probe fitted on at most <budget> labelled training points "
                     "(label-efficiency curve); the key without @ is the largest budget"])
    return table(["metric", "family", "kind", "better", "unit", "definition"], rows)


def statistics_text(spec: dict) -> str:
    """How results are summarised and compared."""
    alpha = fmt(spec["alpha"])
    where = ("declared in the spec" if spec.get("hypotheses") else
             "the primary hypotheses of each variant with baselines, one per outcome kind: "
             "reconstruction nll/iwae (else recon/bce), generation gen/fd, representation the "
             "linear probe of each task, task performance the variant's head on each task "
             "against the task baseline's head and against the two-stage baseline's probe")
    return (
        "Every table of metrics gives the mean over seeds and the 95% t-interval of that mean "
        "(mean ± t₀.₉₇₅,n−1 · sd/√n). Only outcome metrics are compared (the catalogue marks "
        "counts, sizes and settings as info). The hypotheses are " + where + ". For each "
        "hypothesis and condition point the two variants are paired by seed; the difference Δ "
        "is oriented so that positive favours the variant. The headline is the pooled effect: "
        "each seed's mean Δ over the hypothesis' condition points, t-tested over the seeds "
        "(df = seeds − 1). In this balanced design that is the linear mixed model of the paired "
        "differences with the condition point as a fixed effect and the seed as a random "
        "effect (its REML estimate of the average effect, its standard error and Kenward-Roger "
        "degrees of freedom coincide), and unlike the mixed model it assumes nothing about how "
        "one seed's differences at different points correlate; a precision-weighted "
        "combination of the points would treat the same seed's points as independent and "
        "overstate the evidence. Holm's correction runs across the study's hypotheses (the "
        "family a reader asks about: does the variant win on this outcome?), and each pooled "
        "interval is the t-interval at the level Holm's step tested it at, so better / worse "
        "is exactly an interval that excludes 0. Per condition point: the paired t-interval "
        "simultaneous over the hypothesis' distinct cells (Bonferroni, level α/m; cells whose "
        "differences are identical in every seed count once), the adjusted p-value min(1, m·p), "
        "a Wilcoxon signed-rank test (SciPy, unadjusted) and d_z = mean / sd with g_z, its "
        f"Hedges small-sample correction. Verdicts at α = {alpha} read the printed interval "
        "[lo, hi]: better when lo > 0, worse when hi < 0 (below −m for a non-inferiority "
        "margin m); equivalent within ±m only when the interval lies inside ±m, m being the "
        "hypothesis' margin or the metric catalogue's smallest effect of interest (two one-sided "
        "tests); non-inferior (Δ > −m) when only the lower bound clears −m (a non-inferiority "
        "interval has each tail at the level, so that bound is the one-sided test); else no "
        "evidence, with the effects the interval rules out. A difference identical in every "
        "seed gets no test and no verdict. Power is the noncentral t's on both tails, "
        "integrated exactly over the chi-square; the smallest detectable |Δ| is the effect a "
        "cell's test finds with 80% power at the observed spread and the cell's level, and "
        "seeds needed is the number of seeds the pooled Δ would need for that power at its "
        "spread. Along numeric axes, each split between neighbouring levels gets a test of the "
        "change: per seed, the mean Δ above the split minus the mean Δ below it, t-tested "
        "(Bonferroni over the hypothesis' splits); a crossover is named only where Δ is "
        "significantly positive on one side and significantly negative on the other, each side "
        "at Bonferroni's level over the hypothesis' splits times the study's hypotheses (a "
        "crossover is a claim of the Answer, so it shares the pooled verdicts' family). The trend "
        "test t-tests the seeds' least-squares slopes of Δ against the level (log10 of it "
        "beyond a 10x span; a label count's all at its real count). Every other shared outcome "
        "is exploratory: its Δ and 95% CI are shown, uncorrected, and never counted."
    )


def hardware_section(sessions: list[dict], runs: list[dict]) -> dict[str, Any]:
    """Where and how long the study ran."""
    rows = []
    for s in sessions:
        hw = s.get("hardware", {})
        started = dt.datetime.fromtimestamp(s["started"]).strftime("%Y-%m-%d %H:%M")
        rows.append([started, s.get("runs"), f"{s.get('workers')} × {s.get('threads')}",
                     s.get("backend"), hw.get("cpu"), hw.get("cores"), hw.get("gpu") or "none",
                     f"{s.get('wall_s', float('nan')):.0f} s"])
    done = pd.DataFrame([r for r in runs if r["status"] == "done"])
    timing_rows = []
    if not done.empty:
        for variant, group in done.groupby("variant", sort=False):
            timing_rows.append([variant, len(group), group["train_s"].mean(),
                                group["eval_s"].mean(), group["wall_s"].mean()])
    total = sum(s.get("wall_s", 0.0) for s in sessions)
    software = sessions[-1].get("hardware", {}) if sessions else {}
    text = (f"Total wall time {total / 60:.1f} min over {len(sessions)} session(s). Software: "
            f"Python {software.get('python', '?')}, torch {software.get('torch', '?')}, mtvae "
            f"{software.get('mtvae', '?')} on {software.get('platform', '?')}.")
    return {"sessions": table(["started", "runs", "workers × threads", "backend", "CPU",
                               "cores", "GPU", "wall time"], rows),
            "timings": table(["variant", "runs", "train s (mean)", "eval s (mean)",
                              "wall s (mean)"], timing_rows),
            "text": text}
