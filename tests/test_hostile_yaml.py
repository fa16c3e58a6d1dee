"""Hostile YAML in configs, study specs, run files and npz sidecars: a document nested 600 or 1,000
levels deep, an alias bomb (289 bytes that expand to billions of values) and an alias that
holds itself are refused at once with exit 2 and one line naming the file, and no message
quotes an unbounded value (issue #29)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers_runs import TINY, run_cli, train_argv
from mtvae.errors import quoted
from mtvae.safe_yaml import MAX_YAML_CHARS, YAMLLimitError, load_yaml

BOMB = ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n")  # 9**9 = 387,420,489 x's
DEEP_BLOCK = "".join(f"{' ' * i}k:\n" for i in range(600)) + " " * 600 + "v: 1\n"
DEEP_FLOW = "[" * 1000 + "]" * 1000
CYCLE = "a: &a [1, *a]\n"


def nested(key: str, text: str) -> str:
    """``text`` (a mapping document) indented under ``key``."""
    return f"{key}:\n" + "".join(f"  {line}\n" for line in text.splitlines())


@pytest.mark.parametrize("text, problem", [
    (BOMB, "aliases (*name) expand it to more than 100,000 values"),
    (DEEP_BLOCK, "nested more than 100 levels deep"),
    (DEEP_FLOW, "nested more than 100 levels deep"),
    (CYCLE, "refers to a mapping or list that holds it"),
    ("x: " + "y" * (MAX_YAML_CHARS + 1), "more than the 1,000,000"),
])
def test_bounded_loader_refuses_what_would_exhaust_the_process(text, problem):
    with pytest.raises(YAMLLimitError, match=problem.replace("(", r"\(").replace("*", r"\*")
                       .replace(")", r"\)")):
        load_yaml(text)


def test_anchors_and_aliases_within_the_bounds_still_work():
    """The shipped full preset shares one baselines mapping between variants this way."""
    assert load_yaml("a: &b {x: 1}\nc: *b\nd: {<<: *b, y: 2}\n") == {
        "a": {"x": 1}, "c": {"x": 1}, "d": {"x": 1, "y": 2}}
    assert load_yaml("- &s [1, 2]\n- [*s, *s]\n") == [[1, 2], [[1, 2], [1, 2]]]


def test_every_safe_load_document_of_the_shipped_presets_loads_the_same():
    from mtvae.study.spec import preset_names, preset_text

    for name in preset_names():
        assert load_yaml(preset_text(name)) == yaml.safe_load(preset_text(name))


def one_line_refusal(capsys, *argv) -> str:
    status, _, err = run_cli(capsys, *argv)
    assert status == 2, err
    assert err.startswith("mtvae: error: ") and err.strip().count("\n") == 0, err
    assert len(err) < 1000, err[:2000]
    return err


@pytest.mark.parametrize("text", [BOMB, DEEP_BLOCK, CYCLE], ids=["bomb", "deep", "cycle"])
def test_a_hostile_config_file_is_exit_2_naming_it(capsys, tmp_path, text):
    config = tmp_path / "c.yaml"
    config.write_text(nested("model", nested("tasks", text)) if text is BOMB else text)
    err = one_line_refusal(capsys, *train_argv(tmp_path / "r"), "--config", config)
    assert f"Config file '{config}' is not valid YAML" in err
    assert not (tmp_path / "r").exists()


def test_a_hostile_set_value_is_exit_2(capsys, tmp_path):
    err = one_line_refusal(capsys, *train_argv(tmp_path / "r"), "--set",
                           "model.tasks=" + DEEP_FLOW)
    assert "Bad --set 'model.tasks=[[[[" in err and "nested more than 100 levels" in err


SPEC = ("name: t\ndatasets: {shapes: {tasks: [shape]}}\nvariants: {vae: {model: vae}}\n"
        "metrics: [recon]\n")


@pytest.mark.parametrize("key", ["seeds", "description"])
def test_a_spec_with_an_alias_bomb_is_refused_without_expanding_it(capsys, tmp_path, key):
    spec = tmp_path / "s.yaml"
    spec.write_text(BOMB + SPEC + f"{key}: *i\n")
    err = one_line_refusal(capsys, "study", "--spec", spec, "--out", tmp_path / "out")
    assert f"Study spec '{spec}' is not valid YAML" in err and "expand it to more" in err
    assert not (tmp_path / "out").exists()


def test_a_spec_quotes_a_long_bad_value_shortened(capsys, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC + "seeds: [" + ", ".join(["-1"] * 20000) + "]\n")
    err = one_line_refusal(capsys, "study", "--spec", spec, "--out", tmp_path / "out")
    assert "seeds" in err and "..." in err


@pytest.mark.parametrize("seeds, problem", [
    ("[1.0e+30]", "'seeds.0'"), ("[1000000000000000000000000000000]", "integer settings lie "
                                  "within +-2,147,483,647"), ("1000000000", "at least 1 and at most 1,000")])
def test_seeds_beyond_their_bounds_are_refused(capsys, tmp_path, seeds, problem):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC + f"seeds: {seeds}\n")
    err = one_line_refusal(capsys, "study", "--spec", spec, "--out", tmp_path / "out")
    assert problem in err and not (tmp_path / "out").exists()


def test_a_hostile_config_yaml_in_a_run_is_reported_as_damaged(capsys, tmp_path):
    run = tmp_path / "r"
    assert run_cli(capsys, *train_argv(run))[0] == 0
    (run / "config.yaml").write_text(DEEP_BLOCK)
    err = one_line_refusal(capsys, "evaluate", run)
    assert f"'{run / 'config.yaml'}' is damaged: it is not valid YAML" in err


def write_npz_with_sidecar(tmp_path: Path, sidecar: bytes) -> Path:
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((40, 1, 16, 16), dtype=np.float32), y_c=np.arange(40) % 3)
    (tmp_path / "d.yaml").write_bytes(sidecar)
    return path


@pytest.mark.parametrize("sidecar, problem", [
    (BOMB.encode(), "expand it to more than 100,000 values"),
    (b"tasks:\n  c: {kind: categorical\n  n_classes: 3}\n", "(line 3, column"),
    ("tasks: {c: {kind: catégorical}}\n".encode("latin-1"), "it is not UTF-8 text"),
])
def test_a_bad_sidecar_is_one_paragraph_naming_it(capsys, tmp_path, sidecar, problem):
    npz = write_npz_with_sidecar(tmp_path, sidecar)
    err = one_line_refusal(capsys, "train", "--model", "vae", "--data", f"npz:{npz}",
                           "--out", tmp_path / "r", *TINY)
    assert f"Cannot read the sidecar file '{tmp_path / 'd.yaml'}': " in err and problem in err
    assert "It must be UTF-8 YAML describing the tasks of 'd.npz'" in err
    assert not (tmp_path / "r").exists()


def test_quoted_never_prints_an_unbounded_value():
    huge: list = ["x"] * 9
    for _ in range(8):
        huge = [huge] * 9
    assert len(quoted(huge)) <= 80 and len(quoted("y" * 10**6)) <= 80
    assert quoted(10**30) == "1000000000000000000000000000000" and quoted("ab") == "'ab'"
