r"""The LaTeX export: chapter bodies that compile with pdflatex, escaped names, stable labels."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from mtvae.cli import main
from mtvae.errors import UserError
from mtvae.report import latex
from mtvae.report.build import build_report
from mtvae.report.latex import escape

TOOLS = ("pdflatex", "pdftotext", "pdftoppm")
needs_tex = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason="pdflatex/pdftotext/pdftoppm are not installed (make install-dev installs Debian's "
           "texlive-latex-base, texlive-latex-recommended and poppler-utils when run as root)")

# Methodology: data, conditions, models, hyperparameters, settings, metrics, sessions, timings;
# Results: pooled effects, the answer's cells; appendix: hypotheses, trends, changes, one per
# dataset x condition point (2: label_fraction 0.1 and 1), exploratory. No categorical axis (no
# levels table), no failed run.
TABLES = 8 + 2 + 3 + 2 + 1


def _text(pdf) -> str:
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@needs_tex
def test_latex_compiles_into_a_pdf_with_every_table_and_figure(synthetic_study, capsys):
    assert main(["report", str(synthetic_study), "--format", "all"]) == 0
    assert "main.pdf" in capsys.readouterr().out
    report = synthetic_study / "report"
    out = report / "latex"
    for name in ("main.tex", "preamble.tex", "methodology.tex", "results.tex", "appendix.tex",
                 "main.pdf"):
        assert (out / name).is_file(), name
    # the same figures as the HTML report, as PDF files
    md = (report / "report.md").read_text()
    n_figures = len(re.findall(r"!\[[^\]]*\]\(figures/", md))
    assert n_figures >= 10
    pdfs = sorted(out.glob("figures/*.pdf"))
    assert len(pdfs) == n_figures and all(p.read_bytes().startswith(b"%PDF") for p in pdfs)
    text = _text(out / "main.pdf")
    tables = re.findall(r"\bTable ([\dA]+\.\d+):", text)
    figures = re.findall(r"\bFigure ([\dA]+\.\d+):", text)
    assert len(set(tables)) == TABLES, tables
    assert len(set(figures)) == n_figures, figures
    # the Results chapter opens with the Answer: the pooled effects are its first table, the
    # cells its second; the detail is in the appendix
    assert re.search(r"^\f?Table 2\.1: Pooled effect of each hypothesis", text, re.M)
    assert re.search(r"^\f?Table 2\.2: The hypotheses \(rows\)", text, re.M)
    assert re.search(r"^\f?Table A\.1: Every hypothesis at every condition", text, re.M)
    assert "Holm’s correction across the study’s hypotheses" in _flat(text)
    results = (out / "results.tex").read_text() + (out / "appendix.tex").read_text()
    assert results.index(r"\section{Answer}") < results.index(r"\begin{longtable}")
    assert r"\toprule" in results and r"\midrule" in results and r"\bottomrule" in results
    for key in ("tab:answer", "tab:hypotheses", "fig:forest-shapes-task",
                "fig:axis-shapes-label_fraction-task",
                "fig:difference-shapes-label_fraction-task"):
        assert rf"\label{{{key}}}" in results, key
    # pdftoppm renders the first page, and it is not blank
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "40", "-png",
                    str(out / "main.pdf"), str(out / "page")], check=True, timeout=60)
    from matplotlib import image

    (page,) = out.glob("page*.png")
    pixels = image.imread(page)
    assert pixels.shape[0] > 200 and pixels.min() < 0.5  # some ink on a white page


HOSTILE = r"a_b & 50% $x$ #1 {c} ~d^e \input{/etc/hostname} \write18{touch PWNED} ^^5c"
HOSTILE_VARIANT = r"mt_v&1%$#{}~^\end"


@needs_tex
def test_names_full_of_latex_specials_compile_and_print_verbatim(make_study, tmp_path):
    description = r"Described } { \ with ^^5c and \csname end\endcsname."
    study = make_study(HOSTILE, HOSTILE_VARIANT, description)
    build_report(study, formats=("pdf",))
    out = study / "report" / "latex"
    assert not list(tmp_path.rglob("PWNED")) and not (out / "PWNED").exists()
    text = _flat(_text(out / "main.pdf"))
    for name in (HOSTILE, HOSTILE_VARIANT, description):
        assert name in text, (name, text[:2000])
    assert text.count(HOSTILE_VARIANT) >= 10  # tables, sentences and captions
    tex = "".join(p.read_text() for p in out.glob("*.tex"))
    for raw in (r"\input{/etc", r"\write18", r"\csname", "^^5c", r"\end{}"):
        assert raw not in tex, raw


def test_two_renders_of_the_same_database_write_identical_tex(synthetic_study):
    out = synthetic_study / "report" / "latex"
    build_report(synthetic_study, formats=("latex",))
    first = {p.name: p.read_bytes() for p in out.glob("*.tex")}
    build_report(synthetic_study, formats=("latex",))
    second = {p.name: p.read_bytes() for p in out.glob("*.tex")}
    assert set(first) == {"main.tex", "preamble.tex", "methodology.tex", "results.tex",
                          "appendix.tex"}
    assert first == second
    labels = re.findall(rb"\\label\{([^}]*)\}", b"".join(first.values()))
    assert len(labels) == len(set(labels))  # every label once
    assert b"tab:answer" in labels and not (synthetic_study / "report" / "index.html").exists()


def test_pdf_without_pdflatex_says_how_to_install_it(synthetic_study, monkeypatch, capsys):
    monkeypatch.setattr(latex, "pdflatex", lambda: None)
    assert main(["report", str(synthetic_study), "--format", "pdf"]) == 2
    err = capsys.readouterr().err
    assert "pdflatex is not installed" in err and "apt-get install texlive-latex-base" in err
    assert (synthetic_study / "report" / "latex" / "results.tex").is_file()  # the .tex is there
    # the study's own formats only skip main.pdf
    build_report(synthetic_study, formats=("html", "latex", "pdf?"))
    assert not (synthetic_study / "report" / "latex" / "main.pdf").exists()


def test_a_missing_latex_package_is_named_with_the_install_command(tmp_path, monkeypatch):
    (tmp_path / "out.txt").write_text("! LaTeX Error: File `lmodern.sty' not found.\n")
    fake = tmp_path / "pdflatex"  # stands in for a TeX without lmodern: fails as pdflatex would
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'out.txt'}\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(latex, "pdflatex", lambda: str(fake))
    (tmp_path / "main.tex").write_text("\\documentclass{report}")
    with pytest.raises(UserError, match=r"package file is missing \(lmodern\.sty\).*lmodern"):
        latex.compile_pdf(tmp_path)


def test_escape_leaves_no_special_character_active():
    specials = r"_&%$#{}~^\[]<>|"
    escaped = escape(specials + "—Δ−±≥²₀\n\n†é ȳ 中")
    bare = re.sub(r"\\[A-Za-z=]+|\\[_&%$#{}]|\{\}|\{\[\}|\{\]\}|\[U\+[0-9A-F]+\]", "",
                  escaped)
    assert not set(bare) & set(specials.replace("{", "").replace("}", "")), bare
    assert escaped.count("{") == escaped.count("}")
    assert "\n" not in escaped and "[U+4E2D]" in escaped and r"\={y}" in escaped
    assert escape("a--b,,c''d") == "a-{}-b,{},c'{}'d"
