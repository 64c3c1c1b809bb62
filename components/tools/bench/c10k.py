"""C10K: a lean asyncio client holding many keep-alive connections (Locust's one-greenlet-
per-user model is not built to hold 10,000 mostly idle sockets from one process)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from components.tools.bench.cpu import CpuReading, WindowCpu, guest_ms_per, window_cpu
from components.tools.bench.profiles import C10kProfile
from components.tools.bench.results import FAILURE_KINDS, ProfileResult, Series, percentile

SATURATED_PERCENT = 90.0


@dataclass
class Tally:
    started: float = field(default_factory=time.monotonic)
    open_now: int = 0
    open_max: int = 0
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (t, ms)
    errors: list[tuple[float, str]] = field(default_factory=list)
    probe_ms: list[float] = field(default_factory=list)
    open_samples: list[tuple[float, int]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    def error(self, kind: str) -> None:
        self.errors.append((self.now(), kind))


def _kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | asyncio.IncompleteReadError):
        return "reset"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "other"


async def request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str, timeout: float
) -> int:
    """One HTTP/1.1 keep-alive GET; the status code."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        (int(h.split(":", 1)[1]) for h in lines[1:] if h.lower().startswith("content-length:")), 0
    )
    if length:
        await asyncio.wait_for(reader.readexactly(length), timeout)
    if any(h.lower() == "connection: close" for h in lines[1:]):
        raise ConnectionResetError("server closed the keep-alive connection")
    return status


async def closed(writer: asyncio.StreamWriter) -> None:
    """Close and wait: a transport whose close is still pending when the loop ends stays open."""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def hold_one(host: str, port: int, p: C10kProfile, tally: Tally, until: float) -> None:
    """One client: connect, then a request every interval, reconnecting after an error."""
    while tally.now() < until:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), p.request_timeout_s
            )
        except (OSError, TimeoutError) as e:
            tally.error(_kind(e))
            await asyncio.sleep(1)
            continue
        tally.open_now += 1
        tally.open_max = max(tally.open_max, tally.open_now)
        try:
            # A client connects to send a request, so the first goes at once (a silent new
            # connection is what HAProxy's `timeout http-request` cuts as a slow-loris); one
            # random pause after it spreads the clients' later requests over the interval.
            first = True
            while tally.now() < until:
                sent = time.monotonic()
                status = await request(reader, writer, host, p.path, p.request_timeout_s)
                if status >= 500:
                    tally.error("http_5xx")
                else:
                    tally.latencies.append((tally.now(), (time.monotonic() - sent) * 1000))
                pause = random.uniform(0, p.request_interval_s) if first else p.request_interval_s
                first = False
                await asyncio.sleep(pause)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            tally.error(_kind(e))
        finally:
            tally.open_now -= 1
            await closed(writer)


async def probe(host: str, port: int, p: C10kProfile, tally: Tally, until: float) -> None:
    while tally.now() < until:
        sent = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            status = await request(reader, writer, host, p.probe_path, p.request_timeout_s)
            await closed(writer)
            if status == 200:
                tally.probe_ms.append((time.monotonic() - sent) * 1000)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        await asyncio.sleep(p.probe_interval_s)


async def sample(tally: Tally, until: float) -> None:
    while tally.now() < until:
        tally.open_samples.append((tally.now(), tally.open_now))
        await asyncio.sleep(1)


@dataclass(frozen=True)
class HoldCpu:
    """Where the CPU went during the hold, beside what the box answered in the same window: a
    box whose guest is busy on every vCPU serves its capacity, and sheds what is offered above
    it."""

    started_s: float  # by the tally's clock
    cpu: WindowCpu
    offered_rps: float  # the held connections' rate: connections / request interval
    served_rps: float
    shed_rps: float  # answered 5xx

    @property
    def guest_cpu_ms_per_served(self) -> float:
        return guest_ms_per(self.cpu, self.served_rps)


async def meter_hold(
    read: Callable[[], CpuReading], tally: Tally, ramp_s: float, until_s: float
) -> tuple[CpuReading, CpuReading]:
    """Readings at the hold's start and end, taken in a thread so the clients keep their times."""
    loop = asyncio.get_running_loop()

    async def at(t_s: float) -> CpuReading:
        await asyncio.sleep(max(0.0, t_s - tally.now()))
        return await loop.run_in_executor(None, read)

    before = await at(ramp_s)
    return before, await at(until_s)


