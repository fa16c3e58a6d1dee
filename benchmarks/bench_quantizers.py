"""Quantizers at matched codebook size on Fashion-MNIST: does the codebook stay alive, what does
it cost in reconstruction and time?

Run: ``python benchmarks/bench_quantizers.py`` (or ``benchmarks/run_all.py --only
bench_quantizers``, which writes its section of BENCHMARKS.md).

The quick preset's VQ-VAE arm (MLP 512-256 body, 5 codes per image, a 32-code codebook of
2-dimensional codes, a small PixelCNN prior) on 5,000 Fashion-MNIST training images, 8 epochs,
with four quantizers of 32 codes: VQ with the straight-through gradient and EMA codebook (the
presets' arm before #28; the reference), VQ with the rotation trick (EMA codebook, and
codebook loss), and FSQ with levels [8, 4] (2 dimensions, 32 codes). Every VQ keeps its
defaults otherwise (dead-code restart after 100 steps). Seeds 0, 1, 2; each round trains every
quantizer once, alternating the order. Metrics are those of ``mtvae evaluate`` on 1,000 test
images (``vq/usage``, ``vq/perplexity``, ``vq/dead``, ``recon/mse``, ``vq/recon_nll``,
``nll/vq_bound``) plus the code usage over the last training epoch; time per epoch is the
trainer's wall time, as a ratio to the reference trained in the same round, and CPU seconds
are the process's own for training and the prior stage.
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from common import machine
from mtvae.config import resolve_config
from mtvae.data.sources import load_dataset
from mtvae.pipeline import evaluate_run, train_run

HERE = Path(__file__).resolve().parent
SEEDS = [0, 1, 2]
EPOCHS = 8
REFERENCE = "vq, straight-through, EMA"
QUANTIZERS = {
    REFERENCE: {"num_codes": 32, "code_dim": 2, "ema": True},
    "vq, rotation, EMA": {"num_codes": 32, "code_dim": 2, "ema": True, "gradient": "rotation"},
    "vq, rotation, codebook loss": {"num_codes": 32, "code_dim": 2, "gradient": "rotation"},
    "fsq [8, 4]": {"kind": "fsq", "levels": [8, 4]},
}
N_CODES = 32
BASE = {
    "data": {"source": "fashion-mnist", "n_train": 5000, "n_val": 500, "n_test": 1000,
             "image_size": 28},
    "model": {"name": "vqvae", "n_latents": 5, "encoder": {"arch": "mlp", "hidden": [512, 256]},
              "prior": {"epochs": 3, "hidden": 16, "layers": 3}},
    "train": {"epochs": EPOCHS, "batch_size": 64, "lr": 0.002, "threads": 1,
              "progress": False},
}
METRICS = ["vq/usage", "vq/perplexity", "vq/dead", "train_usage", "recon/mse", "vq/recon_nll",
           "nll/vq_bound"]


def cpu_model() -> str:
    """The processor's model name (Linux), else the platform's word for it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def last_epoch_usage(run: Path) -> float:
    """``train/vq/epoch_usage`` of the last training epoch (from ``log.jsonl``)."""
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in records if r.get("kind") == "epoch"][-1]["train/vq/epoch_usage"]


def train_and_evaluate(name: str, seed: int, dataset, root: Path) -> dict:
    raw = json.loads(json.dumps(BASE))
    raw["seed"] = seed
    raw["model"]["quantizer"] = QUANTIZERS[name]
    config = resolve_config(raw)
    out = root / f"{len(list(root.iterdir()))}"
    cpu = time.process_time()
    run = train_run(config, out, dataset=dataset)
    cpu = time.process_time() - cpu
    evaluate_run(run, "recon,vq", log=lambda _: None, dataset=dataset)
    results = json.loads((run / "results.json").read_text())  # training's and evaluation's
    row = {key: results[key] for key in METRICS if key in results}
    row.update(train_usage=last_epoch_usage(run), cpu_s=cpu,
               epoch_s=results["time/train_s"] / results["train/epochs"])
    return row


def measure(dataset, root: Path) -> dict[str, list[dict]]:
    """Every quantizer once per seed, alternating the order between rounds."""
    rows: dict[str, list[dict]] = {name: [] for name in QUANTIZERS}
    names = list(QUANTIZERS)
    for i, seed in enumerate(SEEDS):
        for name in names if i % 2 == 0 else names[::-1]:
            rows[name].append(train_and_evaluate(name, seed, dataset, root))
    return rows


def mean_sd(values: list[float]) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    digits = 3 if abs(mean) < 10 else 1
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def print_section(rows: dict[str, list[dict]], info: dict) -> None:
    print("### Quantizers at matched codebook size (32 codes) on Fashion-MNIST\n")
    print(f"VQ-VAE, the quick preset's VQ arm (MLP 512-256, 5 codes per image, 32 codes of 2 "
          f"dimensions), 5,000 Fashion-MNIST training images, {EPOCHS} epochs, seeds "
          f"{', '.join(map(str, SEEDS))}; measured on {info['cpu_model']} "
          f"({info['cpus']} CPUs, 1 torch thread). Test-set metrics on 1,000 images; train "
          "usage is over the last epoch's training codes. Mean ± sd over seeds; time per epoch "
          f"as a ratio to `{REFERENCE}` of the same seed (median, min-max).\n")
    cols = ["vq/usage", "vq/perplexity", "vq/dead", "train_usage", "recon/mse",
            "vq/recon_nll", "nll/vq_bound"]
    print("| quantizer | " + " | ".join(cols) + " | s/epoch | time vs ref | CPU s/run |")
    print("|---|" + "---:|" * (len(cols) + 3))
    reference = rows[REFERENCE]
    for name, runs in rows.items():
        ratios = [r["epoch_s"] / ref["epoch_s"] for r, ref in zip(runs, reference, strict=True)]
        cells = [mean_sd([r[c] for r in runs]) for c in cols]
        print(f"| {name} | " + " | ".join(cells)
              + f" | {statistics.median(r['epoch_s'] for r in runs):.2f}"
              + f" | {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
              + f" | {statistics.median(r['cpu_s'] for r in runs):.0f} |")
    def mean(name: str, key: str) -> float:
        return statistics.fmean(r[key] for r in rows[name])

    # usage first; among quantizers that use as many codes, the more even use (perplexity)
    alive = max(rows, key=lambda n: (round(mean(n, "vq/usage"), 3), mean(n, "vq/perplexity")))
    tied = [n for n in rows if round(mean(n, "vq/usage"), 3) == round(mean(alive, "vq/usage"), 3)]
    print(f"\nHighest test-set codebook usage: {', '.join(f'`{n}`' for n in tied)} "
          f"({mean(alive, 'vq/usage'):.0%} of {N_CODES} codes, mean over seeds); the most even "
          f"use among them: **{alive}** (perplexity {mean(alive, 'vq/perplexity'):.1f}).")


def main() -> None:
    torch.set_num_threads(1)
    raw = resolve_config({**BASE, "model": {**BASE["model"], "quantizer": {}}})
    dataset = load_dataset(raw.data)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(dataset, Path(tmp))
    info = {**machine(), "cpu_model": cpu_model(), "wall_s": time.perf_counter() - start}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "quantizers.json").write_text(json.dumps(
        {"benchmark": "quantizers", "quantizers": QUANTIZERS, "seeds": SEEDS, "base": BASE,
         "results": rows, "machine": info}, indent=2) + "\n")
    print_section(rows, info)


if __name__ == "__main__":
    main()
