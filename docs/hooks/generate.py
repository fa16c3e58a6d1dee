"""MkDocs hook: reference tables generated from the code at build time, never copied.

A page asks for a table with a marker on a line of its own, ``<!-- generated: NAME -->``;
:data:`GENERATORS` maps each NAME to a function returning Markdown. An unknown NAME fails the
build, so a page can never silently lose its table. Everything is read from the installed
``mtvae`` package: the pydantic run and model configs (every key, its default, type and
description), the study spec, the metric catalogue, the argparse parser and the shipped presets.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

MARKER = re.compile(r"^<!-- generated: ([a-z0-9_:-]+) -->$", re.MULTILINE)


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = (text or str(annotation)).replace("typing.", "")
    text = text.replace("Annotated[int, FieldInfo(annotation=NoneType, required=True, "
                        "metadata=[Ge(ge=0)])]", "int ≥ 0")
    # Literal['a', 'b'] -> one of `a`, `b`
    return re.sub(r"Literal\[([^\]]*)\]",
                  lambda m: "one of " + ", ".join(v.strip().strip("'") for v in m[1].split(",")),
                  text)


def _bounds(field: Any) -> str:
    parts = []
    for item in field.metadata:
        for name, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(item, name, None) is not None:
                parts.append(f"{sign} {getattr(item, name)}")
        if getattr(item, "min_length", None) is not None:
            parts.append(f"at least {item.min_length} item(s)")
    return ", ".join(parts)


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    import json

    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _rows(cls: type[BaseModel], prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
    rows = []
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_rows(annotation, key + "."))
            continue
        bounds = _bounds(field)
        kind = _type_name(annotation) + (f" ({bounds})" if bounds else "")
        rows.append(f"| `{key}` | `{_cell(_default(field))}` | {_cell(kind)} | "
                    f"{_cell(field.description or '')} |")
    return rows


def _table(cls: type[BaseModel], prefix: str, skip: tuple[str, ...] = ()) -> str:
    head = "| key | default | type | meaning |\n|---|---|---|---|\n"
    return head + "\n".join(_rows(cls, prefix, skip)) + "\n"


def config_run() -> str:
    """The model-independent sections: seed, data, train, eval."""
    from mtvae.config import RunConfig

    return _table(RunConfig, "", skip=("model",))


def config_models() -> str:
    """One table per registered model: its ``model.*`` keys."""
    from mtvae.models.registry import MODELS

    out = []
    for name, entry in MODELS.items():
        out.append(f"### `{name}`\n\n{entry.description}. `mtvae config --model {name}` prints "
                   f"these as YAML.\n\n{_table(entry.config_cls, 'model.')}")
    return "\n".join(out)


def study_spec() -> str:
    """The study spec's keys and those of its datasets, variants and hypotheses entries."""
    from mtvae.study import spec

    parts = [("Top level", spec.StudySpec, ""), ("`datasets.<source>`", spec.DatasetSpec, ""),
             ("`variants.<name>`", spec.VariantSpec, ""),
             ("`hypotheses[]`", spec.HypothesisSpec, "")]
    return "\n".join(f"#### {title}\n\n{_table(cls, prefix)}" for title, cls, prefix in parts)


def axes() -> str:
    """The declared condition axes (``AXES`` in ``mtvae.study.axes``)."""
    from mtvae.study.axes import AXES

    head = ("| axis | config key | meaning | a label-free model trains once |\n"
            "|---|---|---|---|\n")
    rows = [f"| `{a.name}` | `{a.key}` | {_cell(a.description)} | "
            f"{'yes' if a.labels_only else '—'} |" for a in AXES.values()]
    return head + "\n".join(rows) + "\n"


def metrics() -> str:
    """The metric catalogue, module by module, as declared beside the code."""
    from mtvae.evaluate import catalogue

    head = ("| key pattern | family | kind | better | unit | definition |\n"
            "|---|---|---|---|---|---|\n")
    rows = [f"| `{_cell(m.pattern)}` | {m.family or '—'} | {m.kind} | {m.direction or '—'} | "
            f"{_cell(m.unit) or '—'} | {_cell(m.definition)} |" for m in catalogue.entries()]
    return head + "\n".join(rows) + "\n"


def metric_families() -> str:
    """The metric families of ``mtvae evaluate --metrics``, from their registry."""
    from mtvae.evaluate.runner import METRIC_FAMILIES

    head = ("| family | computes | needs the capabilities | also on `ood` |\n"
            "|---|---|---|---|\n")
    rows = [f"| `{f.name}` | {_cell(f.description)} | "
            f"{', '.join(r.__name__ for r in f.requires) or 'any'} | "
            f"{'yes' if f.ood is not None else '—'} |" for f in METRIC_FAMILIES.values()]
    return head + "\n".join(rows) + "\n"


def cli() -> str:
    """``mtvae --help`` and every subcommand's ``--help``, from the parser itself."""
    import argparse

    from mtvae.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = [f"## `mtvae`\n\n```text\n{parser.format_help()}```\n"]
    for name, command in sub.choices.items():
        command.prog = f"mtvae {name}"
        out.append(f"## `mtvae {name}`\n\n```text\n{command.format_help()}```\n")
    return "\n".join(out)


def models() -> str:
    """``mtvae models``: the registry's one-line descriptions."""
    from mtvae.models.registry import MODELS

    return "\n".join(f"- **`{name}`** — {entry.description}" for name, entry in MODELS.items())


def _preset(name: str) -> str:
    from mtvae.study.spec import preset_text

    return f"```yaml\n{preset_text(name).rstrip()}\n```\n"


GENERATORS = {
    "config-run": config_run,
    "config-models": config_models,
    "study-spec": study_spec,
    "axes": axes,
    "metrics": metrics,
    "metric-families": metric_families,
    "cli": cli,
    "models": models,
    "preset-quick": lambda: _preset("quick"),
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: unknown generated table '{name}'; "
                             f"known: {', '.join(sorted(GENERATORS))}")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)
