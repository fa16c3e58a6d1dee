"""``make docs-data``: the numbers the docs quote from study runs, generated from the runs.

Reads finished study directories (``runs/quick`` always; ``runs/standard`` when it exists) and
writes, for each study NAME (``quick``, ``standard``):

* ``docs/generated/NAME-answer.md`` — the first screen of its report's Answer
  (``report/report.md``, section ``## Answer``): one line per outcome kind with a sentence per
  hypothesis, the pooled table, the per-point table, the learnability lines and the line that
  states the tests, as generated;
* ``docs/generated/NAME-run.md`` — one paragraph: runs (done / failed), the measured wall time
  of the study's sessions and the CPU time of its runs (``results.db``), the date it finished,
  the machine it recorded (CPU, cores, platform; RAM where this is the same machine) and the
  mtvae commit it ran (the HEAD of the checkout it ran in, or the last commit before it
  started; a warning on stderr when later commits changed ``src/``);
* ``docs/generated/NAME-centre.md`` — for a study varying several axes around a centre point
  (``standard``), the Answer's per-point table at that point only, one row per hypothesis and dataset
  (the README quotes it);
* ``docs/assets/NAME-forest-task.png`` — the Answer's task forest plot, copied from the report;
* ``docs/generated/quick-replication.md`` — the agreement of two quick studies with disjoint
  seeds (``runs/quick-a``, ``runs/quick-b`` or ``--replication A B``), by
  ``docs/hooks/replication.py`` with the quick preset's hypotheses, and
  ``docs/generated/quick-replication-power.md`` — how often their pooled claims would
  replicate with 3, 5 and 8 seeds per run, simulated from every run's seeds (about a minute);
  both kept as they are when the runs are missing; with a third run or more (``runs/quick-c``,
  ``runs/quick-d``, ... or ``--replication A B C ...``), ``docs/generated/quick-replication-sets.md`` — every pair's
  agreement and each hypothesis' verdict in every run.

The docs pages include the ``.md`` snippets with ``--8<-- "docs/generated/NAME-answer.md"``
(pymdownx.snippets). In ``README.md`` the text between ``<!-- docs-data:NAME-answer -->`` (or
``NAME-run``) and the next ``<!-- /docs-data -->`` is replaced by the snippet; nothing outside
the markers changes, and the file is replaced atomically. A study that is missing keeps its
previous snippets (or gets a placeholder saying how to produce them); a study that is not
finished is refused. Nothing is typed by hand: rerun this after every study run.

    python docs/hooks/docs_data.py [--quick DIR] [--standard DIR] [--root REPO]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"(<!-- docs-data:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /docs-data -->)",
                    re.DOTALL)
HOW = {"quick": "make docs-data", "standard":
       "make demo PRESET=standard STUDY=runs/standard && make docs-data"}


class DocsDataError(Exception):
    """A study directory that cannot be quoted (missing, unfinished, no report)."""


@dataclass
class Study:
    name: str
    path: Path
    runs: int
    done: int
    failed: int
    sessions: list[dict]
    started: float
    finished: float
    cpu_s: float
    answer: str
    forest: Path | None


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def duration(seconds: float) -> str:
    """``9 min 27 s``, ``1 h 3 min``, ``48 s``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


# The Answer's lines after its tables that the excerpt keeps (the per-axis detail is left out).
NOTES = ("- Learnability", "- Convergence", "- Generative objective", "- Budget",
         "- Pooled verdicts")


