"""The sample app's answers to the world: writes only with the token, no exception text."""

from __future__ import annotations

import importlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# The box has Debian's psycopg2 and redis; this virtualenv need not (the daemon test in
# tests/model/test_render.py runs the app on them). Every call into them is replaced below.
for _client in ("psycopg2", "redis"):
    try:
        importlib.import_module(_client)
    except ImportError:
        sys.modules[_client] = ModuleType(_client)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sample-app"))
import tunedstack_app  # noqa: E402


class _Broken:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("password authentication failed for user app (secret detail)")


WRITTEN: list[str] = []


def _write() -> dict[str, Any]:
    WRITTEN.append("row")
    return {"row": 1}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("TUNEDSTACK_HITS_TOKEN", "t0ken")
    monkeypatch.setattr(tunedstack_app, "_hits", _write)
    WRITTEN.clear()
    yield tunedstack_app


def _get(app: ModuleType, path: str, **headers: str) -> tuple[str, dict[str, Any], str]:
    errors = io.StringIO()
    environ = {"PATH_INFO": path, "wsgi.errors": errors, **headers}
    answer: list[str] = []
    body = app.app(environ, lambda status, _headers: answer.append(status))
    return answer[0], json.loads(b"".join(body)), errors.getvalue()


@pytest.mark.parametrize("token", [None, "", "wrong", "t0ke", "t0ken "])
def test_hits_without_the_token_is_refused_and_writes_nothing(
    app: ModuleType, token: str | None
) -> None:
    headers = {} if token is None else {"HTTP_X_TUNEDSTACK_TOKEN": token}
    status, _, _ = _get(app, "/hits", **headers)
    assert status == "403 Forbidden"
    assert WRITTEN == []


def test_hits_with_the_token_writes(app: ModuleType) -> None:
    status, body, _ = _get(app, "/hits", HTTP_X_TUNEDSTACK_TOKEN="t0ken")
    assert status == "200 OK" and body == {"row": 1}


def test_no_token_configured_means_no_writes(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUNEDSTACK_HITS_TOKEN")
    status, _, _ = _get(app, "/hits", HTTP_X_TUNEDSTACK_TOKEN="")
    assert status == "403 Forbidden"


def test_failures_are_logged_never_sent(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tunedstack_app, "_pg", lambda: _Broken())
    monkeypatch.setattr(tunedstack_app, "_redis", lambda: _Broken())
    status, body, log = _get(app, "/healthz")
    assert status.startswith("503") and body == {"postgresql": "error", "redis": "error"}
    assert "secret detail" in log and "secret detail" not in json.dumps(body)
    monkeypatch.setattr(tunedstack_app, "_hits", lambda: _Broken().boom)
    status, body, log = _get(app, "/hits", HTTP_X_TUNEDSTACK_TOKEN="t0ken")
    assert status.startswith("503") and body == {"error": "unavailable"}
    assert "secret detail" in log
