"""The report's convergence line, its mark on cells comparing a model that did not converge,
the validation-curve figure and the robustness statement (mtvae.report.convergence)."""

from __future__ import annotations

import copy
import json

import pytest
from stored_study import SPEC, fake_metrics

from mtvae.report.build import StudyData, build_report
from mtvae.report.convergence import MARK, cell_converged, convergence_lines, run_converged
from mtvae.study.expand import expand
from mtvae.study.spec import parse_spec
from mtvae.study.store import Store


def write(out, robust_shift: float = 0.0, converged=lambda run: True, record: bool = True,
          generative=None):
    """A synthetic study: ``converged(run)`` decides each run's record; with ``robustness``
    re-runs whose MT-VAE's nll/iwae is ``robust_shift`` worse than at the study's budget;
    ``generative(run)``: the run's generative record ``(converged, gap)`` (None: none)."""
    raw = copy.deepcopy(SPEC) | {"robustness": {"budget": 4}}
    raw["variants"] = {"vae": {"model": "vae"},
                       "mt": {"model": "mtvae",
                              "baselines": {"reconstruction": "vae", "task": "sup"}},
                       "sup": {"model": "supervised"}}
    spec = parse_spec(raw)
    plan = expand(spec)
    out.mkdir()
    store = Store(out / "results.db")
    store.set_meta("spec", spec.model_dump(mode="json"))
    store.add_plan(plan.runs.values(), plan.cells, plan.robustness)
    robust = {c.run_id for c in plan.robustness}
    for rid, run in plan.runs.items():
        metrics = fake_metrics(run.model, run.config["data"]["label_fraction"], run.seed)
        if rid in robust and run.model == "mtvae":
            metrics["nll/iwae"] += robust_shift
        if record:
            metrics |= {"train/converged": converged(run), "train/epochs_trained": 3,
                        "train/best_epoch": 2}
        if generative is not None and generative(run) is not None:
            done, gap = generative(run)
            metrics |= {"train/generative_converged": done, "train/generative_gap": gap}
        curve = [{"epoch": e, "train/loss": 10 / e, "val/loss": 11 / e + run.seed}
                 for e in (1, 2, 3)]
        store.record({"run_id": rid, "status": "done", "metrics": metrics,
                      "artifacts": {"curve": ("json", json.dumps(curve).encode())}})
    store.close()
    return out


def data_of(out) -> StudyData:
    store = Store(out / "results.db", create=False)
    return StudyData(store.meta("spec"), store.runs(), store.cells(), [], store)


def not_sup_seed_1(run) -> bool:
    return not (run.model == "supervised" and run.seed == 1)


def test_the_line_counts_converged_runs_per_variant(tmp_path):
    data = data_of(write(tmp_path / "s", converged=not_sup_seed_1))
    line = convergence_lines(data)[0]
    # runs, not trainings: the VAE trains once for both label fractions, but has 6 runs
    assert "vae 6 of 6" in line and "mt 6 of 6" in line and "sup 4 of 6" in line
    assert f"marked {MARK}" in line


def test_cells_and_runs_say_whether_they_converged(tmp_path):
    data = data_of(write(tmp_path / "s", converged=not_sup_seed_1))
    point = data.default
    assert cell_converged(data, "shapes", point, "sup") is False
    assert cell_converged(data, "shapes", point, "mt") is True
    assert cell_converged(data, "shapes", point, "nothing") is None
    assert run_converged({"converged": None, "metrics": {"train/converged": False}}) is False
    assert run_converged({"converged": 1}) is True and run_converged({"metrics": {}}) is None


def test_the_report_marks_cells_and_shows_curves_and_robustness(tmp_path):
    out = write(tmp_path / "s", robust_shift=1.0, converged=not_sup_seed_1)
    build_report(out)
    text = (out / "report" / "report.md").read_text()
    marked = [line for line in text.splitlines() if MARK in line and "|" in line]
    assert marked and all("sup" in line for line in marked)  # only cells comparing sup
    assert "Validation curves" in text and (out / "report/figures/convergence-curves.png").is_file()
    # the MT-VAE's nll/iwae advantage (a few hundredths) becomes a loss of about 1 nat
    (sentence,) = [s for s in text.splitlines() if "Budget ×4" in s and "nll/iwae" in s]
    assert "changes sign" in sentence


def test_robustness_keeps_the_sign_of_a_robust_effect(tmp_path):
    data = data_of(write(tmp_path / "s", robust_shift=-1.0))
    (sentence,) = [s for s in convergence_lines(data) if "nll/iwae" in s]
    assert "keeps its sign" in sentence
    before, after = (float(w.rstrip(";")) for w in sentence.split() if w.startswith(("+", "-"))
                     and w[1:2].isdigit())
    assert after == pytest.approx(before + 1.0, abs=0.01)  # lower nats: +1 for the MT-VAE


@pytest.mark.parametrize("shift, where", [(-1.0, "outside"), (0.0, "inside")])
def test_robustness_says_whether_the_longer_budget_lands_inside_the_first_interval(
        tmp_path, shift, where):
    # a shift of 1 nat is far beyond the synthetic seeds' spread; none stays at the estimate
    data = data_of(write(tmp_path / "s", robust_shift=shift))
    (sentence,) = [s for s in convergence_lines(data) if "nll/iwae" in s]
    low, high = (float(v) for v in sentence.split("[", 1)[1].split("]", 1)[0].split(", "))
    assert low < high
    assert sentence.endswith(f"{where} the first interval.")


def test_an_older_study_says_convergence_was_not_recorded(tmp_path):
    data = data_of(write(tmp_path / "s", record=False))
    assert convergence_lines(data)[0].startswith("Convergence: not recorded")
    assert cell_converged(data, "shapes", data.default, "mt") is None


def generative_record(run):
    """The MT-VAE's task terms stop it while its ELBO improves in seed 0 (4 nats given up);
    the VAE's generative objective is its loss; the supervised network has none."""
    if run.model == "supervised":
        return None
    if run.model == "mtvae":
        return (run.seed != 0, 4.0 if run.seed == 0 else 0.5)
    return (True, 0.0)


def test_a_generative_objective_stopped_by_the_tasks_marks_reconstruction_only(tmp_path):
    out = write(tmp_path / "s", generative=generative_record)
    data = data_of(out)
    point = data.default
    assert cell_converged(data, "shapes", point, "mt") is True  # the whole loss converged
    assert cell_converged(data, "shapes", point, "mt", "reconstruction") is False
    assert cell_converged(data, "shapes", point, "vae", "reconstruction") is True
    (line,) = [x for x in convergence_lines(data) if x.startswith("Generative objective")]
    # only models with task terms: 2 of the MT-VAE's 6 runs are seed 0; median gap 0.5
    assert "mt 4 of 6 (median 0.5 above its best)" in line
    assert "vae" not in line.split(":", 2)[2] and "sup " not in line
    build_report(out)
    text = (out / "report" / "report.md").read_text()
    marked = [row for row in text.splitlines() if MARK in row and row.startswith("| ")]
    assert marked and all("nll" in row or "reconstruction" in row for row in marked)
