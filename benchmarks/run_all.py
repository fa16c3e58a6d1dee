"""Run every ``benchmarks/bench_*.py`` and write their Markdown sections into BENCHMARKS.md.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/run_all.py [--only NAME ...]``).
Each script measures its contenders in the same run and prints a Markdown section; this
script adds the command, date and machine and keeps sections of scripts not re-run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
TARGET = HERE.parent / "BENCHMARKS.md"
HEADER = """# Benchmarks

Every number below comes from `make bench` (which runs `benchmarks/run_all.py`); each section
names its script, so one comparison can be re-run alone with
`.venv/bin/python benchmarks/<script>.py`. Contenders are measured in the same run,
alternating, and reported as median with min-max spread and as ratios against a reference
measured in that run. Raw numbers: `benchmarks/results/*.json`.
"""


def run_script(path: Path) -> str:
    """Run one benchmark script; return its Markdown section with a provenance line."""
    start = dt.datetime.now(dt.timezone.utc)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          cwd=HERE.parent, check=False)
    body = proc.stdout.strip() or f"(no output; exit {proc.returncode})\n\n```\n{proc.stderr[-2000:]}\n```"
    stamp = start.strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!-- section: {path.stem} -->\n## `{path.name}`\n\n"
            f"Command: `python benchmarks/{path.name}` — run {stamp} on {os.cpu_count()} CPUs.\n\n"
            f"{body}\n")


def existing_sections(text: str) -> dict[str, str]:
    """Sections of an earlier BENCHMARKS.md by script name."""
    parts = re.split(r"(?=<!-- section: )", text)
    sections = {}
    for part in parts:
        match = re.match(r"<!-- section: (\S+) -->", part)
        if match:
            sections[match.group(1)] = part.rstrip() + "\n"
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="script names to run (e.g. bench_shapes)")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    sections = existing_sections(TARGET.read_text()) if TARGET.is_file() else {}
    for path in scripts:
        if args.only and path.stem not in args.only:
            continue
        print(f"running {path.name} ...", flush=True)
        sections[path.stem] = run_script(path)
    ordered = [sections[p.stem] for p in scripts if p.stem in sections]
    TARGET.write_text(HEADER + "\n" + "\n".join(ordered))
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
