"""Default hypotheses answer the research question: per variant one per outcome kind against
its baselines, and multitask vs single-task where a single-task variant of the model exists."""

from __future__ import annotations

import json

import numpy as np

from mtvae.analysis.results import StudyResults


def _study() -> StudyResults:
    spec = {"name": "s", "description": "", "datasets": {"mnist": {"tasks": ["digit", "slant"]}},
            "variants": {"vae": {"model": "vae", "baselines": {}},
                         "mt": {"model": "mtvae", "baselines": {"representation": "vae",
                                                                "reconstruction": "vae"}},
                         "mt-digit": {"model": "mtvae", "baselines": {}}},
            "conditions": {"label_count": [100, 1000]}, "default": {}, "design": "product",
            "seeds": [0, 1, 2], "alpha": 0.05, "hypotheses": []}
    tasks = {"vae": [], "mt": ["digit", "slant"], "mt-digit": ["digit"]}
    rng = np.random.default_rng(0)
    cells, runs = [], []
    for level in (100, 1000):
        point = json.dumps({"label_count": level}, separators=(",", ":"))
        for variant, v in spec["variants"].items():
            for seed in spec["seeds"]:
                rid = f"{variant}-{level}-{seed}"
                metrics = {"nll/iwae": 90 + rng.normal(), "probe/digit/accuracy": 0.8 + rng.normal(
                    0, 0.01), "chance/digit/accuracy": 0.11}
                for task in tasks[variant]:
                    score = "r2" if task == "slant" else "accuracy"
                    metrics[f"task/{task}/{score}"] = 0.85 + (0.05 if variant == "mt" else 0) \
                        + rng.normal(0, 0.01)
                cells.append({"dataset": "mnist", "point": point, "variant": variant,
                              "seed": seed, "run_id": rid})
                runs.append({"run_id": rid, "variant": variant, "model": v["model"],
                             "dataset": "mnist", "seed": seed, "status": "done",
                             "config": {"model": {"name": v["model"], "tasks": tasks[variant]},
                                        "data": {}}, "metrics": metrics})
    return StudyResults(spec, runs, cells)


def test_multitask_vs_single_task_is_a_primary_hypothesis():
    results = _study()
    names = {h.name: h for h in results.hypotheses}
    multi = names["mt multitask vs mt-digit single-task: task/digit/accuracy"]
    assert (multi.variant, multi.baseline, multi.metric, multi.family) == (
        "mt", "mt-digit", "task/digit/accuracy", "task")
    assert "mt vs vae: probe/digit/accuracy" in names  # representation, per task
    assert "mt vs vae: nll/iwae" in names
    # slant: the single-task variant does not learn it, so no multitask comparison on it
    assert not any("slant" in n and "single-task" in n for n in names)
    estimate = next(e for e in results.estimates() if e.hypothesis == multi.name)
    assert estimate.verdict == "better" and estimate.low > 0 and estimate.n_points == 2


def test_a_declared_task_pattern_keeps_only_the_study_tasks():
    base = _study()
    spec = dict(base.spec, datasets={"mnist": {"tasks": ["digit"]}},
                hypotheses=[{"name": "repr", "variant": "mt", "baseline": "vae",
                             "metric": "probe/{task}/accuracy", "baseline_metric": None,
                             "test": "superiority", "margin": 0.0}])
    for run in base.runs:  # probes of a task outside the study's: not a declared hypothesis
        run["metrics"]["probe/parity/accuracy"] = 0.6
    results = StudyResults(spec, base.runs, base.cells)
    assert [h.name for h in results.hypotheses] == ["repr [digit]"]


