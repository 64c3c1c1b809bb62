"""The layers of components/ import downwards only: tools -> cloud -> model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parent.parent / "components"
# What each layer may import from the project; everything else of components.* is above it.
ALLOWED = {
    "model": ("components.model",),
    "cloud": ("components.model", "components.cloud"),
    "tools": ("components.model", "components.cloud", "components.tools"),
}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_down_only(layer: str) -> None:
    wrong = [
        f"{path.relative_to(COMPONENTS)} imports {name}"
        for path in sorted((COMPONENTS / layer).rglob("*.py"))
        for name in _imports(path)
        if name.startswith("components") and not name.startswith(ALLOWED[layer])
    ]
    assert wrong == []


def test_the_box_model_needs_no_pulumi() -> None:
    """Render, explain and the rehearsal work without a cloud: the model never imports Pulumi."""
    wrong = [
        f"{path.relative_to(COMPONENTS)} imports {name}"
        for path in sorted((COMPONENTS / "model").rglob("*.py"))
        for name in _imports(path)
        if name.split(".")[0].startswith("pulumi")
    ]
    assert wrong == []


def test_every_module_is_in_a_layer() -> None:
    assert sorted(p.name for p in COMPONENTS.glob("*.py")) == ["__init__.py"]
