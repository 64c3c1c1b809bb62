"""The Pulumi CLI's checks of Pulumi.yaml and each stack file, applied as the CLI would.

tests/pulumi_cli.py ports the rules from pulumi/pulumi; the first tests here are the CLI's own
test cases, so the port is held to what the CLI really prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.cloud.config import load_pulumi_config
from components.model.settings import Settings, load_stack_file
from tests.pulumi_cli import (
    ProjectError,
    StackConfigError,
    load_project,
    load_stack,
    merge_config,
)

REPO = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.split(".")[1] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))


def _write(tmp_path: Path, project: str, stack: str) -> tuple[Path, Path]:
    (tmp_path / "Pulumi.yaml").write_text(project)
    (tmp_path / "Pulumi.dev.yaml").write_text(stack)
    return tmp_path / "Pulumi.yaml", tmp_path / "Pulumi.dev.yaml"


def _merge(tmp_path: Path, project: str, stack: str) -> dict[str, Any]:
    p, s = _write(tmp_path, project, stack)
    return merge_config("dev", load_project(p), load_stack(s))


# ---------------------------------------------------------------- the CLI's own test cases
def test_two_keys_without_default_are_both_missing(tmp_path: Path) -> None:
    """config_test.go: TestStackConfigErrorsWhenMissingTwoStackValueForConfigTypeWithNoDefault"""
    project = (
        "name: test\nruntime: dotnet\nconfig:\n  another:\n    type: string\n"
        "  values:\n    type: array\n    items:\n      type: string\n"
    )
    with pytest.raises(StackConfigError) as err:
        _merge(tmp_path, project, "")
    assert str(err.value) == "Stack 'dev' is missing configuration values 'another' and 'values'"


def test_a_wrongly_typed_stack_value_is_refused(tmp_path: Path) -> None:
    """config_test.go: TestStackConfigIntegerTypeIsCorrectlyValidated (the failing half)"""
    project = "name: test\nruntime: dotnet\nconfig:\n  importantNumber:\n    type: integer\n"
    with pytest.raises(StackConfigError) as err:
        _merge(tmp_path, project, "config:\n  test:importantNumber: hello\n")
    assert "Stack 'dev' with configuration key 'importantNumber' must be of type 'integer'" in str(
        err.value
    )
    assert _merge(tmp_path, project, "config:\n  test:importantNumber: 20\n")


def test_an_untyped_key_without_default_is_required_too(tmp_path: Path) -> None:
    project = "name: test\nruntime: python\nconfig:\n  test:app:\n    description: a mapping\n"
    with pytest.raises(StackConfigError, match="missing configuration value 'test:app'"):
        _merge(tmp_path, project, "")


def test_object_is_not_a_type_the_project_schema_knows(tmp_path: Path) -> None:
    project = "name: test\nruntime: python\nconfig:\n  test:app:\n    type: object\n"
    with pytest.raises(ProjectError, match="value must be one of"):
        _merge(tmp_path, project, "")


def test_a_secret_key_with_a_plain_default_fails_every_stack(tmp_path: Path) -> None:
    project = (
        "name: test\nruntime: python\nconfig:\n  test:key:\n    type: string\n"
        "    secret: true\n    default: none\n"
    )
    with pytest.raises(StackConfigError, match="must be encrypted as it's secret"):
        _merge(tmp_path, project, "")


# ---------------------------------------------------------------- this project
def test_the_cli_accepts_the_project_file() -> None:
    project = load_project(REPO / "Pulumi.yaml")
    assert project.name == "tunedstack"


@pytest.mark.parametrize("stack", STACKS)
def test_the_cli_accepts_every_stack_file(stack: str) -> None:
    project = load_project(REPO / "Pulumi.yaml")
    merge_config(stack, project, load_stack(REPO / "stacks" / f"Pulumi.{stack}.yaml"))


def test_a_stack_without_region_gets_the_clis_message(tmp_path: Path) -> None:
    text = (REPO / "stacks" / "Pulumi.staging.yaml").read_text()
    stack = tmp_path / "Pulumi.staging.yaml"
    stack.write_text("\n".join(line for line in text.splitlines() if "region" not in line))
    with pytest.raises(StackConfigError) as err:
        merge_config("staging", load_project(REPO / "Pulumi.yaml"), load_stack(stack))
    assert str(err.value) == "Stack 'staging' is missing configuration value 'tunedstack:region'"


def test_every_setting_is_declared() -> None:
    declared = set(load_project(REPO / "Pulumi.yaml").config)
    fields = {f"tunedstack:{f.alias}" for f in Settings.model_fields.values()}
    assert declared == fields


def test_required_in_the_model_is_required_for_the_cli() -> None:
    project = load_project(REPO / "Pulumi.yaml")
    for name, field in Settings.model_fields.items():
        decl = project.config[f"tunedstack:{field.alias or name}"]
        assert decl.has_default is not field.is_required(), name


@pytest.mark.parametrize("stack", STACKS)
def test_the_clis_defaults_are_the_models_defaults(stack: str) -> None:
    """What the program receives (stack values plus Pulumi.yaml's defaults) is read into exactly
    the settings the stack file alone gives: the two declarations of each default agree."""
    project = load_project(REPO / "Pulumi.yaml")
    merged = merge_config(stack, project, load_stack(REPO / "stacks" / f"Pulumi.{stack}.yaml"))
    pulumi.runtime.set_all_config(merged)
    try:
        from_cli = load_pulumi_config(stack)
    finally:
        pulumi.runtime.set_all_config({})
    assert from_cli == load_stack_file(REPO / "stacks", stack)
    # Every default really was applied (nothing the model had to fill in by itself).
    assert set(merged) >= set(project.config)


def test_declared_types_are_checked_against_stack_values(tmp_path: Path) -> None:
    text = (REPO / "stacks" / "Pulumi.staging.yaml").read_text()
    stack = tmp_path / "Pulumi.staging.yaml"
    stack.write_text(text.replace("tunedstack:volumeSizeGb: 20", "tunedstack:volumeSizeGb: big"))
    with pytest.raises(
        StackConfigError, match="'tunedstack:volumeSizeGb' must be of type 'integer'"
    ):
        merge_config("staging", load_project(REPO / "Pulumi.yaml"), load_stack(stack))