def test_runs_that_did_not_converge_are_counted_and_said():
    from mtvae.report.findings import hypothesis_sentence

    base = _study()
    base.runs[0]["converged"] = False  # vae at label_count 100, seed 0 (a run-row field)
    # mt, seed 0: or the metric results.json stores (runs.py writes train/converged)
    base.runs[3]["metrics"]["train/converged"] = False
    base.runs[6]["converged"] = False  # mt-digit: not in this comparison
    base.runs[1]["converged"] = True
    results = StudyResults(base.spec, base.runs, base.cells)
    estimate = next(e for e in results.estimates() if e.hypothesis == "mt vs vae: nll/iwae")
    assert [r["variant"] for r in base.runs[:7:3]] == ["vae", "mt", "mt-digit"]
    # both at label_count 100: 2 of the 12 runs (2 models x 2 points x 3 seeds), 1 of 2 points
    assert (estimate.not_converged, estimate.n_runs, estimate.points_not_converged) == (2, 12, 1)
    row = results.pooled[results.pooled["hypothesis"] == estimate.hypothesis].iloc[0]
    cells = results.table[results.table["hypothesis"] == estimate.hypothesis]
    assert list(cells["not_converged"]) == [2, 0]
    sentence = hypothesis_sentence(row, cells, results.changes_table.iloc[0:0],
                                   results.trends.iloc[0:0], 0.05)
    assert sentence.endswith(
        "‡ 2 of 12 runs behind it did not converge (or their generative objective did not), at "
        "1 of 2 condition point(s): its effect may be a property of the training budget, or of "
        "where the task terms stopped training.")


def test_a_generative_objective_that_did_not_converge_marks_only_generative_outcomes():
    from mtvae.report.findings import hypothesis_sentence

    base = _study()
    mt = [r for r in base.runs if r["variant"] == "mt"]
    for run in base.runs:
        run["converged"] = True
        run["metrics"]["train/generative_converged"] = True
        run["metrics"]["train/generative_gap"] = 0.0
    # the whole loss converged, but its task terms stopped training while its ELBO improved
    mt[0]["metrics"].update({"train/generative_converged": False, "train/generative_gap": 4.0})
    results = StudyResults(base.spec, base.runs, base.cells)
    marked = {e.hypothesis: e.not_converged for e in results.estimates()}
    assert marked["mt vs vae: nll/iwae"] == 1  # reconstruction reads the generative objective
    assert marked["mt vs vae: probe/digit/accuracy"] == 0  # representation: the whole loss
    row = results.pooled[results.pooled["hypothesis"] == "mt vs vae: nll/iwae"].iloc[0]
    cells = results.table[results.table["hypothesis"] == "mt vs vae: nll/iwae"]
    sentence = hypothesis_sentence(row, cells, results.changes_table.iloc[0:0],
                                   results.trends.iloc[0:0], 0.05)
    assert "‡ 1 of 12 runs behind it did not converge (or their generative objective" in sentence


def test_a_difference_behind_which_a_run_did_not_converge_is_listed_apart_not_claimed():
    from mtvae.report.findings import lead

    base = _study()
    for run in base.runs:
        run["converged"] = True
        if run["variant"] == "mt":  # 5 nats worse than the VAE: a clear difference
            run["metrics"]["nll/iwae"] += 5.0
    settled = StudyResults(base.spec, base.runs, base.cells)
    nll = next(e for e in settled.estimates() if e.hypothesis == "mt vs vae: nll/iwae")
    assert (nll.verdict, nll.claim) == ("worse", True)
    # its task terms stopped one MT-VAE run while its ELBO still improved
    next(r for r in base.runs if r["variant"] == "mt")["metrics"].update(
        {"train/generative_converged": False, "train/generative_gap": 3.0})
    results = StudyResults(base.spec, base.runs, base.cells)
    by_name = {e.hypothesis: e for e in results.estimates()}
    nll = by_name["mt vs vae: nll/iwae"]
    assert (nll.verdict, nll.claim) == ("worse", False)  # the interval's verdict is kept
    assert by_name["mt multitask vs mt-digit single-task: task/digit/accuracy"].claim  # tasks
    text = lead(results.pooled[results.pooled["family"] == "reconstruction"])
    assert text.startswith("Pooled over the condition points (Holm across the study's "
                           "hypotheses): no claim. Not claimed, as a model behind it did not "
                           "converge")
    assert text.split("converged models): ", 1)[1].startswith(
        "worse in mt vs vae: nll/iwae (mnist) ‡.")
