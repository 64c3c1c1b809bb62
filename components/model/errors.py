"""Errors that name the stack setting, the bad value and what would be valid."""

from __future__ import annotations

import re
from dataclasses import dataclass

# How much of a bad value an error repeats: enough to find it in the file, never a whole
# pasted blob (errors reach terminals, CI logs and PR comments).
SHOWN_CHARS = 60
# Shown as what they are, never as what they hold.
_PRIVATE_KEY = re.compile(r"PRIVATE KEY|PuTTY-User-Key-File")
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s'\"]+@")
# The key of a problem with the file as a whole (it is not valid YAML, has no `config:`...).
FILE = "(file)"
# At most this many problems listed; the rest counted.
MAX_PROBLEMS = 20


def shown(value: object) -> str:
    """A bad value as an error message may show it: cut, secrets redacted."""
    if value is _MISSING:
        return "(missing)"
    text = repr(value)
    if _PRIVATE_KEY.search(text):
        return "(a private key: not shown)"
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


@dataclass(frozen=True)
class Problem:
    key: str
    value: object
    message: str

    def __str__(self) -> str:
        if self.key == FILE:
            return self.message
        return f"{self.key} = {shown(self.value)}: {self.message}"


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING = _Missing()
MISSING: object = _MISSING


class StackError(Exception):
    """Raised for any stack that cannot be sized or rendered; the text is meant for users."""

    def __init__(self, source: str, problems: list[Problem], detail: str = "") -> None:
        self.source = source
        self.problems = problems
        self.detail = detail
        lines = [f"{source}: {len(problems)} problem(s) in the stack settings:"]
        lines += [f"  - {p}" for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            lines.append(f"  - and {len(problems) - MAX_PROBLEMS} more")
        if detail:
            lines += ["", detail]
        super().__init__("\n".join(lines))


class SettingsError(StackError):
    """The stack file does not describe a valid tunedstack box."""


class SizingError(StackError):
    """The settings are well-formed but the box they ask for cannot be built on the plan."""
