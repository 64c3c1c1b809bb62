"""The rehearsal's small load: the benchmark's VM-rig pieces wired as `bench` wires them,
here against a loopback server and a stand-in box (the rehearsal runs it against its VM)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from components.tools.bench.profiles import C10kProfile
from components.tools.bench.underload import NoJobs
from components.tools.rehearsal.load_check import load_check, small_load
from tests.tools.bench.loopback_server import serve_on_loopback
from tests.tools.bench.stand_in_meter import StandInMeter

PROFILE = C10kProfile(connections=20, open_per_s=100.0, request_interval_s=1.0, hold_s=2.0)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()


@pytest.fixture
def port() -> Iterator[int]:
    yield from serve_on_loopback(_serve)


@dataclass
class StandInMeterToClose(StandInMeter):
    closed: bool = False

    def close(self) -> None:
        self.closed = True


@dataclass
class StandInBox:
    """A box whose shell reports `connections` established on port 80 every 2 s."""

    connections: int
    target: str = "127.0.0.1"
    meters: list[StandInMeterToClose] = field(default_factory=list)

    def shell_base(self) -> list[str]:
        # The sampler's own script arrives as $0 and is not run: this box reports a count.
        return ["bash", "-c", f"while true; do echo {self.connections}; sleep 2; done"]

    def meter(self) -> StandInMeterToClose:
        self.meters.append(StandInMeterToClose())
        return self.meters[-1]

    def journal(self) -> NoJobs:
        return NoJobs()


def test_the_small_load_is_held_sampled_and_metered(port: int) -> None:
    box = StandInBox(PROFILE.connections)
    result = small_load(box, port, PROFILE)
    check = load_check(result, PROFILE)
    assert check.ok, check.measured
    assert "guest 1.50 cores, vCPU threads 1.00" in check.measured
    assert len(box.meters[0].readings) == 2 and box.meters[0].closed  # the hold's two ends


def test_a_load_whose_hold_was_not_metered_fails_the_check(port: int) -> None:
    box = StandInBox(PROFILE.connections)
    result = small_load(box, port, PROFILE)
    del result.extra["hold"]
    check = load_check(result, PROFILE)
    assert not check.ok and "hold not metered" in check.measured


def test_connections_the_box_never_saw_fail_the_check(port: int) -> None:
    result = small_load(StandInBox(3), port, PROFILE)
    assert not load_check(result, PROFILE).ok
