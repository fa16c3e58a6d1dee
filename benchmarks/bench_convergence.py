"""How many epochs the presets' models need to converge (issue #25, item 5).

Run: ``python benchmarks/bench_convergence.py [PRESET:VARIANT ...] [--max-epochs N]
[--patience K] [--seed S]`` (1 thread; minutes per run)

Each named variant trains once at its preset's centre point (the first point of the preset's
plan; the first dataset unless ``PRESET:VARIANT@DATASET``), with the preset's own config but
the budget replaced by ``--max-epochs`` and early stopping with ``--patience``, and reports
the epochs it trained, its best epoch, whether it converged by the rule of
``mtvae.train.convergence``, and its training seconds per epoch on this machine. The presets'
budgets (their comments) cite these numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import machine
from mtvae.pipeline import train_run
from mtvae.runconfig import resolve_config
from mtvae.study.spec import load_preset

HERE = Path(__file__).resolve().parent
DEFAULT = ("quick:vae", "quick:mtvae", "quick:supervised", "quick:m2", "quick:vqvae",
           "standard:vae@mnist", "standard:mtvae@mnist")


def centre_config(preset: str, variant: str, dataset: str | None, seed: int) -> dict:
    spec = load_preset(preset)
    plan = spec.plan()
    centre = plan.cells[0].point
    dataset = dataset or next(iter(spec.datasets))
    for cell in plan.cells:
        if (cell.point, cell.variant, cell.dataset) == (centre, variant, dataset) and (
                cell.seed == seed):
            return plan.runs[cell.run_id].config
    raise SystemExit(f"no {variant} on {dataset} at the centre of {preset}, seed {seed}")


def measure(name: str, args) -> dict:
    preset, _, rest = name.partition(":")
    variant, _, dataset = rest.partition("@")
    config = centre_config(preset, variant, dataset or None, args.seed)
    config["train"] |= {"epochs": args.max_epochs, "early_stopping": args.patience,
                        "threads": 1}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = train_run(resolve_config(config), Path(tmp) / "run")
        wall = time.perf_counter() - start
        results = json.loads((run / "results.json").read_text())
        curve = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    curve = [r["val/loss"] for r in curve if r.get("kind") == "epoch"]
    return {"run": name, "epochs": results["train/epochs_trained"],
            "best": results["train/best_epoch"], "converged": results["train/converged"],
            "s_per_epoch": results["time/train_s"] / results["train/epochs_trained"],
            "wall_s": wall, "val_curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="*", default=list(DEFAULT))
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.runs:
        rows.append(measure(name, args))
        r = rows[-1]
        print(f"{name}: {r['epochs']} epochs, best {r['best']}, converged {r['converged']}, "
              f"{r['s_per_epoch']:.1f} s/epoch", file=sys.stderr, flush=True)
    (HERE / "results" / "convergence.json").write_text(json.dumps(
        {"machine": machine(), "args": vars(args), "rows": rows}, indent=1) + "\n")
    print("### Epochs to convergence at the presets' centre points\n")
    print(f"Seed {args.seed}, each preset's own config with at most {args.max_epochs} epochs "
          f"and early stopping with patience {args.patience} (min_improvement 0.1%), 1 thread. "
          "Seconds per epoch: training time on this (shared) machine.\n")
    print("| preset:variant | epochs trained | best epoch | converged | s / epoch |")
    print("|---|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['run']} | {r['epochs']} | {r['best']} | {'yes' if r['converged'] else 'no'}"
              f" | {r['s_per_epoch']:.1f} |")
    print("\nRaw numbers (with each validation curve): `convergence.json`")


if __name__ == "__main__":
    main()
