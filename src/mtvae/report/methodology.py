"""The report's Methodology section, generated from the stored spec, run configs and timings."""

from __future__ import annotations

import datetime as dt
from fnmatch import fnmatch
from typing import Any

import pandas as pd

from mtvae.report.findings import fmt
from mtvae.study.expand import format_value
from mtvae.study.spec import AXIS_DESCRIPTIONS, AXIS_KEYS
from mtvae.study.stats import metric_rule

_LINEAR = "linear probe on the frozen representation, fitted on the run's labelled training points"

# One-line definitions, first matching pattern wins.
METRIC_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("recon/mse", "mean squared error per pixel between test images and their reconstruction "
                  "from the posterior mean"),
    ("recon/bce", "binary cross-entropy per pixel between test images and their reconstruction"),
    ("elbo", "evidence lower bound per test image in nats (β = 1, one sample)"),
    ("kl", "KL(q(z|x) ‖ p(z)) per test image in nats"),
    ("nll/iwae", "−log p(x) per test image in nats, importance-weighted bound with k samples "
                 "(Burda et al. 2016)"),
    ("nll/vq_bound", "−log p(x) bound of a VQ-VAE: −log p(x|z_q) − log p(z_q) under the prior"),
    ("nll/vq_bound_uniform", "the VQ bound with a uniform prior over codes"),
    ("active_units", "latent dimensions whose posterior mean varies across inputs (Cov > 0.01)"),
    ("bits_per_dim", "nll/iwae / (D ln 2), D = C·H·W pixel values"),
    ("rate", "mean KL(q(z|x) ‖ p(z)) per test image in nats"),
    ("distortion", "mean −log p(x|z) per test image in nats (elbo = −(rate + distortion))"),
    ("task/*/balanced_accuracy", "the model's own head: accuracy averaged over classes"),
    ("task/*/accuracy", "the model's own head: test accuracy"),
    ("task/*/mae", "the model's own head: mean absolute error on the test split"),
    ("task/*/r2", "the model's own head: coefficient of determination R² on the test split"),
    ("probe/*mae", f"{_LINEAR}: test mean absolute error"),
    ("probe/*r2", f"{_LINEAR}: test R²"),
    ("probe/*balanced_accuracy", f"{_LINEAR}: test accuracy averaged over classes"),
    ("probe/*accuracy", f"{_LINEAR}: test accuracy"),
    ("probe_knn/*", "k-nearest-neighbour probe (k = 5) on the frozen representation, all "
                    "labelled training points: a non-linear, local read-out"),
    ("probe/*", "a probe fitted on the frozen representation"),
    ("disent/mig", "mutual information gap (Chen et al. 2018)"),
    ("disent/dci_d", "DCI disentanglement (Eastwood & Williams 2018)"),
    ("disent/dci_c", "DCI completeness (Eastwood & Williams 2018)"),
    ("disent/dci_i", "DCI informativeness: factor prediction accuracy"),
    ("disent/sap", "separated attribute predictability (Kumar et al. 2018)"),
    ("disent/factorvae", "FactorVAE score (Kim & Mnih 2018)"),
    ("disent/betavae", "β-VAE score (Higgins et al. 2017)"),
    ("disent/modularity", "modularity (Ridgeway & Mozer 2018)"),
    ("disent/explicitness", "explicitness: ROC-AUC of factor prediction (Ridgeway & Mozer 2018)"),
    ("disent/*tc", "total correlation of a Gaussian fitted to the codes (lower is more factorised)"),
    ("disent/*", "a disentanglement score against the ground-truth factors"),
    ("gen/fd*", "Fréchet distance between features of samples and test images"),
    ("gen/frechet*", "Fréchet distance between features of samples and test images"),
    ("gen/kid*", "kernel distance (KID) between features of samples and test images"),
    ("gen/precision", "share of samples inside the test images' feature manifold (Kynkäänniemi "
                      "et al. 2019)"),
    ("gen/recall", "share of test images inside the samples' feature manifold"),
    ("gen/*", "a sample-quality metric"),
    ("leakage/*", "linear-probe score of a task from another latent block (leakage)"),
    ("vq/perplexity", "exp of the entropy of code usage on the test split"),
    ("vq/usage", "fraction of the codebook used on the test split"),
    ("vq/dead", "codebook entries never used on the test split"),
    ("vq/recon_nll", "−log p(x|z_q) per test image in nats, at the quantised codes"),
    ("vq/prior_nll", "−log p(z_q) under the prior per test image in nats"),
    ("vq/*", "codebook statistic"),
)


