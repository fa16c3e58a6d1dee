"""Study throughput by worker/thread layout, and the wall time of README command 1 (`make demo`).

Run: ``python benchmarks/bench_study.py [--repeats 5] [--no-demo]``

Layouts: ``mtvae study`` picks ``--workers``/``--threads`` itself (one single-threaded worker
per core, ``mtvae.study.workers.default_layout``); the alternatives are 1 worker x 2 threads,
2 workers x 1 thread and 1 worker x 1 thread (duplicates of the default are dropped). Each
measurement runs a fresh study on a slice of the ``quick`` preset: its four non-VQ variants
(``vae``, ``mtvae``, ``supervised``, ``m2``) at ``label_count`` 300, seed 0, i.e. four of
quick's 60 runs, unchanged (same data, epochs, evaluation). Runs per hour
= runs / (last run finished - first run started), from the study's ``results.db``, so the
study's start-up and its report are not counted; the whole command's wall time is given too.
The layouts alternate for ``--repeats`` rounds.

Command 1 (``make demo``: install into the existing ``.venv``, a no-op, then the whole quick
study and its report) runs once at the end, into a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from common import alternate, machine, summary

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MTVAE = str(Path(sys.executable).with_name("mtvae"))
SLICE = ("vae", "mtvae", "supervised", "m2")


def slice_spec(path: Path) -> int:
    """Write the quick preset restricted to SLICE x label_count 300 x seed 0; return #runs."""
    from mtvae.study.spec import preset_text

    spec = yaml.safe_load(preset_text("quick"))
    spec["name"] = "quick-slice"
    spec["variants"] = {k: v for k, v in spec["variants"].items() if k in SLICE}
    spec["conditions"] = {"label_count": [300]}
    spec["seeds"] = [0]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return len(SLICE)


def layouts(n_runs: int) -> dict[str, list[str]]:
    """CLI flags of each layout; the default passes none."""
    from mtvae.study.workers import default_layout

    workers, threads = default_layout(n_runs)
    found = {f"default ({workers} worker(s) x {threads} thread(s))": []}
    for w, t in ((1, 2), (2, 1), (1, 1)):
        if (w, t) != (workers, threads):
            found[f"{w} worker(s) x {t} thread(s)"] = ["--workers", str(w), "--threads", str(t)]
    return found


def run_study(cmd: list[str], out: Path) -> dict:
    """Run one study command; its wall time and the runs' span from results.db."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    with sqlite3.connect(out / "results.db") as db:
        n, first, last = db.execute(
            "SELECT COUNT(*), MIN(started_at), MAX(finished_at) FROM runs WHERE status = 'done'"
        ).fetchone()
    return {"wall_s": wall, "runs": n, "span_s": last - first, "runs_per_hour": 3600 * n / (last - first)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-demo", action="store_true", help="skip timing `make demo`")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "study.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_runs = slice_spec(tmp / "slice.yaml")
        counter = iter(range(10**6))

        def measure(flags: list[str]) -> dict:
            out = tmp / f"study{next(counter)}"
            cmd = [MTVAE, "study", "--spec", str(tmp / "slice.yaml"), "--out", str(out), *flags]
            return run_study(cmd, out)

        runs = alternate({name: (lambda f=flags: measure(f)) for name, flags in
                          layouts(n_runs).items()}, args.repeats)
        demo = None
        if not args.no_demo:
            out = tmp / "demo"
            demo = run_study(["make", "--no-print-directory", "demo", f"STUDY={out}"], out)
    stats = {name: {key: summary([r[key] for r in rs]) for key in ("runs_per_hour", "wall_s")}
             for name, rs in runs.items()}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "study", "slice": SLICE, "layouts": stats,
                                    "raw": runs, "demo": demo, "machine": machine()},
                                   indent=2) + "\n")
    print(markdown(stats, demo, n_runs, args.repeats))


def markdown(stats: dict, demo: dict | None, n_runs: int, repeats: int) -> str:
    best = max(s["runs_per_hour"]["median"] for s in stats.values())
    default = next(s for name, s in stats.items() if name.startswith("default"))
    lines = [
        f"### Study throughput by layout ({os.cpu_count()} CPUs)\n",
        f"A {n_runs}-run slice of the `quick` preset ({', '.join(SLICE)}; label count 300; "
        f"seed 0), a fresh study per measurement, {repeats} alternating rounds. Runs/hour = runs "
        "over the span from the first run's start to the last run's end (start-up and report "
        "excluded); wall = the whole `mtvae study` command.\n",
        "| layout | runs/hour median | min-max | vs best | wall s median | min-max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in stats.items():
        r, w = s["runs_per_hour"], s["wall_s"]
        lines.append(f"| {name} | {r['median']:.0f} | {r['min']:.0f}-{r['max']:.0f} | "
                     f"{r['median'] / best:.3f} | {w['median']:.0f} | {w['min']:.0f}-{w['max']:.0f} |")
    ratio = default["runs_per_hour"]["median"] / best
    verdict = "met" if ratio >= 0.95 else "missed"
    lines.append(f"\nDefault layout at {ratio:.3f} of the best measured: target (within 5%) "
                 f"**{verdict}**.")
    if demo:
        lines.append(
            f"\n**README command 1** (`make demo`, after set-up: its install step only "
            f"re-checks the existing `.venv`; then the whole quick study, {demo['runs']} runs, and its "
            f"report), one run: **{demo['wall_s']:.0f} s** wall "
            f"({demo['runs_per_hour']:.0f} runs/hour over its runs' span)."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