def hold_cpu(tally: Tally, p: C10kProfile, before: CpuReading, after: CpuReading) -> HoldCpu:
    start, end = before.at_s - tally.started, after.at_s - tally.started
    seconds = end - start
    served = sum(1 for t, _ in tally.latencies if start <= t < end)
    shed = sum(1 for t, kind in tally.errors if start <= t < end and kind == "http_5xx")
    return HoldCpu(
        started_s=round(start, 1),
        cpu=window_cpu(before, after),
        offered_rps=round(p.connections / p.request_interval_s, 1),
        served_rps=round(served / seconds, 1),
        shed_rps=round(shed / seconds, 1),
    )


async def run(
    host: str, port: int, p: C10kProfile, read_cpu: Callable[[], CpuReading] | None = None
) -> tuple[Tally, HoldCpu | None]:
    tally = Tally()
    ramp = p.connections / p.open_per_s
    until = ramp + p.hold_s
    metered = asyncio.create_task(meter_hold(read_cpu, tally, ramp, until)) if read_cpu else None
    try:
        tasks = [
            asyncio.create_task(probe(host, port, p, tally, until)),
            asyncio.create_task(sample(tally, until)),
        ]
        for _ in range(p.connections):
            tasks.append(asyncio.create_task(hold_one(host, port, p, tally, until)))
            await asyncio.sleep(1 / p.open_per_s)
        await asyncio.gather(*tasks)
        if metered is None:
            return tally, None
        return tally, hold_cpu(tally, p, *await metered)
    finally:
        if metered is not None and not metered.done():
            metered.cancel()


def series_of(tally: Tally, bucket_s: int = 5) -> Series:
    series = Series()
    end = int(tally.now()) + 1
    for start in range(0, end, bucket_s):
        window = [ms for t, ms in tally.latencies if start <= t < start + bucket_s]
        errors = [k for t, k in tally.errors if start <= t < start + bucket_s]
        opened = [n for t, n in tally.open_samples if start <= t < start + bucket_s]
        series.t_s.append(start)
        series.rps.append(len(window) / bucket_s)
        series.p50_ms.append(percentile(window, 50))
        series.p95_ms.append(percentile(window, 95))
        series.p99_ms.append(percentile(window, 99))
        series.errors_per_s.append(len(errors) / bucket_s)
        series.load.append(max(opened, default=0))
    return series


def run_c10k(
    profile: C10kProfile,
    host: str,
    port: int,
    mode: str,
    peak_connections: int = 0,
    read_cpu: Callable[[], CpuReading] | None = None,
) -> ProfileResult:
    """The profile against host:port; the hold's CPU metered by `read_cpu` when given."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = profile.connections + 256
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    cpu_before, wall_before = time.process_time(), time.monotonic()
    # A private loop: asyncio.run() would leave this thread without a current event loop.
    loop = asyncio.new_event_loop()
    try:
        tally, held_cpu = loop.run_until_complete(run(host, port, profile, read_cpu))
    finally:
        loop.close()
    wall = time.monotonic() - wall_before
    cpu = (time.process_time() - cpu_before) / wall * 100
    latencies = [ms for _, ms in tally.latencies]
    failures = dict.fromkeys(FAILURE_KINDS, 0)
    for _, kind in tally.errors:
        failures[kind] += 1
    # Held from the first moment all were open (connects can lag the opening ramp) to the end.
    full_at = next((t for t, n in tally.open_samples if n >= profile.connections), None)
    held = [n for t, n in tally.open_samples if full_at is not None and t >= full_at]
    return ProfileResult(
        profile="c10k",
        mode=mode,
        requests=len(latencies),
        failures=failures,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        peak_connections=peak_connections,
        generator_cpu_percent=round(cpu, 1),
        generator_saturated=cpu >= SATURATED_PERCENT,
        duration_s=round(wall, 1),
        series=series_of(tally),
        extra={
            "connections": profile.connections,
            "all_open_at_s": full_at,
            "held_min_during_hold": min(held, default=0),
            "held_max": tally.open_max,
            "all_held": min(held, default=0) >= profile.connections,
            "probe_requests": len(tally.probe_ms),
            "probe_p50_ms": percentile(tally.probe_ms, 50),
            "probe_p99_ms": percentile(tally.probe_ms, 99),
            "request_interval_s": profile.request_interval_s,
            **(
                {
                    "hold": asdict(held_cpu),
                    "hold_guest_cpu_ms_per_served": held_cpu.guest_cpu_ms_per_served,
                }
                if held_cpu is not None
                else {}
            ),
        },
    )
