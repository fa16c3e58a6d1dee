"""The report: built from results.db alone, every section and figure, escaped, opens in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from mtvae.cli import main
from mtvae.report.build import build_report

SECTIONS = ["## Answer", "## Methodology", "### Data, tasks and label policies",
            "### Conditions", "### Models", "### Architectures and hyperparameters",
            "### Metrics", "### Statistics", "### Seeds, hardware and time", "## Results",
            "### Hypotheses at every condition", "### Trends along numeric axes",
            "### Tested changes and crossovers", "### Metrics per condition", "### Exploratory paired differences",
            "## Figures"]


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])
        self.scripts += tag == "script"


def test_report_from_the_database_alone_has_every_section_and_figure(synthetic_study, hostile,
                                                                    capsys):
    variant = hostile[1]
    assert not (synthetic_study / "runs").exists()
    assert main(["report", str(synthetic_study)]) == 0
    assert "index.html" in capsys.readouterr().out
    report = synthetic_study / "report"
    md = (report / "report.md").read_text()
    at = [md.index(heading) for heading in SECTIONS]
    assert at == sorted(at)  # every section, the Answer first
    assert md.index("## Answer") < md.index("## Methodology") == min(
        md.index(h) for h in SECTIONS[1:])
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    names = {f.split("/")[1].rsplit(".", 1)[0] for f in figures}
    for prefix in ("forest-shapes-task", "forest-shapes-reconstruction",
                   "difference-shapes-label_fraction-task",
                   "axis-shapes-label_fraction-reconstruction", "axis-shapes-label_fraction-task",
                   "pareto-shapes", "reconstructions-shapes-vae", "samples-shapes-vae",
                   "traversals-shapes-mt_b_bold_b", "leakage-shapes-mt_b_bold_b", "curves-shapes"):
        assert prefix in names, (prefix, names)
    for figure in figures:
        assert (report / figure).read_bytes().startswith(b"\x89PNG")
    html = (report / "index.html").read_text()
    parser = _Images()
    parser.feed(html)
    assert len(parser.sources) == len(figures)  # the same figures, embedded
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)
    assert "http://" not in html and "https://" not in html  # opens offline
    # the Answer is generated from the numbers: the hypotheses' table and sentences
    answer = md[md.index("## Answer"):md.index("## Methodology")]
    shown = variant.replace("<", "&lt;").replace(">", "&gt;")  # Markdown shows it as text
    assert f"| {shown} vs vae: nll/iwae | shapes |" in answer
    assert f"{shown} head vs vae probe: shape accuracy" in answer
    assert "Holm's correction across the" in answer and "Learnability" in answer
    assert answer.index("**Task performance.**") < answer.index("### Pooled effects") < \
        answer.index("### At every condition point")
    assert "won" not in md and "Win / tie" not in md  # no counting over every key
    h2 = re.findall(r"<h2[^>]*>([^<]+)</h2>", html)
    assert h2[0] == "Answer" and h2[1] == "Methodology"
    assert html.index('id="answer"') < html.index("<table")


def test_user_strings_are_escaped_in_html(synthetic_study, hostile):
    html = build_report(synthetic_study).read_text()
    assert hostile[0] not in html and hostile[1] not in html
    assert "&lt;script&gt;alert(" in html and "mt&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<i>for tests</i>" not in html
    md = (synthetic_study / "report" / "report.md").read_text()  # Markdown passes HTML on
    assert hostile[0] not in md and hostile[1] not in md and "<i>for tests</i>" not in md
    assert "&lt;script&gt;alert(" in md and "mt&lt;b&gt;bold&lt;/b&gt;" in md
    parser = _Images()
    parser.feed(html)
    assert parser.scripts == 1  # only the report's own self-check


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None,
                    reason="Debian's chromium is not installed (make install-dev installs it)")
def test_html_report_renders_in_headless_chromium(synthetic_study, tmp_path):
    index = build_report(synthetic_study)
    md = (index.parent / "report.md").read_text()
    n_figures = len(re.findall(r"!\[[^\]]*\]\(figures/", md))
    profile = tmp_path / "profile"
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--virtual-time-budget=5000", "--dump-dom", index.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body[^>]*>", done.stdout)
    assert body, done.stdout[:500]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(0)))
    assert attrs.get("images") == str(n_figures), attrs
    assert attrs.get("images-ok") == "true", attrs
    assert attrs.get("errors") == "", attrs