def answer_excerpt(report_md: str, where: str) -> str:
    """The Answer's first screen: one line per outcome kind with a sentence per hypothesis,
    the pooled table, the per-point table, the learnability, convergence and budget-robustness
    lines and the line stating the tests (subheadings become bold lines, so the excerpt nests
    under any page heading)."""
    start = report_md.find("\n## Answer\n")
    if start < 0:
        raise DocsDataError(f"{where} has no '## Answer' section; rebuild it with `mtvae report`")
    end = report_md.find("\n## ", start + 1)
    lines = report_md[start:end if end > 0 else None].splitlines()[4:]  # after the intro
    figures = next((i for i, line in enumerate(lines) if line.startswith("![")), len(lines))
    lines = lines[:figures]
    tables = [i for i, line in enumerate(lines) if line.startswith("|")]
    if not tables:
        raise DocsDataError(f"{where}: the Answer has no table")
    head = ["**" + line[4:] + "**" if line.startswith("### ") else line.rstrip()
            for line in lines[:tables[-1] + 1]]
    notes = [line.rstrip() for line in lines[tables[-1] + 1:]
             if line.startswith(NOTES)]
    text = "\n".join(head).strip() + "\n\n" + "\n".join(notes)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def answer_table(answer: str) -> list[str]:
    """The per-point table of an Answer excerpt (the table after 'At every condition point')."""
    lines = answer.splitlines()
    marker = next((i for i, line in enumerate(lines) if line.startswith("**At every condition")),
                  None)
    table: list[str] = []
    for line in lines[(marker or 0):]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    return table


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def centre_excerpt(answer: str) -> str | None:
    """The Answer's table cut to its centre point, one row per hypothesis and dataset.

    The centre is the column whose every axis value is that axis' most common one (in a
    one-factor-at-a-time design, the point every axis varies around); a hypothesis over tasks
    keeps its first task on each dataset (the dataset's main one). None for a table with fewer
    than two axes or no such column."""
    table = answer_table(answer)
    if len(table) < 3:
        return None
    header = _cells(table[0])
    points = [dict(part.split("=", 1) for part in cell.split(", ") if "=" in part)
              for cell in header[2:]]
    axes = {axis for point in points for axis in point}
    if len(axes) < 2:
        return None
    mode = {axis: max((p.get(axis) for p in points), key=[p.get(axis) for p in points].count)
            for axis in axes}
    centre = [i for i, point in enumerate(points) if point == mode]
    if not centre:
        return None
    column, seen = 2 + centre[0], set()
    rows = [f"| hypothesis | dataset | {header[column]} |", "| --- | --- | --- |"]
    for line in table[2:]:
        cells = _cells(line)
        key = (cells[0].split(" [")[0], cells[1])  # hypothesis name (without its task), dataset
        if key not in seen:  # the first task listed: the dataset's main one
            seen.add(key)
            rows.append(f"| {cells[0]} | {cells[1]} | {cells[column]} |")
    return "\n".join(rows) + "\n"


