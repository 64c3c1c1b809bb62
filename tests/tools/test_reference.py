from __future__ import annotations

from pathlib import Path

import pytest

from components.model.settings import Settings
from components.tools.reference import END, START, replace_section, settings_reference

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_current() -> None:
    """Refresh with: bin/tunedstack reference --update README.md"""
    text = README.read_text()
    assert replace_section(text, settings_reference()) == text


def test_reference_lists_every_setting_with_its_default() -> None:
    table = settings_reference()
    for field in Settings.model_fields.values():
        assert f"| `{field.alias}` |" in table
    assert "| `workload.peakConnections` | int | `1000` |" in table
    assert "| `region` | str | **required** |" in table
    assert "| `linodeBackups` | bool \\| `auto` | `auto` |" in table
    assert "| `backups.enabled` | bool \\| `auto` | `auto` |" in table
    assert '| `label` | str | `""` |' in table


def test_replace_section_needs_the_markers() -> None:
    assert replace_section(f"a\n{START}\nold\n{END}\nb", "new\n") == f"a\n{START}\nnew\n{END}\nb"
    with pytest.raises(ValueError):
        replace_section("no markers", "x")
