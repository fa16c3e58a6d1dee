"""Study and variant names cannot make a study write outside its directory."""

from __future__ import annotations

from pathlib import Path

from mtvae.report.build import build_report
from mtvae.study.spec import parse_spec
from mtvae.study.study import run_study

HOSTILE = "../../escaped"
SPEC = {
    "name": HOSTILE,
    "datasets": {"shapes": {"tasks": ["shape"]}},
    "base": {"data": {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16},
             "model": {"latent_dim": 2, "encoder": {"arch": "mlp", "hidden": [8]}},
             "train": {"epochs": 1, "batch_size": 32},
             "eval": {"iwae_k": 2, "iwae_n": 4, "n_grid": 4}},
    "variants": {HOSTILE: {"model": "vae"}, "/tmp/abs": {"model": "supervised"}},
    "seeds": [0],
    "metrics": ["recon", "task"],
}


def _named_after_a_hostile_name(root: Path) -> list[Path]:
    """Files or directories called like the last part of a hostile name (``escaped``, ``abs``),
    i.e. a name used as a path instead of a slug."""
    return [p for p in root.rglob("*") if p.name.split(".")[0] in ("escaped", "abs")]


def test_hostile_names_stay_inside_the_study_directory(tmp_path):
    sandbox = tmp_path / "a" / "b"
    sandbox.mkdir(parents=True)
    out = sandbox / "study"
    tmp_before = {p.name for p in Path("/tmp").iterdir()}
    run_study(parse_spec(SPEC), out, workers=1, threads=1, log=lambda _: None, report=build_report)
    assert (out / "report" / "index.html").is_file()
    outside = [p for p in tmp_path.rglob("*") if out not in p.parents and p != out
               and p not in (tmp_path / "a", sandbox)]
    assert outside == []  # nothing escaped to a/ or tmp_path
    # nor inside the study: "../../escaped" from report/figures/ would land in the study itself
    assert _named_after_a_hostile_name(tmp_path) == []
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
        assert ".." not in path.relative_to(out).parts
    # the absolute variant name wrote nothing at its absolute path
    new_in_tmp = {p.name for p in Path("/tmp").iterdir()} - tmp_before
    assert not Path("/tmp/abs").exists() and not [n for n in new_in_tmp if n.startswith("abs")]
    # both hostile names did produce files, as slugs (so the checks above had something to see)
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert "escaped" in html and "/tmp/abs" in html
