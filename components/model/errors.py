"""Errors that name the stack setting, the bad value and what would be valid."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    key: str
    value: object
    message: str

    def __str__(self) -> str:
        shown = "(missing)" if self.value is _MISSING else repr(self.value)
        return f"{self.key} = {shown}: {self.message}"


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
        lines += [f"  - {p}" for p in problems]
        if detail:
            lines += ["", detail]
        super().__init__("\n".join(lines))


class SettingsError(StackError):
    """The stack file does not describe a valid tunedstack box."""


class SizingError(StackError):
    """The settings are well-formed but the box they ask for cannot be built on the plan."""