def read_study(name: str, path: Path) -> Study:
    db = path / "results.db"
    if not db.is_file():
        raise DocsDataError(f"{path} holds no results.db: run the study first "
                            f"(`mtvae study --preset {name} --out {path}`)")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        statuses = dict(con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"))
        started, finished, cpu_s = con.execute(
            "SELECT MIN(started_at), MAX(finished_at), TOTAL(cpu_s) FROM runs").fetchone()
        meta = dict(con.execute("SELECT key, value FROM meta"))
    finally:
        con.close()
    runs = sum(statuses.values())
    done, failed = statuses.get("done", 0), statuses.get("failed", 0)
    if not runs or done + failed < runs:
        raise DocsDataError(f"{path} is not finished ({done + failed} of {runs} runs): resume it "
                            f"with the command that started it, then rerun `make docs-data`")
    report = path / "report" / "report.md"
    if not report.is_file():
        raise DocsDataError(f"{path} has no report/report.md: `mtvae report {path}` builds it")
    sessions = json.loads(meta.get("sessions", "[]"))
    forest = sorted((path / "report" / "figures").glob("forest-*-task.png"))
    return Study(name, path, runs, done, failed, sessions, started, finished, cpu_s,
                 answer_excerpt(report.read_text(encoding="utf-8"), str(report)),
                 forest[0] if forest else None)


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def recorded_commit(sessions: list[dict]) -> str | None:
    """The source commit the study's last session recorded (``hardware.commit``), if any."""
    return ((sessions[-1].get("hardware") or {}).get("commit") if sessions else None) or None


def commit_note(root: Path, started: float, study_path: Path | None = None,
                recorded: str | None = None) -> str:
    """The commit the study ran (a warning on stderr when ``src/`` changed since).

    A study records the commit of the source it ran (mtvae >= this version); for an older one,
    a study inside another git checkout (a clone kept for long runs) ran that checkout's HEAD,
    and one inside this repository the last commit before it started.
    """
    top = _git(study_path, "rev-parse", "--show-toplevel") if study_path and not recorded else ""
    if recorded:
        commit, how = recorded.rstrip("+"), "recorded by the study when it started"
        if recorded.endswith("+"):
            how += ", with uncommitted changes to `src/`"
    elif top and Path(top).resolve() != root.resolve():
        commit = _git(Path(top), "rev-parse", "HEAD")
        how = "HEAD of the separate checkout it ran in"
        if _git(Path(top), "status", "--porcelain", "--", "src"):
            how += ", which has uncommitted changes to `src/`"
    else:
        when = _utc(started).strftime("%Y-%m-%dT%H:%M:%SZ")
        commit = _git(root, "rev-list", "-1", f"--before={when}", "HEAD")
        how = "the last commit before the study started"
    if not commit:
        return "mtvae commit unknown (not a git checkout)"
    later = _git(root, "rev-list", "--count", f"{commit}..HEAD", "--", "src")
    if later and later != "0":
        print(f"docs-data: warning: {later} commit(s) after {commit[:10]}, the one the study in "
              f"{study_path or '?'} ran, changed src/: its numbers may be stale (rerun the "
              f"study, then make docs-data)", file=sys.stderr)
    return f"mtvae commit `{commit[:10]}` ({how})"


def _ram_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def machine(sessions: list[dict]) -> str:
    hw = (sessions[-1].get("hardware") or {}) if sessions else {}
    if not hw:
        return "a machine the study did not record"
    parts = [hw.get("cpu") or "an unnamed CPU", f"{hw.get('cores', '?')} cores"]
    if hw.get("gpu"):
        parts.append(f"GPU {hw['gpu']}")
    ram = _ram_gib()
    if ram and hw.get("platform") == platform.platform():
        parts.append(f"{ram:.0f} GiB RAM")
    parts.append(hw.get("platform") or "an unrecorded platform")
    software = ", ".join(f"{k} {hw[k]}" for k in ("python", "torch", "mtvae") if hw.get(k))
    return ", ".join(parts) + (f" ({software})" if software else "")


def _shown_path(path: Path, root: Path) -> Path:
    """The study's path as a reader of this repository would type it: relative to the checkout
    it lies in (this one, or a separate one kept for a long run), else as given."""
    top = _git(path, "rev-parse", "--show-toplevel")
    for base in (root, Path(top) if top else None):
        if base is not None and path.resolve().is_relative_to(base.resolve()):
            return path.resolve().relative_to(base.resolve())
    return path


def run_paragraph(study: Study, root: Path) -> str:
    wall = sum(s.get("wall_s") or 0.0 for s in study.sessions)
    layout = ", ".join(sorted({f"{s.get('workers')} worker(s) × {s.get('threads')} thread(s)"
                               for s in study.sessions})) or "an unrecorded layout"
    failed = f", {study.failed} failed" if study.failed else ", none failed"
    shown = _shown_path(study.path, root)
    commit = commit_note(root, study.started, study.path, recorded_commit(study.sessions))
    return (f"The `{study.name}` study in `{shown}`: {study.runs} runs ({study.done} done"
            f"{failed}) in {duration(wall)} of wall time over {len(study.sessions)} session(s) "
            f"on {layout} (its runs used {study.cpu_s / 60:.1f} CPU-minutes; the report is "
            f"built after that), finished {_utc(study.finished):%Y-%m-%d %H:%M} UTC on "
            f"{machine(study.sessions)}; {commit}.\n")


def _stamp(study: Study) -> str:
    spec = study.path / "study.yaml"
    fingerprint = _fingerprint(spec.read_text(encoding="utf-8")) if spec.is_file() else "none"
    return (f"<!-- generated by `make docs-data` (docs/hooks/docs_data.py) from "
            f"{study.path.name}/, finished {_utc(study.finished):%Y-%m-%d}, spec "
            f"{fingerprint}; do not edit -->\n\n")


def _fingerprint(spec_text: str) -> str:
    return hashlib.sha256(spec_text.encode("utf-8")).hexdigest()[:12]


def preset_spec(name: str) -> str:
    """The fingerprint of preset ``name`` as a study of it stores its spec (study.yaml)."""
    from mtvae.study.spec import load_preset, spec_yaml

    return _fingerprint(spec_yaml(load_preset(name)))


def still_current(name: str, snippet: str) -> bool:
    """A kept snippet of a study that is not here to re-read is quoted only while it was
    generated from the preset as it is now: a changed preset makes its numbers history."""
    return f", spec {preset_spec(name)};" in snippet


def snippets(study: Study, root: Path) -> dict[str, str]:
    parts = {f"{study.name}-answer": _stamp(study) + study.answer,
             f"{study.name}-run": _stamp(study) + run_paragraph(study, root)}
    centre = centre_excerpt(study.answer)
    if centre:
        parts[f"{study.name}-centre"] = _stamp(study) + centre
    return parts


def placeholder(name: str) -> dict[str, str]:
    text = (f"*No finished `{name}` study of the preset as it is now was found when these "
            f"pages were generated (a study of an earlier version of a preset is not quoted): "
            f"`{HOW[name]}` produces this part.*\n")
    keys = ("answer", "run", "centre") if name == "standard" else ("answer", "run",
                                                                    "replication",
                                                                    "replication-power",
                                                                    "replication-sets")
    if name == "quick":
        return {f"{name}-{key}": (REPLICATION_HOW if key.startswith("replication") else text)
                for key in keys}
    return {f"{name}-{key}": text for key in keys}


REPLICATION_HOW = ("*No pair of quick studies with disjoint seeds was found when these pages were "
                   "generated: run the quick preset into runs/quick-a and, with its seeds "
                   "replaced by as many others (`seeds: [8, ..., 15]`), into runs/quick-b, then "
                   "`make docs-data`.*\n")


SETS_HOW = ("*Only two quick studies with disjoint seeds were found when these pages were "
            "generated: a third one in runs/quick-c (seeds 16-23) adds the comparison of every "
            "pair.*\n")


def replication_snippet(pair: tuple[Path, ...] | None, out: Path,
                        pairs: int | None = None) -> dict[str, str]:
    """``quick-replication`` and ``quick-replication-power``: the agreement of two quick runs
    and how often their pooled claims would replicate at 3, 5 and 8 seeds, simulated from
    every run given (docs/hooks/replication.py), or the snippets written before, or a
    placeholder saying how to produce them. ``pairs``: simulated pairs of seed sets (default: replication.PAIRS).
    ``pair``: two runs, or more (``quick-replication-sets`` compares every pair of them)."""
    keys = ("quick-replication", "quick-replication-power", "quick-replication-sets")
    if pair is None or not all(p.exists() for p in pair[:2]):
        return {key: (out / f"{key}.md").read_text(encoding="utf-8")
                if (out / f"{key}.md").is_file() else REPLICATION_HOW for key in keys}
    import importlib.util

    spec = importlib.util.spec_from_file_location("replication", Path(__file__).with_name(
        "replication.py"))
    replication = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("replication", replication)  # dataclasses look their module up
    spec.loader.exec_module(replication)
    runs = {p.name: replication.load_run(p, "quick") for p in pair if p.exists()}  # once each
    loaded = list(runs.values())
    result = replication.compare_results(loaded[0], loaded[1])
    names = (pair[0].name, pair[1].name, "quick")
    more = tuple(runs.items())[2:]
    return {keys[0]: replication.markdown(result, *names),
            keys[1]: replication.power_markdown(result, *names,
                                                pairs=pairs or replication.PAIRS, more=more),
            keys[2]: replication.every_pair(runs, "quick") if len(runs) > 2 else SETS_HOW}


def write_atomic(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fill_markers(text: str, parts: dict[str, str], where: str) -> str:
    """``text`` with every ``<!-- docs-data:NAME -->`` region holding ``parts[NAME]``."""
    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in parts:
            raise DocsDataError(f"{where}: unknown marker docs-data:{name}; "
                                f"known: {', '.join(sorted(parts))}")
        return match[1] + parts[name] + match[4]

    return MARKER.sub(replace, text)


def generate(root: Path, studies: dict[str, Path | None], readme: Path | None = None,
             out: Path | None = None, assets: Path | None = None,
             replication: tuple[Path, ...] | None = None,
             pairs: int | None = None) -> dict[str, str]:
    """Write every snippet, fill README's markers; return the snippets by name.
    ``replication``: two or more quick studies with disjoint seeds, compared for the studies guide
    (``pairs``: the simulated pairs of seed sets of its replication table)."""
    out = out or root / "docs" / "generated"
    assets = assets or root / "docs" / "assets"
    parts: dict[str, str] = {}
    for name, path in studies.items():
        if path is not None and path.exists():
            study = read_study(name, path.resolve())
            new = snippets(study, root)
            if name == "quick" and study.forest is not None:  # the README's picture
                write_atomic(assets / f"{name}-forest-task.png", study.forest.read_bytes())
        elif name == "quick":
            raise DocsDataError(f"the quick study is missing ({path}): `mtvae study --preset "
                                f"quick --out {path}` runs it (make docs-data does)")
        else:
            kept = {key: (out / f"{key}.md").read_text(encoding="utf-8")
                    for key in placeholder(name) if (out / f"{key}.md").is_file()}
            new = {key: kept[key] if key in kept and still_current(name, kept[key]) else text
                   for key, text in placeholder(name).items()}
        for key, text in new.items():
            write_atomic(out / f"{key}.md", text)
        parts |= new
    new = replication_snippet(replication, out, pairs)
    for key, text in new.items():
        write_atomic(out / f"{key}.md", text)
    parts |= new
    if readme is not None:
        text = readme.read_text(encoding="utf-8")
        filled = fill_markers(text, parts, str(readme))
        if filled != text:
            write_atomic(readme, filled)
    return parts


def default_replication(runs: Path) -> list[Path]:
    """``runs/quick-a``, ``runs/quick-b`` and every further ``runs/quick-<letter>`` that
    exists, in order (a and b named even when missing: the snippets then say how to make
    them)."""
    more = sorted(p for p in runs.glob("quick-[c-z]") if p.is_dir())
    return [runs / "quick-a", runs / "quick-b", *more]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this)")
    parser.add_argument("--quick", type=Path, default=None, help="default: ROOT/runs/quick")
    parser.add_argument("--standard", type=Path, default=None,
                        help="default: ROOT/runs/standard (skipped when missing)")
    parser.add_argument("--readme", type=Path, default=None, help="default: ROOT/README.md")
    parser.add_argument("--replication", type=Path, nargs="+", default=None, metavar="RUN",
                        help="two or more quick studies with disjoint seeds (default: "
                        "ROOT/runs/quick-a, ROOT/runs/quick-b and every further "
                        "ROOT/runs/quick-<letter>; skipped when the first two are missing)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    studies = {"quick": args.quick or root / "runs" / "quick",
               "standard": args.standard or root / "runs" / "standard"}
    if args.replication is not None and len(args.replication) < 2:
        parser.error("--replication needs two or more study directories")
    pair = tuple(args.replication or default_replication(root / "runs"))
    try:
        parts = generate(root, studies, args.readme or root / "README.md", replication=pair)
    except DocsDataError as error:
        print(f"docs-data: error: {error}", file=sys.stderr)
        return 2
    for key in sorted(parts):
        print(f"docs-data: wrote docs/generated/{key}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
