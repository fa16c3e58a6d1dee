"""Start-up: wall time of ``import mtvae``, ``mtvae --help``, ``mtvae models`` and a tiny
``mtvae train``, each in fresh processes, against the floors of ``python`` and ``import torch``.

Run: ``python benchmarks/bench_startup.py [--repeats 5]``

Every command runs ``--repeats`` times in a fresh interpreter, the commands alternating
(``common.alternate``); the table gives medians and min-max. ``python -X importtime`` then
shows which top-level imports the training path pays for. Target: ``import mtvae`` under
1.5 s. The tiny training run (1 epoch of 256 ``shapes`` images, batch 128, no progress bar)
is almost all fixed cost: imports, data generation, model set-up, validation, checkpoint and
weight files, which is what a short run feels.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import alternate, machine, summary

HERE = Path(__file__).resolve().parent
PY = sys.executable
MTVAE = str(Path(PY).with_name("mtvae"))
TARGET_S = 1.5
TRAIN_PATH = "import mtvae.cli, mtvae.pipeline, mtvae.train.trainer, mtvae.models.vae"


def commands(tmp: Path) -> dict[str, list[str]]:
    """The measured commands, by label."""
    run = tmp / "run"
    return {
        "`python -c pass` (interpreter floor)": [PY, "-c", "pass"],
        "`python -c 'import torch'` (torch floor)": [PY, "-c", "import torch"],
        "`python -c 'import mtvae'`": [PY, "-c", "import mtvae"],
        "`mtvae --help`": [MTVAE, "--help"],
        "`mtvae models`": [MTVAE, "models"],
        "imports of the `mtvae train` path": [PY, "-c", TRAIN_PATH],
        "`mtvae train` tiny run (1 epoch, 256 images)": [
            MTVAE, "train", "--model", "vae", "--data", "shapes", "--out", str(run), "--overwrite",
            "--set", "train.epochs=1", "--set", "data.n_train=256", "--set", "data.n_val=128",
            "--set", "data.n_test=128", "--set", "train.progress=false",
        ],
    }


def wall(cmd: list[str]) -> float:
    """Seconds of one run of ``cmd``; fails loudly if the command does."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return seconds


def import_breakdown(code: str, top: int = 8) -> list[tuple[str, float]]:
    """Import seconds by top-level package (``python -X importtime``; each module's self time)."""
    proc = subprocess.run([PY, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          check=True)
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)", line)
        if match:
            name = match.group(2).split(".")[0]
            totals[name] = totals.get(name, 0.0) + int(match.group(1)) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(Path(tmp))
        for cmd in cmds.values():  # warm-up: page cache, .pyc files
            wall(cmd)
        runs = alternate({label: (lambda c=cmd: wall(c)) for label, cmd in cmds.items()},
                         args.repeats)
    stats = {label: summary(values) for label, values in runs.items()}
    breakdown = import_breakdown(TRAIN_PATH)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "startup", "seconds": stats,
                                    "train_path_imports_s": dict(breakdown),
                                    "machine": machine()}, indent=2) + "\n")
    mtvae_import = stats["`python -c 'import mtvae'`"]["median"]
    print(f"### Start-up: fresh processes, {args.repeats} alternating rounds\n")
    print("| command | wall s median | min-max |\n|---|---:|---:|")
    for label, s in stats.items():
        print(f"| {label} | {s['median']:.2f} | {s['min']:.2f}-{s['max']:.2f} |")
    verdict = "met" if mtvae_import < TARGET_S else "missed"
    print(f"\n`import mtvae`: {mtvae_import:.2f} s, target under {TARGET_S} s: **{verdict}** "
          "(the package imports its heavy modules lazily; `mtvae --help` and `mtvae models` "
          "import no torch).\n")
    print(f"Where the training path's import time goes (`{TRAIN_PATH}`; `python -X importtime`, "
          "one run, self time of every module summed by top-level package):\n")
    print("| package | s |\n|---|---:|")
    for name, seconds in breakdown:
        print(f"| `{name}` | {seconds:.2f} |")


if __name__ == "__main__":
    main()