def definition(key: str) -> str:
    """The one-line definition of a metric key."""
    return next((text for pattern, text in METRIC_DEFINITIONS if fnmatch(key, pattern)), "")


def table(headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """A table for the templates: header strings and rows of display strings."""
    return {"headers": headers, "rows": [[_cell(v) for v in row] for row in rows]}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value)
    if value is None:
        return "—"
    return format_value(value) if isinstance(value, list | dict) else str(value)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{a: {b: 1}}`` -> ``{"a.b": 1}``."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and key not in ("task_weights", "label_fraction"):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


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
    fractions = sorted({format_value(r["config"]["data"]["label_fraction"]) for r in runs})
    text = (
        selection_labels_text(runs)
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
        order[format_value(value)] = value if isinstance(value, int) else float("inf")
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


def conditions_section(spec: dict) -> dict[str, Any]:
    """The condition axes, their config keys, values and defaults."""
    rows = []
    for axis, values in spec["conditions"].items():
        default = spec["default"].get(axis, values[0])
        rows.append([axis, AXIS_KEYS.get(axis, axis), ", ".join(format_value(v) for v in values),
                     format_value(default), AXIS_DESCRIPTIONS.get(axis, "config value")])
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
        overrides = ", ".join(f"{k}={format_value(v)}" for k, v in variant["set"].items())
        baselines = ", ".join(f"{f}: {b}" for f, b in variant["baselines"].items())
        rows.append([name, variant["model"], variant["description"] or (entry.description if
                     entry else ""), overrides or "—", baselines or "—"])
    return table(["variant", "model", "description", "overrides", "compared with"], rows)


def hyper_section(configs: dict[str, dict], variants: list[str], runs: list[dict]):
    """Model hyperparameters per variant, and training/evaluation settings shared by all."""
    flat = {v: flatten(configs[v]["model"]) for v in variants if v in configs}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    model_rows = [[k, *[flat[v].get(k, "n/a") if v in flat else "n/a" for v in variants]]
                  for k in keys]
    shared, varying = {}, set()
    for run in runs:
        for key, value in flatten({s: run["config"][s] for s in ("train", "eval")}).items():
            if key in shared and shared[key] != value:
                varying.add(key)
            shared.setdefault(key, value)
    shared_rows = [[k, v] for k, v in shared.items() if k not in varying]
    varying_rows = [[k, *[flatten({s: configs[v][s] for s in ("train", "eval")}).get(k)
                          if v in configs else "n/a" for v in variants]] for k in sorted(varying)]
    return {"model": table(["model.*", *variants], model_rows + varying_rows),
            "shared": table(["setting (all runs)", "value"], shared_rows)}


def metrics_section(runs: list[dict]) -> dict[str, Any]:
    """Every metric key the runs produced, with its family, direction and definition."""
    keys = sorted({k for r in runs for k, v in r["metrics"].items() if isinstance(v, int | float)})
    rows, budgets = [], sorted({k.rsplit("@", 1)[1] for k in keys if "@" in k and
                                k.startswith("probe/")})
    for key in keys:
        family, higher = metric_rule(key)
        if family is None and (not definition(key) or "n_train" in key or "@" in key):
            continue  # bookkeeping, and budgeted copies summarised in one row below
        rows.append([key, family or "descriptive (not compared)",
                     ("higher" if higher else "lower") if family else "—", definition(key)])
    if budgets:
        rows.append([f"probe/<task>/<metric>@<budget> ({', '.join(budgets)})",
                     "descriptive (not compared)", "—",
                     "the linear probe fitted on at most <budget> labelled training points "
                     "(label-efficiency curve); the key without @ is the largest budget"])
    return table(["metric", "family", "better", "definition"], rows)


def statistics_text(spec: dict) -> str:
    """How results are summarised and compared."""
    alpha = fmt(spec["alpha"])
    return (
        "Every table gives the mean over seeds and the 95% t-interval of that mean "
        "(mean ± t₀.₉₇₅,n−1 · sd/√n). Each variant is compared with its baseline for each metric "
        "family (reconstruction = recon/*, nll/*, elbo; generation = gen/*; representation = "
        "probe/*, disent/*; task = task/*), paired by dataset, condition and seed. For each "
        "metric the paired differences (oriented so that positive favours the variant) give a "
        "mean with its 95% t-interval, a paired t-test and a Wilcoxon signed-rank test (SciPy), "
        "and the effect size d_z = mean / sd of the differences. Holm's correction is applied "
        f"across all comparisons of the study. A comparison is a win (loss) when the paired "
        f"t-test gives p < {alpha} in the variant's favour (against it), otherwise a tie; the "
        "Holm-corrected count is reported beside it."
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
