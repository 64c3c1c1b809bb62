"""The C10K client against a real keep-alive HTTP server on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from components.bench.c10k import run_c10k
from components.bench.profiles import C10kProfile


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            status = b"503 Service Unavailable" if b"/fail" in head else b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@pytest.fixture
def server_port() -> Iterator[int]:
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(_serve, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port
    loop.call_soon_threadsafe(loop.stop)


def test_holds_every_connection_and_counts_requests(server_port: int) -> None:
    profile = C10kProfile(
        connections=300,
        open_per_s=300.0,
        request_interval_s=0.5,
        hold_s=3.0,
        probe_path="/",
        probe_interval_s=0.2,
    )
    result = run_c10k(profile, "127.0.0.1", server_port, "tuned")
    assert result.failed == 0
    assert result.extra["all_held"] is True and result.extra["held_max"] == 300
    assert result.requests >= 300 * 3
    assert result.extra["probe_requests"] >= 5
    assert result.p99_ms >= result.p50_ms > 0


def test_counts_5xx_and_refusals(server_port: int) -> None:
    profile = C10kProfile(
        connections=20,
        open_per_s=100.0,
        request_interval_s=0.5,
        hold_s=1.5,
        path="/fail",
        probe_interval_s=0.5,
    )
    result = run_c10k(profile, "127.0.0.1", server_port, "stock")
    assert result.failures["http_5xx"] >= 20
    closed = run_c10k(
        C10kProfile(connections=5, open_per_s=50.0, hold_s=1.0), "127.0.0.1", 1, "stock"
    )
    assert closed.failures["refused"] >= 5 and closed.extra["all_held"] is False
