"""The C10K client against a real keep-alive HTTP server on loopback."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import pytest

from components.tools.bench.c10k import run_c10k
from components.tools.bench.profiles import C10kProfile
from tests.tools.bench.loopback_server import serve_on_loopback
from tests.tools.bench.stand_in_meter import GUEST_BUSY_CORES, VCPU_THREAD_CORES, StandInMeter


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        status = b"503 Service Unavailable" if b"/fail" in head else b"200 OK"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()


async def _serve_with_request_timeout(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Like HAProxy's `timeout http-request`: a new connection silent for 0.5 s is closed."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.5)
    except TimeoutError:
        return
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    if head:
        await _serve(reader, writer)


@pytest.fixture
def server_port() -> Iterator[int]:
    yield from serve_on_loopback(_serve)


@pytest.fixture
def strict_port() -> Iterator[int]:
    yield from serve_on_loopback(_serve_with_request_timeout)


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


def test_a_new_connection_asks_at_once_so_a_slow_loris_guard_keeps_it(strict_port: int) -> None:
    profile = C10kProfile(
        connections=50, open_per_s=100.0, request_interval_s=2.0, hold_s=3.0, probe_path="/"
    )
    result = run_c10k(profile, "127.0.0.1", strict_port, "tuned")
    assert result.failed == 0 and result.extra["all_held"] is True
    assert result.extra["all_open_at_s"] is not None


def test_a_metered_run_reads_the_cpu_at_the_holds_ends_and_counts_its_answers(
    server_port: int,
) -> None:
    """A stand-in meter (its guest busy on GUEST_BUSY_CORES): read once when the opening ramp
    ends and once at the end; what the box served and shed in between, per second, beside it."""
    meter = StandInMeter()
    profile = C10kProfile(
        connections=40, open_per_s=40.0, request_interval_s=0.5, hold_s=3.0, probe_path="/"
    )
    result = run_c10k(profile, "127.0.0.1", server_port, "tuned", read_cpu=meter.read)
    assert len(meter.readings) == 2
    hold = result.extra["hold"]
    assert hold["started_s"] == pytest.approx(1.0, abs=0.3)  # 40 connections at 40/s
    assert hold["cpu"]["seconds"] == pytest.approx(profile.hold_s, abs=0.3)
    assert hold["cpu"]["guest_busy_cores"] == pytest.approx(GUEST_BUSY_CORES, abs=0.05)
    assert hold["cpu"]["vcpu_thread_cores"] == pytest.approx(VCPU_THREAD_CORES, abs=0.05)
    assert hold["offered_rps"] == 80.0
    assert hold["served_rps"] == pytest.approx(80.0, rel=0.2) and hold["shed_rps"] == 0
    assert result.extra["hold_guest_cpu_ms_per_served"] == pytest.approx(
        GUEST_BUSY_CORES * 1000 / hold["served_rps"], rel=0.05
    )
    shedding = run_c10k(
        C10kProfile(
            connections=20,
            open_per_s=40.0,
            request_interval_s=0.5,
            hold_s=2.0,
            path="/fail",
            probe_path="/",
        ),
        "127.0.0.1",
        server_port,
        "tuned",
        read_cpu=meter.read,
    )
    assert shedding.extra["hold"]["served_rps"] == 0
    assert shedding.extra["hold"]["shed_rps"] == pytest.approx(40.0, rel=0.2)
    assert math.isnan(shedding.extra["hold_guest_cpu_ms_per_served"])
    unmetered = run_c10k(profile, "127.0.0.1", server_port, "tuned")
    assert "hold" not in unmetered.extra
