"""YAML read with bounded size, depth and alias expansion (configs, study specs, sidecars).

``yaml.safe_load`` never runs code, but a few hostile bytes can still exhaust the process: a
document nested 1,000 levels deep ends in a ``RecursionError``, and an "alias bomb" (an anchor
listed nine times, that list nine times, ...) expands 289 bytes into billions of values once
anything walks it. :func:`load_yaml` keeps the safe loader and adds three bounds, each refused
with a :class:`YAMLLimitError`, a ``yaml.YAMLError`` whose one-line ``problem`` callers already
report (:func:`mtvae.errors.yaml_problem`):

* the text holds at most :data:`MAX_YAML_CHARS` characters (a file is checked by its size,
  before it is read: :func:`read_yaml_file`);
* nesting is at most :data:`MAX_YAML_DEPTH` levels, counted while the document is composed;
* with every alias expanded, the document holds at most :data:`MAX_YAML_NODES` values and is at
  most :data:`MAX_YAML_DEPTH` levels deep; an alias that refers to its own ancestor is refused.

Anchors and aliases within these bounds keep working (the shipped ``full`` preset shares one
``baselines`` mapping between variants).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_YAML_CHARS = 1_000_000  # a config, spec or sidecar is a few kB; a run's config.yaml too
MAX_YAML_DEPTH = 100  # the shipped files nest fewer than 10 levels
MAX_YAML_NODES = 100_000  # values once aliases are expanded


class YAMLLimitError(yaml.YAMLError):
    """A YAML text beyond one of the bounds of this module."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses documents nested or expanding beyond the bounds."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YAMLLimitError(
                    f"it is nested more than {MAX_YAML_DEPTH} levels deep",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            check_expansion(node)
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def check_expansion(root: yaml.Node) -> None:
    """Refuse a composed document whose aliases expand it beyond :data:`MAX_YAML_NODES`
    values or :data:`MAX_YAML_DEPTH` levels, or refer to their own ancestors (a walk that
    visits each distinct node once: a bomb is refused without being expanded)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # entered, children not finished: an alias to one is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(kid)] for kid in kids)
            depth[key] = 1 + max((depth[id(kid)] for kid in kids), default=0)
            open_nodes.discard(key)
            if size[key] > MAX_YAML_NODES or depth[key] > MAX_YAML_DEPTH:
                raise YAMLLimitError(
                    f"its aliases (*name) expand it to more than {MAX_YAML_NODES:,} values or "
                    f"{MAX_YAML_DEPTH} levels; write the values out, or share fewer of them",
                    node.start_mark)
        elif key in open_nodes:
            raise YAMLLimitError("an alias (*name) refers to a mapping or list that holds it",
                                 node.start_mark)
        elif key not in size:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)


def load_yaml(text: str) -> Any:
    """The value of the YAML document ``text``, read with :class:`BoundedLoader` (safe: no
    Python objects, no code)."""
    if len(text) > MAX_YAML_CHARS:
        raise YAMLLimitError(f"it holds {len(text):,} characters, more than the "
                             f"{MAX_YAML_CHARS:,} a config, spec or sidecar may hold")
    return yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml_file(path: str | Path) -> Any:
    """:func:`load_yaml` of the UTF-8 file ``path``, refused by its size before it is read."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_YAML_CHARS * 4:  # up to 4 bytes a character in UTF-8
        raise YAMLLimitError(f"the file holds {size:,} bytes, more than a config, spec or "
                             f"sidecar may ({MAX_YAML_CHARS:,} characters)")
    return load_yaml(path.read_text(encoding="utf-8"))
