"""The Methodology's hyperparameter table names each VQ variant's quantizer in words, also when
its kind is the default (which a resolved config does not write)."""

from mtvae.report.methodology import hyper_section


def test_the_hyperparameter_table_names_the_quantizer_of_each_variant():
    models = {"vq": {"name": "vqvae", "quantizer": {"num_codes": 32, "code_dim": 2, "ema": True}},
              "rot": {"name": "mtvqvae", "quantizer": {"gradient": "rotation"}},
              "fsq": {"name": "vqvae", "quantizer": {"kind": "fsq", "levels": [8, 4]}},
              "vae": {"name": "vae"}}
    configs = {v: {"model": m, "train": {}, "eval": {}} for v, m in models.items()}
    hyper = hyper_section(configs, list(configs), [{"config": c} for c in configs.values()])
    name, vq, rot, fsq, vae = hyper["model"]["rows"][0]
    assert name == "quantizer" and vae == "n/a"
    assert vq.startswith("vq: 32 codes of dimension 2, EMA codebook") and "straight-through" in vq
    assert rot.startswith("vq: 128 codes") and "rotation-trick gradient" in rot
    assert fsq == "fsq: levels [8, 4], 32 implicit codes of dimension 2"


def test_no_quantizer_row_without_a_quantized_model():
    configs = {"vae": {"model": {"name": "vae", "beta": 1.0}, "train": {}, "eval": {}}}
    hyper = hyper_section(configs, ["vae"], [{"config": configs["vae"]}])
    assert all(row[0] != "quantizer" for row in hyper["model"]["rows"])
