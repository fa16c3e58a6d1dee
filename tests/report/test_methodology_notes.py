"""A model whose configuration the Methodology must state carries its own note (the
supervised baseline's tuned defaults): it is said once for a study with that model, and not
for one without it."""

from mtvae.models.supervised import SupervisedConfig
from mtvae.report.methodology import label_budget_text


def _run(name: str) -> dict:
    return {"config": {"model": {"name": name}, "train": {"labelled_per_batch": 8}}}


def test_a_study_with_the_supervised_baseline_states_its_defaults_once():
    text = label_budget_text([_run("mtvae"), _run("supervised"), _run("supervised"), _run("vae")])
    assert text.count(SupervisedConfig.methodology) == 1
    assert "linear heads on the encoder body's features" in text


def test_a_study_without_it_does_not():
    text = label_budget_text([_run("mtvae"), _run("vae")])
    assert "supervised baseline is" not in text
    assert "Label-free models" in text  # the vae reads no label
