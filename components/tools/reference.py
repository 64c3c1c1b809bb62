"""The settings reference in the README, generated from the settings model so it cannot drift."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from components.model.settings import Settings

START = "<!-- settings-reference:start (generated: tunedstack reference --update README.md) -->"
END = "<!-- settings-reference:end -->"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        named = [_type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(named) + (" (optional)" if type(None) in args else "")
    if origin in (list, dict):
        return f"{origin.__name__} of " + ", ".join(_type_name(a) for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return "" if value in ([], {}) else f"`{value}`"
    if field.is_required():
        return "**required**"
    if field.default is None or isinstance(field.default, BaseModel):
        return ""
    if field.default == "":
        return '`""`'
    if isinstance(field.default, bool):
        return f"`{str(field.default).lower()}`"
    return f"`{field.default}`"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        annotation = field.annotation
        rows.append(
            f"| `{key}` | {_type_name(annotation)} | {_default(field)} | "
            f"{field.description or ''} |"
        )
        nested = [
            a
            for a in (annotation, *typing.get_args(annotation))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if nested:
            rows += _rows(nested[0], f"{key}.")
    return rows


def settings_reference() -> str:
    rows = [
        "| key (under `tunedstack:`) | type | default | what it does |",
        "|---|---|---|---|",
        *(_rows(Settings, "")),
    ]
    return "\n".join(rows) + "\n"


def replace_section(text: str, section: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    if not rest:
        raise ValueError(f"no {START!r} marker")
    return f"{head}{START}\n{section}{END}{tail}"


def update_readme(readme: Path) -> bool:
    """Rewrite the section; True when it changed."""
    text = readme.read_text()
    new = replace_section(text, settings_reference())
    if new != text:
        readme.write_text(new)
    return new != text
