"""``make docs-data`` (docs/hooks/docs_data.py): snippets generated from a study directory, with
its date, machine and commit, and README.md rewritten only between its markers."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import sqlite3
import sys
from pathlib import Path

import pytest

from mtvae.report.build import build_report

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("docs_data", ROOT / "docs" / "hooks" / "docs_data.py")
docs_data = importlib.util.module_from_spec(_spec)
sys.modules["docs_data"] = docs_data  # dataclasses look their module up there
_spec.loader.exec_module(docs_data)

README = """# project

Text before, with a number typed by hand: 42.

<!-- docs-data:quick-run -->
stale run paragraph
<!-- /docs-data -->

Between the two regions.

<!-- docs-data:quick-answer -->
| stale | table |
<!-- /docs-data -->

Text after.
"""


@pytest.fixture
def reported_study(synthetic_study):
    build_report(synthetic_study)
    return synthetic_study


def outside(text: str) -> str:
    return re.sub(r"(<!-- docs-data:[a-z-]+ -->\n).*?(<!-- /docs-data -->)", r"\1\2", text,
                  flags=re.DOTALL)


def test_snippets_carry_the_answer_date_machine_and_replace_only_the_marked_regions(
        reported_study, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    if not (reported_study / "study.yaml").is_file():  # the spec a study stores as it runs
        (reported_study / "study.yaml").write_text("name: synthetic\n", encoding="utf-8")
    out, assets = tmp_path / "generated", tmp_path / "assets"
    parts = docs_data.generate(tmp_path, {"quick": reported_study,
                                          "standard": tmp_path / "no-such-study"},
                               readme=readme, out=out, assets=assets)
    assert sorted(p.name for p in out.iterdir()) == [  # a missing study gets placeholders
        "quick-answer.md", "quick-replication-power.md", "quick-replication-sets.md",
        "quick-replication.md", "quick-run.md", "standard-answer.md", "standard-centre.md",
        "standard-run.md"]
    for name in ("quick-replication.md", "quick-replication-power.md",
                 "quick-replication-sets.md"):
        assert "make docs-data" in (out / name).read_text(encoding="utf-8")
    answer = (out / "quick-answer.md").read_text(encoding="utf-8")
    report = (reported_study / "report" / "report.md").read_text(encoding="utf-8")
    section = report.split("## Answer")[1].split("\n## ")[0]
    table = [line.rstrip() for line in section.splitlines() if line.startswith("|")]
    assert table[0].startswith("| hypothesis | dataset | points |") and table[0] in answer
    assert all(row in answer for row in table)  # the pooled and per-point tables, as generated
    assert "**Task performance.** Pooled over the condition points" in answer  # the first screen
    assert "**At every condition point**" in answer and "###" not in answer
    assert "- Learnability on shapes" in answer and "- Pooled verdicts: paired t-test" in answer
    assert "## Methodology" not in answer and "Forest plot" not in answer
    run = (out / "quick-run.md").read_text(encoding="utf-8")
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    n_runs = sqlite3.connect(reported_study / "results.db").execute(
        "SELECT COUNT(*) FROM runs").fetchone()[0]
    assert f"{n_runs} runs ({n_runs} done, none failed)" in run
    assert "30 s of wall time over 1 session(s) on 2 worker(s) × 1 thread(s)" in run
    assert f"finished {today}" in run and "test CPU, 2 cores" in run and "test" in run
    assert "mtvae commit unknown" in run  # tmp_path is no git checkout
    assert "do not edit" in answer.splitlines()[0]
    # the missing standard study gets a placeholder saying how to produce it
    assert "No finished `standard` study" in parts["standard-run"]
    # README: the marked regions hold the snippets, everything else is byte for byte the same
    new = readme.read_text(encoding="utf-8")
    assert outside(new) == outside(README)
    assert "stale" not in new and parts["quick-answer"] in new and parts["quick-run"] in new
    assert (assets / "quick-forest-task.png").read_bytes().startswith(b"\x89PNG")
    # a second run changes nothing; a standard study that goes missing keeps its snippets
    # while they were generated from the preset as it is now, and not once it has changed
    current = f"<!-- from standard/, spec {docs_data.preset_spec('standard')}; -->\nkept\n"
    (out / "standard-run.md").write_text(current, encoding="utf-8")
    (out / "standard-answer.md").write_text("<!-- spec 0123456789ab; -->\nold\n", encoding="utf-8")
    docs_data.generate(tmp_path, {"quick": reported_study, "standard": None},
                       readme=readme, out=out, assets=assets)
    assert readme.read_text(encoding="utf-8") == new
    assert (out / "standard-run.md").read_text(encoding="utf-8") == current
    assert "of the preset as it is now" in (out / "standard-answer.md").read_text()
    assert f", spec {docs_data._fingerprint((reported_study / 'study.yaml').read_text())};" \
        in answer.splitlines()[0]  # each snippet names the spec it was generated from
    assert not list(tmp_path.glob("**/.*.tmp"))  # atomic writes leave no temporary file


def test_a_replication_pair_writes_the_agreement_and_the_simulated_table(reported_study,
                                                                         tmp_path, monkeypatch):
    import copy

    from stored_study import SPEC, write_study

    from mtvae.study import spec

    # the quick preset's hypotheses name variants the synthetic study lacks: use its own
    monkeypatch.setattr(spec, "load_preset", lambda name: spec.parse_spec(copy.deepcopy(SPEC)))
    other = write_study(tmp_path / "quick-b", copy.deepcopy(SPEC) | {"seeds": [3, 4, 5]})
    out = tmp_path / "generated"
    parts = docs_data.generate(tmp_path, {"quick": reported_study}, out=out,
                               assets=tmp_path / "assets",
                               replication=(reported_study, other), pairs=10)
    agreement = (out / "quick-replication.md").read_text(encoding="utf-8")
    power = (out / "quick-replication-power.md").read_text(encoding="utf-8")
    assert parts["quick-replication-power"] == power
    command = "python docs/hooks/replication.py study quick-b --preset quick"
    assert command in agreement.splitlines()[0] and command in power.splitlines()[0]
    assert "10 pairs of disjoint seed sets" in power and "| seeds per set |" in power
    assert [line.split(" | ")[0] for line in power.splitlines()[-3:]] == ["| 3", "| 5", "| 8"]
    assert "runs/quick-c" in parts["quick-replication-sets"]  # two runs: how to add a third
    # runs that go missing keep both snippets as written
    docs_data.generate(tmp_path, {"quick": reported_study}, out=out, assets=tmp_path / "assets",
                       replication=(tmp_path / "gone", other))
    assert (out / "quick-replication-power.md").read_text(encoding="utf-8") == power


def test_unfinished_or_unknown_is_refused_and_nothing_is_written(reported_study, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README.replace("quick-run", "quick-typo"), encoding="utf-8")
    with pytest.raises(docs_data.DocsDataError, match="unknown marker docs-data:quick-typo"):
        docs_data.generate(tmp_path, {"quick": reported_study}, readme=readme,
                           out=tmp_path / "g", assets=tmp_path / "a")
    assert readme.read_text(encoding="utf-8") == README.replace("quick-run", "quick-typo")
    con = sqlite3.connect(reported_study / "results.db")
    with con:
        con.execute("UPDATE runs SET status = 'queued' WHERE rowid = 1")
    con.close()
    with pytest.raises(docs_data.DocsDataError, match="is not finished"):
        docs_data.generate(tmp_path, {"quick": reported_study}, out=tmp_path / "g2")
    assert not (tmp_path / "g2").exists()
    assert docs_data.main(["--root", str(tmp_path), "--quick", str(tmp_path / "none")]) == 2


def test_commit_and_durations():
    note = docs_data.commit_note(ROOT, dt.datetime.now(dt.timezone.utc).timestamp())
    assert re.search(r"mtvae commit `[0-9a-f]{10}`", note) or "unknown" in note
    assert [docs_data.duration(s) for s in (48, 567, 3830)] == ["48 s", "9 min 27 s",
                                                               "1 h 3 min"]


def test_every_included_snippet_and_readme_marker_is_one_docs_data_writes():
    names = set(docs_data.placeholder("quick")) | set(docs_data.placeholder("standard"))
    included = set()
    for page in (ROOT / "docs").rglob("*.md"):
        included |= set(re.findall(r'^--8<-- "docs/generated/([a-z0-9-]+)\.md"$',
                                   page.read_text(encoding="utf-8"), re.M))
    markers = set(docs_data.MARKER.findall((ROOT / "README.md").read_text(encoding="utf-8")))
    assert {"quick-answer", "quick-run", "standard-answer"} <= included <= names
    assert {m[1] for m in markers} == {"quick-run", "standard-run", "standard-centre"}
    for name in included | {m[1] for m in markers}:  # committed, so the strict docs build finds them
        assert (ROOT / "docs" / "generated" / f"{name}.md").is_file()
    assert (ROOT / "docs" / "assets" / "quick-forest-task.png").is_file()


def test_the_centre_excerpt_keeps_the_centre_column_and_each_datasets_first_task():
    answer = "\n".join([
        "| hypothesis | dataset | a=1, b=x | a=2, b=x | a=1, b=y |",
        "| --- | --- | --- | --- | --- |",
        "| heads [digit] | mnist | +1 c | +2 c | +3 c |",
        "| heads [thickness] | mnist | +4 c | +5 c | +6 c |",
        "| heads [shape] | shapes | +7 c | +8 c | +9 c |",
        "| recon | mnist | −1 c | −2 c | −3 c |",
    ]) + "\n\n- Learnability ...\n"
    # a=1 and b=x are each axis' most common value: the first column is the centre.
    assert docs_data.centre_excerpt(answer) == "\n".join([
        "| hypothesis | dataset | a=1, b=x |",
        "| --- | --- | --- |",
        "| heads [digit] | mnist | +1 c |",
        "| heads [shape] | shapes | +7 c |",
        "| recon | mnist | −1 c |",
    ]) + "\n"
    one_axis = "| hypothesis | dataset | a=1 | a=2 |\n| --- | --- | --- | --- |\n| h | d | 1 | 2 |\n"
    assert docs_data.centre_excerpt(one_axis) is None  # no centre to speak of


def test_the_commit_a_study_recorded_is_the_one_quoted(tmp_path):
    sessions = [{"hardware": {"commit": "0123456789abcdef+"}}]
    note = docs_data.commit_note(ROOT, 0.0, tmp_path, docs_data.recorded_commit(sessions))
    assert note.startswith("mtvae commit `0123456789` (recorded by the study when it started, "
                           "with uncommitted changes")


def test_a_study_records_the_commit_of_the_source_it_runs():
    import subprocess

    from mtvae.study.study import hardware

    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    commit = hardware()["commit"]
    if not head:  # not a git checkout (an unpacked archive): nothing to record
        assert commit is None
    else:
        assert commit.rstrip("+") == head


def test_the_excerpt_keeps_the_generative_objective_line():
    report = "\n".join(["# r", "", "## Answer", "", "intro", "", "", "**Task.** lead", "",
                        "| a |", "| --- |", "| 1 |", "",
                        "- Convergence (rule): vae 3 of 3.",
                        "- Generative objective (the loss less its task terms): mt 0 of 3.",
                        "- Other detail: left out.", "", "## Methodology", ""])
    excerpt = docs_data.answer_excerpt(report, "r")
    assert "- Generative objective (the loss less its task terms): mt 0 of 3." in excerpt
    assert "Other detail" not in excerpt and "- Convergence (rule)" in excerpt
