from __future__ import annotations

from components.model.errors import MISSING, Problem, SettingsError, SizingError, StackError


def test_problem_shows_key_value_and_message() -> None:
    assert str(Problem("tunedstack:plan", "x1", "unknown")) == "tunedstack:plan = 'x1': unknown"
    assert str(Problem("tunedstack:region", MISSING, "required")) == (
        "tunedstack:region = (missing): required"
    )


def test_stack_error_lists_problems_then_detail() -> None:
    err = SizingError("stacks/Pulumi.a.yaml", [Problem("k", 1, "bad")], "Budget:\n...")
    text = str(err)
    assert text.splitlines()[0] == "stacks/Pulumi.a.yaml: 1 problem(s) in the stack settings:"
    assert "  - k = 1: bad" in text
    assert text.endswith("Budget:\n...")
    assert isinstance(err, StackError) and isinstance(SettingsError("s", []), StackError)
