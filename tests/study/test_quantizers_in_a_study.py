"""The quantizer kinds in a study (issue #28): a VQ-VAE with FSQ and an MT-VQ-VAE with the
rotation trick run, are evaluated with their codebook metrics over their own codes, and the
report's Methodology names each variant's quantizer."""

from __future__ import annotations

from mtvae.report.build import build_report
from mtvae.study.spec import parse_spec
from mtvae.study.store import Store
from mtvae.study.study import run_study

PRIOR = {"model.prior.epochs": 1, "model.prior.hidden": 8, "model.prior.layers": 2}
SPEC = {
    "name": "quantizers",
    "datasets": {"shapes": {"tasks": ["shape"]}},
    "base": {"data": {"n_train": 128, "n_val": 32, "n_test": 32, "image_size": 16},
             "model": {"encoder": {"arch": "mlp", "hidden": [16]}},
             "train": {"epochs": 1, "batch_size": 64},
             "eval": {"iwae_k": 4, "iwae_n": 8, "n_grid": 4}},
    "variants": {
        "fsq": {"model": "vqvae", "set": {"model.n_latents": 2, **PRIOR,
                                          "model.quantizer": {"kind": "fsq", "levels": [4, 3]}}},
        "rotation": {"model": "mtvqvae", "set": {
            "model.n_latents": 2, **PRIOR,
            "model.quantizer": {"num_codes": 8, "code_dim": 2, "gradient": "rotation"}}},
    },
    "seeds": [0],
    "metrics": ["recon", "task", "vq"],
}


def test_fsq_and_rotation_variants_run_in_a_study_with_their_codebook_metrics(tmp_path):
    out = run_study(parse_spec(SPEC), tmp_path / "s", workers=1, threads=1,
                    report=build_report)
    rows = {r["variant"]: r for r in Store(out / "results.db", create=False).runs()}
    assert {v: r["status"] for v, r in rows.items()} == {"fsq": "done", "rotation": "done"}
    for variant, n_codes in (("fsq", 12), ("rotation", 8)):
        metrics = rows[variant]["metrics"]
        assert 1 <= metrics["vq/perplexity"] <= n_codes
        assert metrics["vq/dead"] == round(n_codes * (1 - metrics["vq/usage"]))
    assert "task/shape/accuracy" in rows["rotation"]["metrics"]
    report = (out / "report" / "report.md").read_text()
    assert "fsq: levels [4, 3], 12 implicit codes of dimension 2" in report
    assert "rotation-trick gradient" in report
