"""The app's raw throughput: closed-loop clients on a Unix socket, against a real gunicorn."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from components.tools.bench.raw import concurrencies_for, raw_throughput, request_bytes

APP = """
def app(environ, start_response):
    ok = environ.get("HTTP_X_TOKEN") == "t"
    start_response("200 OK" if ok else "403 Forbidden", [("Content-Length", "2")])
    return [b"ok"]
"""


def test_the_request_carries_the_headers() -> None:
    assert request_bytes("/hits", "X-Token: t\r\n") == (
        b"GET /hits HTTP/1.0\r\nHost: box\r\nX-Token: t\r\n\r\n"
    )
    assert concurrencies_for(5) == (5, 10, 20)


@pytest.mark.daemon
@pytest.mark.skipif(shutil.which("gunicorn") is None, reason="Debian's gunicorn (bin/test)")
def test_raw_throughput_counts_only_answers_that_succeed(tmp_path: Path) -> None:
    (tmp_path / "rawapp.py").write_text(APP)
    socket = tmp_path / "app.sock"
    server = subprocess.Popen(
        ["gunicorn", "--workers", "2", "--bind", f"unix:{socket}", "rawapp:app"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        for _ in range(100):
            if socket.exists():
                break
            time.sleep(0.1)
        good = raw_throughput(socket, "/", "X-Token: t\r\n", (1, 4), 1.0)
        assert [r.concurrency for r in good.rates] == [1, 4]
        assert all(r.served_rps > 0 and r.failed == 0 for r in good.rates), good
        assert good.best.served_rps == max(r.served_rps for r in good.rates)
        refused = raw_throughput(socket, "/", "", (2,), 1.0)
        assert refused.best.served_rps == 0 and refused.best.failed > 0
    finally:
        server.terminate()
        server.wait(timeout=30)
