from __future__ import annotations

from pathlib import Path

from components.model.project import PACKAGE_ROOT, project_root, stacks_dir


def test_finds_the_project_from_a_subfolder() -> None:
    assert project_root(PACKAGE_ROOT / "components") == PACKAGE_ROOT


def test_falls_back_to_this_checkout(tmp_path: Path) -> None:
    assert project_root(tmp_path) == PACKAGE_ROOT
    assert (stacks_dir(PACKAGE_ROOT) / "Pulumi.staging.yaml").is_file()
