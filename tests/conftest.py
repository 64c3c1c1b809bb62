"""Shared fixtures: the project's own stacks and a minimal valid stack to vary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.model.project import PACKAGE_ROOT
from components.model.settings import Settings, load_stack_file, validate

REPO = PACKAGE_ROOT
STACKS = ("staging", "prod")


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def minimal_raw() -> dict[str, Any]:
    return {"region": "us-east", "plan": "g6-standard-2"}


@pytest.fixture
def minimal(minimal_raw: dict[str, Any]) -> Settings:
    return validate(minimal_raw, "test")


@pytest.fixture(params=STACKS)
def stack_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stack_settings(stack_name: str) -> Settings:
    return load_stack_file(REPO / "stacks", stack_name)
