"""Overload on the rendered haproxy.cfg, run by the real HAProxy on loopback: with every worker
busy and the queue at its sized length, a new request is answered at once with 503 and
Retry-After, while the queued ones are still served once workers free up; the served are
logged, the shed only counted. A server measured to drain faster than declared queues more."""

from __future__ import annotations

import csv
import http.client
import io
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import Sizing, size
from tests import daemons

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="bin/test installs it")


def _send(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.sendall(b"GET /work HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n")
    return conn


def _response(conn: socket.socket) -> tuple[int, dict[str, str]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    status_line, *header_lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return int(status_line.split()[1]), headers


def _stats(stats_port: int) -> list[dict[str, str]]:
    """HAProxy's own stats, a row per frontend, backend and server."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=5) as r:
        return list(csv.DictReader(io.StringIO(r.read().decode().lstrip("# "))))


def _queued(stats_port: int) -> int:
    """Requests waiting in backend `app`."""
    return sum(int(row["qcur"] or 0) for row in _stats(stats_port) if row["pxname"] == "app")


@pytest.fixture(scope="module")
def staging() -> tuple[Sizing, str]:
    settings = load_stack_file(REPO / "stacks", "staging")
    sz = size(settings)
    rendered = render_files("staging", settings, sz, Secrets.placeholders())
    return sz, rendered.by_path()["/etc/haproxy/haproxy.cfg"].content


def _frontend_5xx(stats_port: int) -> int:
    """5xx answers the frontend `web` gave, sheds included."""
    return sum(
        int(row["hrsp_5xx"] or 0)
        for row in _stats(stats_port)
        if row["pxname"] == "web" and row["svname"] == "FRONTEND"
    )


@dataclass
class Overloaded:
    sz: Sizing
    port: int
    stats: int
    app: daemons.HeldApp
    syslog: socket.socket  # where the box's `log /dev/log` goes here, as UDP

    def logged(self) -> list[str]:
        """The log lines HAProxy has sent so far."""
        lines = []
        self.syslog.settimeout(0.5)
        try:
            while True:
                lines.append(self.syslog.recv(65536).decode(errors="replace"))
        except TimeoutError:
            return lines


@pytest.fixture
def overloaded(staging: tuple[Sizing, str]) -> Iterator[Overloaded]:
    sz, cfg = staging
    with (
        daemons.world_readable_tmpdir() as tmp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as syslog,
    ):
        syslog.bind(("127.0.0.1", 0))
        app = daemons.HeldApp(tmp / "app.sock", holds=lambda path: path == "/work")
        (tmp / "app.sock").chmod(0o777)  # HAProxy runs as its own user
        threading.Thread(target=app.serve_forever, daemon=True).start()
        http_port, stats_port = daemons.free_port(), daemons.free_port()
        on_loopback = daemons.haproxy_on_loopback(cfg, sz, http_port, stats_port, tmp / "app.sock")
        log_line = "    log /dev/log local0"
        assert log_line in on_loopback
        syslog_port = syslog.getsockname()[1]
        (tmp / "haproxy.cfg").write_text(
            on_loopback.replace(log_line, f"    log 127.0.0.1:{syslog_port} local0")
        )
        try:
            with daemons.process(
                ["haproxy", "-db", "-f", str(tmp / "haproxy.cfg")], tmp / "haproxy.log"
            ):
                daemons.wait_for(lambda: _queued(stats_port) == 0, "HAProxy's stats")
                yield Overloaded(sz, http_port, stats_port, app, syslog)
        finally:
            app.release.set()
            app.shutdown()
            app.server_close()


def test_a_full_queue_sheds_new_requests_at_once_and_serves_the_queued(
    overloaded: Overloaded,
) -> None:
    sz, port, stats, app = overloaded.sz, overloaded.port, overloaded.stats, overloaded.app
    h = sz.haproxy
    assert h.maxqueue > h.server_maxconn  # staging: 25 waiting behind 5 workers
    busy = [_send(port) for _ in range(h.server_maxconn)]
    daemons.wait_for(lambda: app.held == h.server_maxconn, "every worker busy")
    waiting = [_send(port) for _ in range(h.maxqueue)]
    daemons.wait_for(lambda: _queued(stats) == h.maxqueue, "the queue at its sized length")
    extra = [_send(port) for _ in range(3)]
    try:
        # Answered while every worker is still held: nothing waited for one.
        for conn in extra:
            status, headers = _response(conn)
            assert status == h.shed_status == 503
            assert headers["retry-after"] == str(h.retry_after_s)
        assert app.held == h.server_maxconn and _queued(stats) == h.maxqueue
        app.release.set()
        for conn in busy + waiting:
            assert _response(conn)[0] == 200
    finally:
        for conn in busy + waiting + extra:
            conn.close()
    # Every served request has its log line; the sheds have none, only the stats count them.
    daemons.wait_for(lambda: _frontend_5xx(stats) == len(extra), "the sheds in the stats")
    requests = [line for line in overloaded.logged() if '"GET /work HTTP/1.1"' in line]
    assert len(requests) == len(busy) + len(waiting)
    assert not any(f" {h.shed_status} " in line for line in requests)


def _server_rate(stats_port: int) -> int:
    """Sessions per second HAProxy opened to gunicorn over the last second: its drain rate."""
    (row,) = (r for r in _stats(stats_port) if r["pxname"] == "app" and r["svname"] == "gunicorn")
    return int(row["rate"] or 0)


def _cheap_requests_for(seconds: float, port: int, clients: int = 4) -> None:
    """Back-to-back requests the app answers at once, from keep-alive clients."""
    until = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < until:
            conn.request("GET", "/cheap")
            conn.getresponse().read()
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _answered(conn: socket.socket) -> bool:
    conn.setblocking(False)
    try:
        return bool(conn.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    finally:
        conn.setblocking(True)


def test_a_server_measured_to_drain_faster_than_declared_queues_more(
    overloaded: Overloaded,
) -> None:
    """Requests cheaper than the declared response time: the app drains more than the sized
    count in queueWaitMs, so that many wait for a worker instead of being shed."""
    sz, port, stats, app = overloaded.sz, overloaded.port, overloaded.stats, overloaded.app
    h = sz.haproxy
    waiting_n = h.maxqueue + 5  # more than the sized count: shed at once on a declared-rate box
    _cheap_requests_for(1.5, port)
    rate = _server_rate(stats)
    # The precondition, not the finding: this loopback app drains well past the count (even
    # as the last second's rate decays while the requests below go in).
    assert rate * h.queue_wait_ms / 1000 >= 2 * waiting_n, f"{rate} req/s on loopback"
    busy = [_send(port) for _ in range(h.server_maxconn)]
    waiting = [_send(port) for _ in range(waiting_n)]
    try:
        daemons.wait_for(lambda: app.held == h.server_maxconn, "every worker busy")
        daemons.wait_for(lambda: _queued(stats) == waiting_n, "every one of them queued")
        assert not any(_answered(conn) for conn in waiting)
        app.release.set()
        for conn in busy + waiting:
            assert _response(conn)[0] == 200
    finally:
        for conn in busy + waiting:
            conn.close()
    assert _frontend_5xx(stats) == 0
