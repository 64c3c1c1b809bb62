from __future__ import annotations

from pathlib import Path

import pytest

from components.model.project import PACKAGE_ROOT
from components.tools.rehearsal.host import cache_root, free_port, missing_packages


def test_cache_is_outside_the_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TUNEDSTACK_CACHE", raising=False)
    assert PACKAGE_ROOT not in cache_root().parents
    monkeypatch.setenv("TUNEDSTACK_CACHE", str(tmp_path))
    assert cache_root() == tmp_path


def test_missing_packages_names_them() -> None:
    assert missing_packages(("no-such-package-tunedstack",)) == ["no-such-package-tunedstack"]


def test_free_port_is_usable() -> None:
    assert 1024 < free_port() < 65536
