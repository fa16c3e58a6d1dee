r"""The report as LaTeX: chapter bodies a thesis ``\input``s, their figures, a stand-alone wrapper.

``report/latex/`` holds

* ``methodology.tex`` and ``results.tex``: the bodies of a Methodology and a Results chapter
  (sections, tables, figures; no ``\chapter``, no preamble): the Results hold the Answer, its
  tables and its figures only;
* ``appendix.tex``: the detailed tables (every cell, changes, metrics per condition,
  exploratory differences) and the other figures, for an appendix the thesis may ``\input``;
* ``figures/<id>.pdf``: the report's figures, vector PDF from matplotlib (stored run images are
  wrapped in a PDF as they are);
* ``preamble.tex``: the packages the chapters need (booktabs, longtable, array, graphicx);
* ``main.tex``: a ``report``-class wrapper that compiles both chapters stand-alone, and
  ``main.pdf`` once :func:`compile_pdf` ran (pdflatex).

It renders the same context as the HTML and Markdown templates (:func:`build.report_context`):
the same tables and the same generated sentences, escaped here for LaTeX instead of HTML. Every
string from the context passes :func:`escape`, so a study, variant, task or dataset name is
printed, never run: no ``\input``, no ``\write18``, no unbalanced brace survives it. Labels are
derived from names only (``tab:answer``, ``fig:<figure id>``), nothing in the ``.tex`` files
depends on the time of the render, so a rerun on the same database writes the same files.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtvae.errors import UserError
from mtvae.io import atomic_write, write_text
from mtvae.report.figures import Figure, slug

if TYPE_CHECKING:
    from mtvae.analysis.results import StudyResults as StudyData

INSTALL_HINT = ("install pdflatex: `apt-get install texlive-latex-base texlive-latex-recommended lmodern` "
                "on Debian/Ubuntu (`make install-dev` does it when run as root), or any TeX "
                "distribution with booktabs; then run `mtvae report STUDY_DIR --format pdf`")

# --- escaping ----------------------------------------------------------------------------------
_ASCII = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "%": r"\%",
    "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': r"\textquotedbl{}",
    "`": r"\textasciigrave{}", "[": "{[}", "]": "{]}",
}
_MATH = {
    "−": "-", "±": r"\pm", "∓": r"\mp", "×": r"\times", "÷": r"\div", "·": r"\cdot",
    "≥": r"\geq", "≤": r"\leq", "≠": r"\neq", "≈": r"\approx", "∞": r"\infty",
    "√": r"\surd", "⌈": r"\lceil", "⌉": r"\rceil", "⌊": r"\lfloor", "⌋": r"\rfloor",
    "‖": r"\|", "∇": r"\nabla", "∑": r"\sum", "∈": r"\in", "∼": r"\sim", "∝": r"\propto",
    "→": r"\rightarrow", "←": r"\leftarrow", "↑": r"\uparrow", "↓": r"\downarrow",
    "⇒": r"\Rightarrow", "∂": r"\partial", "∘": r"\circ", "′": r"\prime", "°": r"^\circ",
}
_GREEK = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi o pi rho "
          "varsigma sigma tau upsilon phi chi psi omega").split()
_GREEK_UPPER = "A B Gamma Delta E Z H Theta I K Lambda M N Xi O Pi P - Sigma T Upsilon Phi X Psi Omega"
for _i, (_lower, _upper) in enumerate(zip(_GREEK, _GREEK_UPPER.split(), strict=True)):
    _MATH[chr(0x3B1 + _i)] = "o" if _lower == "o" else "\\" + _lower
    if _upper != "-":  # U+03A2 is unassigned (no capital final sigma)
        _MATH[chr(0x391 + _i)] = "\\" + _upper if len(_upper) > 1 else "\\mathrm{" + _upper + "}"
_MATH["ϵ"], _MATH["ϑ"], _MATH["φ"] = r"\epsilon", r"\vartheta", r"\phi"
_TEXT = {
    "—": "---", "–": "--", "“": "``", "”": "''", "‘": "`", "’": "'", "…": r"\ldots{}",
    "†": r"\dag{}", "‡": r"\ddag{}", "•": r"\textbullet{}", "\u00a0": "~", "§": r"\S{}",
    "¶": r"\P{}", "©": r"\copyright{}", "€": r"\texteuro{}", "™": r"\texttrademark{}",
    "«": r"\guillemotleft{}", "»": r"\guillemotright{}", "„": r"\quotedblbase{}",
}
_SUPER = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻ⁿⁱ", "0123456789+-ni", strict=True))
_SUB = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋", "0123456789+-", strict=True))
# combining marks a Latin letter may carry (NFD), as text accents
_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=",
            "\u0306": "u", "\u0307": ".", "\u0308": '"', "\u030a": "r", "\u030b": "H",
            "\u030c": "v", "\u0327": "c", "\u0328": "k"}


def _char(c: str) -> str:
    if c in _ASCII:
        return _ASCII[c]
    if " " <= c <= "~":
        return c
    if c in _MATH:
        return "\\ensuremath{" + _MATH[c] + "}"
    if c in _TEXT:
        return _TEXT[c]
    if c in _SUPER:
        return "\\textsuperscript{" + _SUPER[c] + "}"
    if c in _SUB:
        return "\\textsubscript{" + _SUB[c] + "}"
    if c in "\t\n\r\f\v\u2028\u2029":
        return " "
    if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me"):
        return ""  # controls, format characters (zero width, bidi) and stray marks
    if "\u00c0" <= c <= "\u00ff" or c in "¡¿£¥¦¨ª¬®¯²³´µ¸¹º¼½¾":
        return c  # Latin-1: inputenc (utf8) + T1 fonts print these
    base, *marks = unicodedata.normalize("NFD", c)
    if marks and all(m in _ACCENTS for m in marks) and base.isascii() and base.isalpha():
        out = base if base not in "ij" else "\\" + base  # dotless i / j under an accent
        for mark in marks:
            out = "\\" + _ACCENTS[mark] + "{" + out + "}"
        return out
    return f"[U+{ord(c):04X}]"  # pdflatex has no glyph for it: say which character it was


def escape(value: Any) -> str:
    """``value`` as LaTeX text that prints exactly these characters and runs nothing.

    The ten specials (``\\ { } $ & % # _ ~ ^``) and the characters T1 fonts turn into other
    glyphs (``< > | " ```) become text commands, ``[ ]`` are braced (never an optional
    argument); ligatures that would change the text (``--``, ``,,``, ``''``) are broken; line breaks become spaces (a blank line would end a table
    cell's paragraph); the report's Unicode (Δ, −, ±, ≥, ², ₀, …) becomes math or text
    commands; a character pdflatex cannot print is written as ``[U+XXXX]``.
    """
    text = str(value)
    out = []
    for i, c in enumerate(text):
        piece = _char(c)
        if c in "-,'" and text[i + 1:i + 2] == c:
            piece += "{}"
        out.append(piece)
    return "".join(out)


class TeX(str):
    """A string that is LaTeX already (made here from escaped parts): not escaped again."""


def _finalize(value: Any) -> str:
    return value if isinstance(value, TeX) else escape(value)


def render(template: str, context: dict[str, Any]) -> str:
    """Render ``templates/latex/<template>``; every ``\\VAR{...}`` is escaped unless TeX."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("mtvae.report", "templates/latex"),
                      block_start_string=r"\BLOCK{", block_end_string="}",
                      variable_start_string=r"\VAR{", variable_end_string="}",
                      comment_start_string=r"\#{", comment_end_string="}",
                      line_comment_prefix="%#", autoescape=False, finalize=_finalize,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["table"] = longtable
    env.filters["figure"] = figure
    env.filters["label"] = lambda s: TeX(label(s))
    return env.get_template(template).render(**context)


def label(name: str) -> str:
    """A ``\\label`` key from a name: letters, digits, ``_ . -`` and the ``:`` of the prefix."""
    return re.sub(r"[^A-Za-z0-9_.:-]+", "_", name)


# --- tables --------------------------------------------------------------------------------------
_NUMBER = re.compile(r"^(?:[+\-−±]?(?:\d|n/a|∞)|—$|> \d)")
_CAPACITY = 100  # characters of \footnotesize text on one \linewidth (about; a wide guess)


def _numeric(column: list[str]) -> bool:
    filled = [c for c in column if c not in ("—", "n/a", "")]
    return bool(filled) and all(_NUMBER.match(c) for c in filled)


def column_spec(headers: list[str], rows: list[list[str]]) -> str:
    """``l``/``r`` columns while the table fits the line; the widest ones as ragged ``p``
    columns (sharing the line by their text's length) when it does not. Numbers align
    right."""
    columns = [[r[i] for r in rows] for i in range(len(headers))]
    numeric = [_numeric(c) for c in columns]
    width = [max([len(headers[i]), *map(len, c)]) for i, c in enumerate(columns)]
    natural = [min(w, 60) + 2 for w in width]
    if sum(natural) <= _CAPACITY:
        return "".join("r" if n else "l" for n in numeric)
    fixed = [i for i, w in enumerate(width) if w <= 12]
    room = max(_CAPACITY - sum(natural[i] for i in fixed), 0.3 * _CAPACITY)
    flexible = sum(natural[i] for i, _ in enumerate(width) if i not in fixed)
    # no column narrower than its longest word (words break at spaces and after a slash)
    word = [max(len(w) for c in [headers[i], *col] for w in re.split(r"[ /]", c)) + 1
            for i, col in enumerate(columns)]
    spec = []
    for i, n in enumerate(numeric):
        if i in fixed:
            spec.append("r" if n else "l")
            continue
        share = max(natural[i] / flexible * room, word[i], 6) / _CAPACITY
        align = r"\raggedleft" if n else r"\raggedright"
        spec.append(f">{{{align}\\arraybackslash}}p{{\\dimexpr {share:.3f}\\linewidth"
                    f"-2\\tabcolsep\\relax}}")
    return "".join(spec)


def longtable(t: dict[str, Any], caption: str, key: str, cells: list[list[str]] | None = None,
              note: str = "") -> TeX:
    """A booktabs ``longtable`` (breaks across pages) with caption and ``\\label{key}``.

    ``t`` is a table of the shared context (``headers``, ``rows`` of display strings);
    ``cells`` optionally gives the rows as LaTeX already (same shape), e.g. with verdict marks.
    """
    headers, rows = t["headers"], t["rows"]
    numeric = [_numeric([r[i] for r in rows]) for i in range(len(headers))]
    body = cells if cells is not None else [
        [_minus(escape(c)) if numeric[i] else escape(c) for i, c in enumerate(row)]
        for row in rows]
    body = [[c.replace("/", r"/\allowbreak{}") for c in row] for row in body]
    n = len(headers)
    spec = column_spec(headers, rows) if rows else "l" * n
    head = " & ".join(r"\textbf{" + escape(h) + "}" for h in headers) + r" \\"
    caption_tex = escape(caption) + (" " + note if note else "")
    lines = [r"\begingroup\footnotesize\setlength{\tabcolsep}{3pt}",
             rf"\begin{{longtable}}{{@{{}}{spec}@{{}}}}",
             rf"\caption{{{caption_tex}}}\label{{{label(key)}}}\\",
             r"\toprule", head, r"\midrule", r"\endfirsthead",
             rf"\multicolumn{{{n}}}{{@{{}}l}}{{\emph{{Table \thetable{{}}, continued}}}}\\",
             r"\toprule", head, r"\midrule", r"\endhead",
             r"\bottomrule", r"\endlastfoot"]
    if not body:
        lines.append(rf"\multicolumn{{{n}}}{{@{{}}l}}{{\emph{{(none)}}}}\\")
    lines += ["{}" + " & ".join(row) + r" \\" for row in body]  # {}: no row starts \\*
    lines += [r"\end{longtable}", r"\endgroup", ""]
    return TeX("\n".join(lines))


def _minus(tex: str) -> str:
    """A hyphen before a digit (``fmt`` of a negative bound) as a minus sign, in number cells."""
    return re.sub(r"(?<![A-Za-z])-(?=\d)", r"\\ensuremath{-}", tex)


# --- the Answer table: Δ [CI] with a verdict mark ----------------------------------------------
MARKS = {"better": r"$\uparrow$", "worse": r"$\downarrow$", "equivalent": r"$\approx$",
         "no evidence": r"$\circ$", "constant": "$=$", "non-inferior": r"$\geq$"}
MARK_LEGEND = (r"$\uparrow$ better, $\downarrow$ worse, $\approx$ equivalent within the "
               r"smallest effect of interest, $\geq$ non-inferior, $\circ$ no evidence, $=$ "
               r"identical in every seed (no test); \dag{} a model in the comparison is not "
               r"shown above chance on the task; \ddag{} a model in the comparison did not "
               r"converge in at least one seed.")


def answer_cells(data: StudyData) -> list[list[str]] | None:
    """The Answer table's rows in LaTeX: the same Δ [95% CI] as in the HTML, with a mark for
    the verdict (:data:`MARKS`) in place of its word; ``None`` without hypotheses."""
    from mtvae.report.answer import answer_grid
    from mtvae.report.findings import effect

    if data.table.empty:
        return None
    rows = []
    for name, dataset, cells in answer_grid(data)[1]:
        out = [escape(name), escape(dataset)]
        for row in cells:
            if row is None:
                out.append(escape("—"))
                continue
            mark = MARKS.get(row["verdict"], escape(row["verdict"]))
            dagger = r"\,\dag{}" if len(row["unlearned"]) else ""
            dagger += r"\,\ddag{}" if row.get("not_converged", 0) else ""
            out.append(f"{mark}~{_minus(escape(effect(row)))}{dagger}")
        rows.append(out)
    return rows


# --- figures -------------------------------------------------------------------------------------
def figure_pdf(figure: Figure) -> bytes:
    """The figure as PDF: the vector copy matplotlib drew beside the PNG, or the stored PNG
    (a run's image grid) placed on a PDF page at its own resolution."""
    pdf = getattr(figure.png, "pdf", None)
    if pdf:
        return pdf
    from matplotlib import image
    from matplotlib.figure import Figure as MplFigure

    pixels = image.imread(io.BytesIO(figure.png), format="png")
    dpi = 100
    fig = MplFigure(figsize=(pixels.shape[1] / dpi, pixels.shape[0] / dpi), dpi=dpi)
    fig.figimage(pixels, cmap="gray" if pixels.ndim == 2 else None)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="pdf", dpi=dpi, metadata={"CreationDate": None})
    return buffer.getvalue()


def figure_file(figure: Figure) -> str:
    """``figures/<id>.pdf`` (dots in ids become ``_``: graphicx reads the first dot as the
    extension's)."""
    return f"figures/{figure.id.replace('.', '_')}.pdf"


def figure(f: Figure) -> TeX:
    """A floating figure: the PDF at line width, ``\\caption`` and ``\\label{fig:<id>}``."""
    return TeX("\n".join([
        r"\begin{figure}[htbp]", r"\centering",
        rf"\includegraphics[width=\linewidth,height=0.75\textheight,keepaspectratio]"
        rf"{{{figure_file(f)}}}",
        rf"\caption[{{{escape(f.title)}}}]{{\textbf{{{escape(f.title)}.}} {escape(f.caption)}}}",
        rf"\label{{{label('fig:' + f.id)}}}", r"\end{figure}", ""]))


SECTION_NAMES = {"differences": "Paired differences against each numeric axis",
                 "axes": "Metrics against each condition",
                 "pareto": "Reconstruction vs task performance",
                 "grids": "Reconstructions and samples",
                 "mtvae": "Traversals, leakage and interventions", "curves": "Training curves"}


# --- the files ---------------------------------------------------------------------------------
def latex_context(data: StudyData, context: dict[str, Any]) -> dict[str, Any]:
    """The shared report context, plus what only the LaTeX shows (marks, stable labels)."""
    results = []
    seen: dict[str, int] = {}
    for block in context["results"]:
        key = "tab:results-" + slug(block["dataset"], block["condition"])
        seen[key] = seen.get(key, 0) + 1
        results.append({**block, "key": key if seen[key] == 1 else f"{key}-{seen[key]}"})
    return {**context, "results": results, "answer_cells": answer_cells(data),
            "mark_legend": TeX(MARK_LEGEND), "section_names": SECTION_NAMES}


def write_latex(out: Path, data: StudyData, context: dict[str, Any],
                figures: list[Figure]) -> Path:
    """(Re)write ``out`` (``report/latex/``) from the report context; return ``main.tex``."""
    context = latex_context(data, context)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for old in [*(out / "figures").glob("*.pdf"), out / "main.pdf"]:
        old.unlink(missing_ok=True)  # a stale main.pdf would not show this database
    for f in figures:
        atomic_write(out / figure_file(f), lambda p, f=f: p.write_bytes(figure_pdf(f)))
    for name in ("preamble", "methodology", "results", "appendix", "main"):
        write_text(out / f"{name}.tex", render(f"{name}.tex.j2", context))
    for path in [*out.glob("*.tex"), *(out / "figures").glob("*.pdf")]:
        path.chmod(0o644)
    return out / "main.tex"


def pdflatex() -> str | None:
    """The pdflatex executable, if installed."""
    return shutil.which("pdflatex")


def compile_pdf(out: Path, runs: int = 2, timeout: float = 300) -> Path:
    """Compile ``out/main.tex`` into ``out/main.pdf`` (twice, for references and longtable
    widths) without shell escape, reading and writing only inside ``out``."""
    exe = pdflatex()
    if exe is None:
        raise UserError(f"pdflatex is not installed, so {out / 'main.pdf'} was not built; "
                        f"{INSTALL_HINT}.")
    env = {**os.environ, "openin_any": "p", "openout_any": "p", "shell_escape": "f"}
    for _ in range(runs):
        try:
            done = subprocess.run(
                [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                 "-file-line-error", "main.tex"], cwd=out, env=env, capture_output=True,
                stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"pdflatex took more than {timeout:.0f} s on {out / 'main.tex'}; "
                            f"its log is {out / 'main.log'}.") from None
        if done.returncode != 0:
            errors = [line for line in done.stdout.decode("utf-8", "replace").splitlines()
                      if line.startswith("!") or ".tex:" in line]
            missing = re.search(r"File `([^']+)' not found", " ".join(errors))
            hint = (f" A LaTeX package file is missing ({missing[1]}): {INSTALL_HINT}."
                    if missing else "")
            raise UserError(f"pdflatex could not compile {out / 'main.tex'}: "
                            f"{' '.join(errors[:3]) or 'see the log'}; full log: "
                            f"{out / 'main.log'}.{hint}")
    for suffix in (".aux", ".out", ".toc", ".lot", ".lof"):
        (out / f"main{suffix}").unlink(missing_ok=True)
    (out / "main.pdf").chmod(0o644)
    return out / "main.pdf"


def compile_requested(out: Path, formats: tuple[str, ...]) -> Path | None:
    """``pdf`` in ``formats``: compile (an error if pdflatex is missing or fails); ``pdf?``:
    compile where pdflatex is installed, and only warn when it fails (``mtvae study``)."""
    if "pdf" in formats:
        return compile_pdf(out)
    if "pdf?" in formats and pdflatex():
        try:
            return compile_pdf(out)
        except UserError as exc:
            print(f"mtvae: warning: {exc}", file=sys.stderr)
    return None
