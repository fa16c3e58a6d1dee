"""CPU-seconds a label study saves by training label-free models once (``train_once``).

Run: ``python benchmarks/bench_train_once.py``

A label-count study on 32x32 shapes with the quick preset's data, bodies and epochs (4,000
training images, MLP 512-256, 8 epochs): ``vae``, ``vqvae`` (with its PixelCNN
prior), ``mtvae`` (shared latent) and ``supervised`` at ``label_count`` 30 / 300 / all
(per-class balanced), seed 0, metrics recon, task, probe and vq: 12 runs. It runs twice into
fresh directories, once training every run (``train_once=False``, as before) and once sharing
the training of the label-free models (default), and compares the workers' CPU-seconds summed
over runs (``results.db``'s ``cpu_s``: not inflated by other processes sharing the cores) and
the metrics of every run (all but ``time/*`` must agree exactly).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from common import machine
from mtvae.study.spec import parse_spec
from mtvae.study.store import Store
from mtvae.study.study import run_study

HERE = Path(__file__).resolve().parent
SPEC = {
    "name": "train-once",
    "datasets": {"shapes": {"tasks": ["shape", "scale", "x", "y"]}},
    "base": {"data": {"n_train": 4000, "n_val": 500, "n_test": 1000, "image_size": 32,
                      "label_balance": "per_class"},
             "model": {"latent_dim": 10, "encoder": {"arch": "mlp", "hidden": [512, 256]}},
             "train": {"epochs": 8, "batch_size": 64, "lr": 0.002},
             "eval": {"iwae_k": 20, "iwae_n": 100, "probe_budgets": ["all"]}},
    "variants": {
        "vae": {"model": "vae"},
        "vqvae": {"model": "vqvae", "set": {"model.n_latents": 8,
                                            "model.quantizer": {"num_codes": 32, "code_dim": 4,
                                                                "ema": True},
                                            "model.prior": {"epochs": 3, "hidden": 16,
                                                            "layers": 3}}},
        "mtvae": {"model": "mtvae", "set": {"model.layout": "shared"},
                  "baselines": {"representation": "vae", "task": "supervised"}},
        "supervised": {"model": "supervised"},
    },
    "conditions": {"label_count": [30, 300, "all"]},
    "seeds": [0],
    "metrics": ["recon", "task", "probe", "vq"],
}


def measure(out: Path, train_once: bool) -> dict:
    start = time.perf_counter()
    run_study(parse_spec(SPEC), out, workers=2, threads=1, log=lambda _: None,
              train_once=train_once)
    wall = time.perf_counter() - start
    store = Store(out / "results.db", create=False)
    try:
        rows = store.runs()
    finally:
        store.close()
    return {"wall_s": wall, "cpu_s": sum(r["cpu_s"] or 0.0 for r in rows),
            "cpu_by_model": {m: sum(r["cpu_s"] or 0.0 for r in rows if r["model"] == m)
                             for m in sorted({r["model"] for r in rows})},
            "status": sorted({r["status"] for r in rows}), "runs": len(rows),
            "metrics": {r["run_id"]: {k: v for k, v in r["metrics"].items()
                                      if not k.startswith("time/")} for r in rows}}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        every = measure(Path(tmp) / "every", train_once=False)
        once = measure(Path(tmp) / "once", train_once=True)
    same = every["metrics"] == once["metrics"]
    for result in (every, once):
        result.pop("metrics")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "train_once.json").write_text(json.dumps(
        {"benchmark": "train_once", "every": every, "once": once, "same_metrics": same,
         "machine": machine()}, indent=2) + "\n")
    saved = every["cpu_s"] - once["cpu_s"]
    print("### Training label-free models once per label study\n")
    print(f"A {every['runs']}-run label-count study (vae, vqvae, mtvae, supervised x label_count "
          "30 / 300 / all on 4,000 32x32 shapes, MLP 512-256, 8 epochs, seed 0; 2 workers x 1 "
          "thread), run once training every run and once training each label-free model once "
          "and re-evaluating it per label condition. CPU-seconds: the workers' own, summed over "
          "runs.\n")
    print("| mode | CPU s | wall s | " + " | ".join(f"{m} CPU s" for m in every["cpu_by_model"])
          + " |")
    print("|---|---:|---:|" + "---:|" * len(every["cpu_by_model"]))
    for name, r in (("every run trains (before)", every), ("train once (default)", once)):
        print(f"| {name} | {r['cpu_s']:.0f} | {r['wall_s']:.0f} | "
              + " | ".join(f"{v:.0f}" for v in r["cpu_by_model"].values()) + " |")
    print(f"\n**{saved:.0f} CPU-seconds saved ({saved / every['cpu_s']:.0%} of the study)**; every "
          f"run's metrics (all but time/*) {'identical' if same else '**differ**'} in both modes.")


if __name__ == "__main__":
    main()
