"""RELIABILITY.md cites tests that exist: every ``tests/...py::name`` (and every following
``::name`` shorthand for the same file) is a test function in that file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?[^`]*`|`::(\w+)`")


def cited(text: str) -> list[tuple[str, str | None]]:
    """``(file, test name or None)`` for every citation, shorthand ``::name`` resolved."""
    out, current = [], None
    for match in CITATION.finditer(text):
        path, name, short = match.groups()
        if path:
            current = path
            out.append((path, name))
        elif current:
            out.append((current, short))
    return out


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_cited_test_exists():
    citations = cited((ROOT / "RELIABILITY.md").read_text(encoding="utf-8"))
    assert len(citations) > 40
    missing = []
    for path, name in citations:
        file = ROOT / path
        if not file.is_file():
            missing.append(path)
        elif name and name not in functions_in(file):
            missing.append(f"{path}::{name}")
    assert missing == []


def test_the_check_catches_a_wrong_name():
    assert cited("`tests/a.py::test_x`, `::test_y`") == [("tests/a.py", "test_x"),
                                                         ("tests/a.py", "test_y")]
    assert "test_resume_equals_uninterrupted" not in functions_in(
        ROOT / "tests/train/test_trainer.py")
