"""The documentation's examples run: every shell and Python block of README.md and docs/ is
executed or checked.

Each fenced block of ``README.md`` and of a page in ``docs/`` (``bash``/``sh``/``shell`` and
``python``) is either

* **executed** (the default, or an explicit ``<!-- run -->`` on the line before the fence):
  the page's blocks run in order in one temporary directory, so a later block can use the run
  an earlier one trained. Python blocks are ``exec``'d; shell blocks may hold only ``mtvae``
  commands (run in-process through :func:`mtvae.cli.main`, which must return 0) and
  ``cat > FILE <<'EOF'`` here-documents. Every ``mtvae train`` that starts a run gets
  :data:`TINY` appended (one epoch on a few hundred images, a cheap evaluation), after the
  block's own ``--set``s so the tiny sizes win; ``<!-- run: --set KEY=VALUE ... -->`` appends
  more for that block. Nothing else is rewritten, so the flags and keys are the documented ones.
* **illustrative** (``<!-- illustrative: why -->`` on the line before the fence): not run, but
  each ``mtvae`` command in it (also ``python -m mtvae`` / ``torchrun ... -m mtvae``) is parsed
  by the real argument parser, its config (``--model``, ``--data``, ``--set``) resolved and
  validated, and a ``--preset`` loaded. A renamed flag, key or preset fails here too.

YAML blocks marked ``<!-- spec -->`` are validated as study specs, ``<!-- spec-fragment -->``
as the ``hypotheses`` part of one. Other languages (``text``, ``yaml``, ``latex``) are output
or file contents and are not checked. README.md's relative links must reach an existing file
and heading (the docs pages' links are checked by ``mkdocs build --strict``).
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mtvae.cli import build_parser, main, raw_config
from mtvae.config import resolve_config
from mtvae.errors import UserError
from mtvae.study.spec import load_preset, parse_spec

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# README.md first, then every page of the site (docs/generated/ holds make docs-data's snippets:
# tables and text, no examples). Paths are relative to the repository root.
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.md")
                              if "generated" not in p.relative_to(DOCS).parts)]
SHELL = {"bash", "sh", "shell"}
FENCE = re.compile(
    r"^(?:<!-- (?P<mark>illustrative|run|spec|spec-fragment)(?::(?P<arg>[^\n]*?))? -->\n)?"
    r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
# One epoch on a few hundred images and a cheap evaluation: what makes a documented run tiny.
# disent_max_dims=1 skips the disent family (its 100-tree DCI fits cost 5-15 s per evaluation
# even on 64 points; the family has its own tests), so the runner stays within ~90 s on 2 cores.
TINY = (
    "data.n_train=160", "data.n_val=32", "data.n_test=64", "train.epochs=1",
    "train.progress=false", "eval.iwae_k=2", "eval.iwae_n=4", "eval.n_grid=4",
    "eval.gen_samples=16", "eval.kid_subsets=2", "eval.disent_n=64", "eval.disent_max_dims=1",
    "eval.probe_budgets=[all]",
)
TINY_BY_MODEL = {"vqvae": ("model.prior.epochs=1",), "mtvqvae": ("model.prior.epochs=1",)}


@dataclass
class Block:
    page: str
    line: int
    lang: str
    mark: str | None
    arg: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    text = (ROOT / page).read_text(encoding="utf-8")
    return [Block(page, text.count("\n", 0, m.start("lang")) + 1, m["lang"], m["mark"],
                  (m["arg"] or "").strip(), m["body"]) for m in FENCE.finditer(text)]


def commands(body: str) -> list[list[str] | tuple[str, str]]:
    """Shell lines as argv lists (continuations joined, comments dropped); a here-document
    ``cat > FILE <<'EOF'`` as ``(FILE, text)``."""
    out: list[list[str] | tuple[str, str]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i]
            i += 1
        heredoc = re.fullmatch(r"\s*cat\s*>\s*(\S+)\s*<<\s*'?(\w+)'?\s*", line)
        if heredoc:
            end = lines.index(heredoc[2], i)
            out.append((heredoc[1], "\n".join(lines[i:end]) + "\n"))
            i = end + 1
            continue
        argv = shlex.split(line, comments=True)
        if argv:
            out.append(argv)
    return out


def mtvae_args(argv: list[str]) -> list[str] | None:
    """The arguments after ``mtvae`` (or ``-m mtvae``) in a command line; None if it has none."""
    for i, token in enumerate(argv):
        if token == "mtvae" or token.endswith("/mtvae"):
            return argv[i + 1:]
    return None


def check(args: list[str], where: str) -> None:
    """Parse ``mtvae ARGS`` and validate its config or preset, running nothing."""
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"{where}: `mtvae {shlex.join(args)}` does not parse (see the usage above)")
    if parsed.command in ("train", "config") and not getattr(parsed, "resume", None):
        raw = raw_config(parsed) if parsed.command == "config" or not parsed.config else None
        if raw is not None:
            resolve_config(raw)  # a UserError names the bad key
    if parsed.command == "study" and (parsed.preset or not parsed.spec):
        load_preset(parsed.preset or "quick")


def tiny(args: list[str], extra: str) -> list[str]:
    """``mtvae train`` that starts a run, with the tiny settings appended."""
    if not args or args[0] != "train" or "--resume" in args:
        return args
    parsed = build_parser().parse_args(args)
    settings = (*TINY, *TINY_BY_MODEL.get(parsed.model or "", ()))
    return [*args, *(a for s in settings for a in ("--set", s)), *shlex.split(extra)]


def run_shell(block: Block, capsys) -> None:
    for command in commands(block.body):
        if isinstance(command, tuple):
            Path(command[0]).write_text(command[1], encoding="utf-8")
            continue
        args = mtvae_args(command)
        assert args is not None and command[0] == "mtvae", (
            f"{block.where}: `{shlex.join(command)}` is not an mtvae command; the runner "
            f"executes only those: mark the block <!-- illustrative: why --> instead")
        status = main(tiny(args, block.arg))
        out, err = capsys.readouterr()
        assert status == 0, f"{block.where}: `mtvae {shlex.join(args)}` exited {status}:\n{err}"
        assert "Traceback" not in out + err, err


def check_static(block: Block) -> None:
    if block.lang in SHELL:
        for command in commands(block.body):
            args = None if isinstance(command, tuple) else mtvae_args(command)
            if args:
                check(args, block.where)
    elif block.lang == "python":
        compile(block.body, block.where, "exec")
    if block.mark == "spec":
        parse_spec(yaml.safe_load(block.body), where=block.where)
    elif block.mark == "spec-fragment":
        variants = {"mtvae": {"model": "mtvae"}, "vae": {"model": "vae"}}
        parse_spec({"name": "fragment", "variants": variants, **yaml.safe_load(block.body)},
                   where=block.where)


def test_pages_have_examples_and_markers_are_known():
    assert {"README.md", "docs/getting-started.md", "docs/guides/studies.md"} <= set(PAGES)
    found = [b for page in PAGES for b in blocks(page)]
    assert sum(b.lang in SHELL | {"python"} and b.mark != "illustrative" for b in found) >= 10
    for b in found:
        if b.mark in ("spec", "spec-fragment"):
            assert b.lang == "yaml", f"{b.where}: <!-- {b.mark} --> marks a yaml block"
        if b.mark == "illustrative":
            assert b.arg, f"{b.where}: say why the block is illustrative: <!-- illustrative: ... -->"


@pytest.mark.parametrize("page", PAGES)
def test_documented_examples_run(page, tmp_path, monkeypatch, capsys):
    """Every block of the page is checked; the executable ones run in order, on tiny settings."""
    monkeypatch.chdir(tmp_path)
    for block in blocks(page):
        check_static(block)
        if block.mark == "illustrative" or block.lang not in SHELL | {"python"}:
            continue
        if block.lang == "python":
            exec(compile(block.body, block.where, "exec"), {"__name__": "__docs__"})
        else:
            run_shell(block, capsys)


@pytest.mark.parametrize("args", [
    ["train", "--model", "vae", "--epochs", "3"],                  # a flag that does not exist
    ["train", "--model", "vae", "--set", "train.lrr=3"],           # a key that does not exist
    ["train", "--model", "vaee"],                                  # a model that does not exist
    ["study", "--preset", "quik", "--out", "runs/x"],              # a preset that does not exist
])
def test_static_check_fails_on_a_renamed_flag_key_or_name(args):
    with pytest.raises((pytest.fail.Exception, UserError)):
        check(args, "self-test")


def test_runner_parses_continuations_comments_and_heredocs():
    body = ("mtvae train --model vae \\\n    --set train.epochs=2   # two epochs\n"
            "cat > s.yaml <<'EOF'\nname: x\nEOF\n# a comment\nmtvae evaluate runs/vae\n")
    assert commands(body) == [["mtvae", "train", "--model", "vae", "--set", "train.epochs=2"],
                              ("s.yaml", "name: x\n"), ["mtvae", "evaluate", "runs/vae"]]
    assert tiny(["train", "--model", "vqvae", "--out", "r"], "")[-1] == "model.prior.epochs=1"
    assert tiny(["train", "--resume", "r"], "") == ["train", "--resume", "r"]


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (and, for these headings, GitHub) gives a heading."""
    text = re.sub(r"[`*_]", "", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower())


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+?)\s*$", text, re.M)}


def test_readme_links_reach_a_file_and_heading():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = ROOT / path if path else ROOT / "README.md"
        assert target.exists(), f"README.md links to {link}: no such file"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"README.md links to {link}: no such heading"


def test_slugs_match_the_docs_anchors():
    assert slug("Your own data: `npz:PATH`") == "your-own-data-npzpath"
    assert slug("`mtvae` — multitask VAE") == "mtvae-multitask-vae"
    assert slug("Reading the Answer, line by line") == "reading-the-answer-line-by-line"
