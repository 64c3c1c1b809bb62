"""A stack file's YAML, read strictly: whatever the file holds, a clear error in well under a
second, never a traceback, a hang or an error message larger than the file.

Stack files need none of YAML's anchors and aliases, and they are how a 500-byte file expands
into gigabytes (each alias is a reference; printing or validating the value walks every copy),
so they are refused. A key written twice is refused too: YAML itself keeps the last silently,
and a reviewer reading the first would be misled.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node

# Deeper than any setting (`services.haproxy.maxconn` is three levels under `config`).
MAX_DEPTH = 16
MAX_BYTES = 1_000_000


class StackYamlError(ValueError):
    """The file is not a stack file this program can read; the text says where and why."""


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise StackYamlError(
                f"line {event.start_mark.line + 1}: YAML aliases (`*name`) are not supported "
                "in stack files; write the value out"
            )
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if getattr(event, "anchor", None):
            raise StackYamlError(
                f"line {event.start_mark.line + 1}: YAML anchors (`&name`) are not supported "
                "in stack files; write the value out"
            )
        depth = getattr(self, "_depth", 0)
        if depth >= MAX_DEPTH:
            raise StackYamlError(
                f"line {event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels"
            )
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:
                raise StackYamlError(f"line {line}: a key must be plain text") from None
            if first is not None:
                raise StackYamlError(
                    f"line {line}: {shorten(key)} is written twice (first on line {first}); "
                    "keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse(data: bytes | str) -> object:
    """The document, or StackYamlError saying what is wrong and where."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise StackYamlError(f"{len(data)} bytes; a stack file is at most {MAX_BYTES}")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise StackYamlError(
                f"not UTF-8 text (byte {e.start} is {data[e.start]:#04x})"
            ) from None
    try:
        return yaml.load(data, Loader=_StrictLoader)  # a SafeLoader subclass: no tags
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = (e.problem or "a syntax error")[:200]
        raise StackYamlError(f"{where}not valid YAML ({problem})") from None
    except yaml.YAMLError as e:
        raise StackYamlError(f"not valid YAML: {shorten(str(e), 300)}") from None
    except RecursionError:
        raise StackYamlError(f"nested deeper than {MAX_DEPTH} levels") from None
