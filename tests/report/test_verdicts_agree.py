"""Every printed interval agrees with its verdict, in every generated table and sentence:
HTML, Markdown, LaTeX and the docs snippets. better iff the interval lies above 0, worse iff
below 0 (below −m for a non-inferiority margin m)."""

from __future__ import annotations

import html as html_lib
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mtvae.analysis.results import load_study
from mtvae.report.build import build_report

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[−\-+]?(?:\d[\d.]*(?:e[−\-+]?\d+)?|∞)"
INTERVAL = re.compile(rf"\[({NUMBER}), ({NUMBER})\]")
VERDICT = re.compile(r"\b(better|worse|no evidence|equivalent within ±\S+|non-inferior "
                     r"\(Δ > −\S+\)|identical in every seed)")
MARKS = {r"$\uparrow$": "better", r"$\downarrow$": "worse", r"$\circ$": "no evidence",
         r"$\approx$": "equivalent", r"$\geq$": "non-inferior", "$=$": "identical"}


def _number(text: str) -> float:
    text = text.replace("−", "-").replace("∞", "inf")
    return float(text)


def _margin(verdict: str) -> float:
    match = re.search(r"Δ > −(\S+)\)", verdict)
    return float(match[1]) if match else 0.0


def check(interval: tuple[str, str], verdict: str, where: str) -> str:
    """The verdict the interval gives agrees with the printed one; returns the verdict."""
    low, high = (_number(v) for v in interval)
    claim = verdict.split()[0]
    if claim == "better":
        assert low > 0, where
    elif claim == "worse":
        assert high < 0, where
    else:
        assert not low > 0, where  # neither better ...
        assert not high < -_margin(verdict), where  # ... nor worse
    return claim


def rows_of_markdown(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in md.splitlines() if line.startswith("|")]


def rows_of_html(text: str) -> list[list[str]]:
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", text, re.S):
        rows.append([html_lib.unescape(re.sub(r"<[^>]+>", "", c))
                     for c in re.findall(r"<td>(.*?)</td>", row, re.S)])
    return rows


def rows_of_latex(tex: str) -> list[list[str]]:
    rows = []
    for line in tex.splitlines():
        if "&" not in line or not line.rstrip().endswith(r"\\"):
            continue
        line = (line.replace(r"\ensuremath{-}", "-").replace("{[}", "[").replace("{]}", "]")
                .replace(r"\,\dag{}", " †").replace(r"$\pm$", "±").replace("~", " "))
        cells = []
        for cell in line.rstrip().removesuffix(r"\\").split(" & "):
            for mark, word in MARKS.items():
                if cell.lstrip("{}").startswith(mark):
                    cell = cell.lstrip("{}").replace(mark, "", 1).strip() + f" {word}"
            cells.append(cell.removeprefix("{}"))
        rows.append(cells)
    return rows


def check_rows(rows: list[list[str]], where: str) -> list[str]:
    """Each cell with an interval and a verdict; else a row with one of each."""
    claims = []
    for row in rows:
        paired = False
        for cell in row:
            interval, verdict = INTERVAL.search(cell), VERDICT.search(cell)
            if interval and verdict:
                claims.append(check(interval.groups(), verdict[1], f"{where}: {cell}"))
                paired = True
        if paired:
            continue
        intervals = [m.groups() for c in row for m in INTERVAL.finditer(c)]
        verdicts = [m[1] for c in row if (m := VERDICT.fullmatch(c.removesuffix(" †")))]
        if len(intervals) == 1 and len(verdicts) == 1:
            claims.append(check(intervals[0], verdicts[0], f"{where}: {row}"))
    return claims


SENTENCE = re.compile(rf"Δm? ({NUMBER}) \[({NUMBER}), ({NUMBER})\](?: %)? over [^:]*: "
                      rf"({VERDICT.pattern})")


def check_sentences(text: str, where: str) -> list[str]:
    return [check((m[2], m[3]), m[4], f"{where}: {m[0]}") for m in SENTENCE.finditer(text)]


@pytest.mark.parametrize("which", ["synthetic_study", "borderline_study", "single_task_study"])
def test_no_generated_table_or_sentence_has_an_interval_that_disagrees_with_its_verdict(
        which, request):
    synthetic_study = request.getfixturevalue(which)
    build_report(synthetic_study, formats=("html", "latex"))
    report = synthetic_study / "report"
    md = (report / "report.md").read_text()
    html = (report / "index.html").read_text()
    tex = "\n".join(p.read_text() for p in (report / "latex").glob("*.tex"))
    spec = importlib.util.spec_from_file_location("docs_data", ROOT / "docs/hooks/docs_data.py")
    docs_data = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("docs_data", docs_data)  # dataclasses look their module up there
    spec.loader.exec_module(docs_data)
    snippet = docs_data.answer_excerpt(md, "test")

    claims = {
        "markdown": check_rows(rows_of_markdown(md), "report.md"),
        "html": check_rows(rows_of_html(html), "index.html"),
        "latex": check_rows(rows_of_latex(tex), "latex"),
        "snippet": check_rows(rows_of_markdown(snippet), "docs snippet"),
        "sentences": check_sentences(md, "report.md sentences"),
        "html sentences": check_sentences(html_lib.unescape(html), "index.html sentences"),
    }
    # the check cannot pass vacuously: each format has verdicts, some of them claims
    for where, found in claims.items():
        assert found, where
    assert {"better", "worse"} & set(claims["markdown"])
    assert len(claims["markdown"]) == len(claims["html"])
    assert len(claims["latex"]) >= len(rows_of_markdown(snippet)) - 4  # minus header rows
    if which == "single_task_study":  # multitask vs single-task along the axis, and Δm
        assert re.search(r"multitask vs single-task \(tasks=single\): task/shape/accuracy "
                         r"\(shapes\): Δ \+0\.05 \[[^]]+\] over 2 condition point\(s\) and 3 "
                         r"seeds \([^)]+ at tasks=single [\d.]+\): better", md)
        assert re.search(r"Δm \+[\d.]+ \[\+[\d.]+, \+[\d.]+\] % over 3 seeds: better", md)
        # sup learns shape alike with one task or two: no interval, no verdict
        assert re.search(r"sup: Δm \+0 % in each of 3 seeds, identical in every seed", md)
    if which == "borderline_study":  # where unadjusted 95% intervals would have disagreed
        table = load_study(synthetic_study).table
        half = stats.t.ppf(0.975, table["n"] - 1) * table["sd"] / np.sqrt(table["n"])
        excludes = (table["diff"] - half > 0) | (table["diff"] + half < 0)
        assert (excludes & ~table["verdict"].isin(["better", "worse"])).sum() >= 2
