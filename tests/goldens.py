"""Golden files: rendered output checked in under tests/golden/, compared byte for byte.

After an intended change, refresh them and review the diff like any other change:
    UPDATE_GOLDEN=1 bin/test tests/model/test_render.py tests/model/test_userdata.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"


def check(name: str, tree: dict[str, str]) -> None:
    """Compare {relative path: content} with tests/golden/<name>/, or rewrite it on request."""
    root = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(root, ignore_errors=True)
        for rel, content in tree.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(content)
    on_disk = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(tree), f"files added or removed: refresh {root.name} goldens"
    for rel, content in tree.items():
        assert on_disk[rel] == content, f"{rel} differs from tests/golden/{name}/{rel}"
