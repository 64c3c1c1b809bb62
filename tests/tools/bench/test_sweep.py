"""The open-loop sweep against a loopback stand-in for a box: 4 workers at 50 ms a request
(80 req/s), a queue of 4 beyond which requests are shed at once with 503, or no bound."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import replace

import pytest

from components.tools.bench.profiles import SweepProfile
from components.tools.bench.sweep import capacity_of, run_sweep
from tests.tools.bench.loopback_server import serve_on_loopback
from tests.tools.bench.stand_in_meter import GUEST_BUSY_CORES, VCPU_THREAD_CORES, StandInMeter

WORKERS, SERVICE_S, QUEUE = 4, 0.05, 4
TOKEN = "X-Token: t\r\n"


def _box(shed: bool) -> Iterator[int]:
    waiting = 0
    workers = asyncio.Semaphore(WORKERS)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal waiting
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if b"X-Token: t" not in head:
                status = b"403 Forbidden"
            elif shed and waiting >= QUEUE:
                status = b"503 Service Unavailable"
            else:
                waiting += 1
                async with workers:
                    waiting -= 1
                    await asyncio.sleep(SERVICE_S)
                status = b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    yield from serve_on_loopback(serve)


@pytest.fixture
def shedding_box() -> Iterator[int]:
    yield from _box(shed=True)


@pytest.fixture
def queueing_box() -> Iterator[int]:
    yield from _box(shed=False)


PROFILE = SweepProfile(
    multipliers=(0.5, 2.0),
    step_s=3.0,
    warmup_s=1.0,
    objective_ms=200.0,
    path="/hits",
    request_timeout_s=5.0,
    capacity_clients=16,
    capacity_s=1.5,
)
CAPACITY = WORKERS / SERVICE_S  # 80 req/s


def test_capacity_is_what_back_to_back_clients_get_served(shedding_box: int) -> None:
    measured = capacity_of("127.0.0.1", shedding_box, PROFILE, TOKEN)
    assert CAPACITY * 0.6 <= measured <= CAPACITY * 1.05


def test_the_sweep_offers_fixed_rates_and_counts_sheds_apart(shedding_box: int) -> None:
    result = run_sweep(PROFILE, "127.0.0.1", shedding_box, "tuned", CAPACITY, TOKEN)
    below, above = result.extra["steps"]
    assert below["offered_rps"] == 40.0 and above["offered_rps"] == 160.0
    # Below capacity every arrival is served, within the objective.
    assert below["failed"] == 0 and below["served_rps"] == pytest.approx(40, rel=0.1)
    assert below["goodput_rps"] == below["served_rps"]
    # At twice capacity the box serves what it can and sheds the rest, quickly.
    assert above["served_rps"] <= CAPACITY * 1.1
    assert above["shed"] > 0 and above["errors"]["http_5xx"] == above["shed"]
    assert above["shed_p99_ms"] < above["p99_ms"]
    assert result.extra["capacity_rps"] == CAPACITY
    assert result.series.t_s == [40.0, 160.0]  # plotted against the offered rate


def test_an_unbounded_queue_serves_late_so_goodput_falls(queueing_box: int) -> None:
    result = run_sweep(PROFILE, "127.0.0.1", queueing_box, "stock", CAPACITY, TOKEN)
    _, above = result.extra["steps"]
    assert above["shed"] == 0
    # Requests wait behind a growing queue: served ones come late, past the objective.
    assert above["p99_ms"] > PROFILE.objective_ms
    assert above["goodput_rps"] < above["served_rps"]


def test_a_queue_that_serves_after_the_step_does_not_count_as_more_served(
    queueing_box: int,
) -> None:
    # At twice capacity the queue holds the step's excess and the box goes on answering it
    # after the last arrival, within the client's timeout: served is what it answered in the
    # window, at most its capacity, not every arrival it answered in the end.
    result = run_sweep(PROFILE, "127.0.0.1", queueing_box, "stock", CAPACITY, TOKEN)
    _, above = result.extra["steps"]
    assert above["failed"] == 0  # every arrival was answered in the end
    assert above["served_rps"] <= CAPACITY * 1.1


def test_a_refused_token_is_an_error_not_a_served_request(shedding_box: int) -> None:
    below_only = replace(PROFILE, multipliers=(0.5,))
    result = run_sweep(below_only, "127.0.0.1", shedding_box, "tuned", CAPACITY, headers="")
    (below,) = result.extra["steps"]
    assert below["served_rps"] == 0 and below["errors"]["other"] > 0
    assert math.isnan(below["p50_ms"])


def test_a_metered_step_reads_the_cpu_at_its_counted_windows_ends(shedding_box: int) -> None:
    """A stand-in meter (its guest busy on GUEST_BUSY_CORES): each step gets the CPU of its counted
    window (read at warmup_s and at step_s) and the guest's CPU per served request."""
    meter = StandInMeter()
    result = run_sweep(PROFILE, "127.0.0.1", shedding_box, "tuned", CAPACITY, TOKEN, meter.read)
    assert len(meter.readings) == 2 * len(PROFILE.multipliers)
    for step in result.extra["steps"]:
        cpu = step["cpu"]
        assert cpu["seconds"] == pytest.approx(PROFILE.step_s - PROFILE.warmup_s, abs=0.2)
        assert cpu["guest_busy_cores"] == pytest.approx(GUEST_BUSY_CORES, abs=0.05)
        assert cpu["vcpu_thread_cores"] == pytest.approx(VCPU_THREAD_CORES, abs=0.05)
        assert step["guest_cpu_ms_per_served"] == pytest.approx(
            GUEST_BUSY_CORES * 1000 / step["served_rps"], rel=0.05
        )


def test_an_unmetered_step_has_no_cpu_figures(shedding_box: int) -> None:
    below_only = replace(PROFILE, multipliers=(0.5,))
    (below,) = run_sweep(below_only, "127.0.0.1", shedding_box, "tuned", CAPACITY, TOKEN).extra[
        "steps"
    ]
    assert below["cpu"] is None and math.isnan(below["guest_cpu_ms_per_served"])


def test_arrivals_past_the_generators_connection_limit_are_not_sent_not_failed(
    queueing_box: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A generator allowed 10 connections against a box that queues: at twice capacity the
    # queue holds them all, and further arrivals are counted as not sent, not as the box's.
    monkeypatch.setattr("components.tools.bench.sweep.connection_limit", lambda: 10)
    result = run_sweep(PROFILE, "127.0.0.1", queueing_box, "stock", CAPACITY, TOKEN)
    below, above = result.extra["steps"]
    assert above["not_sent"] > 0
    assert above["failed"] == 0
    assert 0 < above["served_rps"] <= CAPACITY * 1.1
    assert below["not_sent"] == 0  # at half capacity a few connections are enough
