"""Where the project's files are: the folder holding Pulumi.yaml, its stacks and templates."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def project_root(start: Path | None = None) -> Path:
    """The nearest folder with Pulumi.yaml from `start` (default: cwd), else this checkout."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file() and (folder / "stacks").is_dir():
            return folder
    return PACKAGE_ROOT


def stacks_dir(root: Path) -> Path:
    return root / "stacks"


def templates_dir(root: Path) -> Path:
    return root / "cloud-init"
