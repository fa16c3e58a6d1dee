"""Study and variant names cannot make a study write outside its directory."""

from __future__ import annotations

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


def test_hostile_names_stay_inside_the_study_directory(tmp_path):
    sandbox = tmp_path / "a" / "b"
    sandbox.mkdir(parents=True)
    out = sandbox / "study"
    run_study(parse_spec(SPEC), out, workers=1, threads=1, log=lambda _: None)
    assert (out / "report" / "index.html").is_file()
    outside = [p for p in tmp_path.rglob("*") if out not in p.parents and p != out
               and p not in (tmp_path / "a", sandbox)]
    assert outside == []  # nothing escaped to a/, tmp_path or an absolute path
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
    assert "../../escaped" not in {p.name for p in out.rglob("*")}
