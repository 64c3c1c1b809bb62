"""The capacity sweep: an open-loop client (arrivals at a fixed rate, each on an idle keep-alive
connection or a new one) stepping the offered rate past the box's capacity."""

from __future__ import annotations

import asyncio
import math
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from components.tools.bench.c10k import _kind, closed
from components.tools.bench.cpu import CpuReading, WindowCpu, guest_ms_per, window_cpu
from components.tools.bench.profiles import SweepProfile
from components.tools.bench.results import FAILURE_KINDS, ProfileResult, Series, percentile

SATURATED_PERCENT = 90.0
# Connections the generator may hold at once: a queue of 15 s at twice the capacity fits.
MAX_CONNECTIONS = 8192
# File descriptors the generator keeps for itself (its meter's reads, logs) under its limit:
# past that an arrival is not sent, and counted as such, rather than the run failing.
FD_RESERVE = 512
NOT_SENT = "not_sent"  # an Outcome's kind: the generator had no descriptor left to send it


@dataclass(frozen=True)
class Outcome:
    at_s: float  # arrival, from the step's start
    status: int  # 0: no HTTP answer (see kind)
    ms: float
    kind: str = ""

    @property
    def done_s(self) -> float:
        """When its answer (or failure) came, from the step's start."""
        return self.at_s + self.ms / 1000


def _in_window(t_s: float, p: SweepProfile) -> bool:
    return p.warmup_s <= t_s < p.step_s


@dataclass(frozen=True)
class StepResult:
    """Rates are of what the box finished in the step's counted window; latencies, errors and
    sheds are of the requests that arrived in it."""

    multiplier: float
    offered_rps: float
    served_rps: float  # 2xx answers finished in the window, per second
    goodput_rps: float  # those of them within the objective
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int]
    shed: int
    shed_p99_ms: float
    # Where the CPU went in the counted window, when the box was metered (see cpu.py).
    cpu: WindowCpu | None = None
    guest_cpu_ms_per_served: float = math.nan
    # Arrivals the generator could not send (its connections at its file limit): load the box
    # never saw, neither served nor failed by it.
    not_sent: int = 0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def connection_limit() -> int:
    """Connections the generator may hold: its file limit less what it keeps for itself."""
    return max(1, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - FD_RESERVE)


@dataclass
class Client:
    host: str
    port: int
    headers: str
    timeout_s: float
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)
    # Looked up when a client is made (the limit may have been raised since import).
    max_open: int = field(default_factory=lambda: connection_limit())
    open: int = 0  # connections held, idle or busy, or being opened

    async def one(self, path: str) -> tuple[int, float, str]:
        """(status, ms, failure kind) of one GET, on an idle connection if there is one."""
        sent = time.monotonic()
        if self.idle:
            reader, writer = self.idle.pop()
        elif self.open >= self.max_open:
            return 0, 0.0, NOT_SENT
        else:
            self.open += 1
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout_s
                )
            except (OSError, TimeoutError) as e:
                self.open -= 1
                return 0, (time.monotonic() - sent) * 1000, _kind(e)
        try:
            status, keep = await asyncio.wait_for(
                self._exchange(reader, writer, path), self.timeout_s
            )
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            self._close(writer)
            return 0, (time.monotonic() - sent) * 1000, _kind(e)
        ms = (time.monotonic() - sent) * 1000
        if keep:
            self.idle.append((reader, writer))
        else:
            self._close(writer)
        return status, ms, "http_5xx" if status >= 500 else ""

    def _close(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        self.open -= 1

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
    ) -> tuple[int, bool]:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            (int(h.split(":", 1)[1]) for h in lines[1:] if h.lower().startswith("content-length:")),
            0,
        )
        if length:
            await reader.readexactly(length)
        return status, not any(h.lower() == "connection: close" for h in lines[1:])

    async def close(self) -> None:
        """Close the idle connections and wait for them to be closed (a transport closed but
        not yet awaited when its loop ends is left open)."""
        writers = [writer for _, writer in self.idle]
        self.idle.clear()
        self.open -= len(writers)
        await asyncio.gather(*(closed(w) for w in writers))


async def measure_capacity(client: Client, p: SweepProfile) -> float:
    """Requests per second `capacity_clients` clients get served back to back: the box's
    capacity, measured (its own queue keeps every worker busy)."""
    served = 0
    until = time.monotonic() + p.capacity_s

    async def loop() -> None:
        nonlocal served
        while time.monotonic() < until:
            status, _, _ = await client.one(p.path)
            if 200 <= status < 300:
                served += 1

    await asyncio.gather(*(loop() for _ in range(p.capacity_clients)))
    return served / p.capacity_s


async def offer(client: Client, p: SweepProfile, rate: float) -> list[Outcome]:
    """Requests arriving every 1/rate s for step_s, each answered or timed out."""
    outcomes: list[Outcome] = []
    started = time.monotonic()
    tasks = []

    async def arrive(at: float) -> None:
        status, ms, kind = await client.one(p.path)
        outcomes.append(Outcome(at, status, ms, kind))

    n = int(p.step_s * rate)
    for i in range(n):
        at = i / rate
        delay = started + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(arrive(at)))
    await asyncio.gather(*tasks)
    return outcomes


def step_result(
    multiplier: float,
    rate: float,
    outcomes: list[Outcome],
    p: SweepProfile,
    cpu: WindowCpu | None = None,
) -> StepResult:
    counted = [o for o in outcomes if o.at_s >= p.warmup_s]
    window = p.step_s - p.warmup_s
    served = [o.ms for o in counted if 200 <= o.status < 300]
    # Rates are of responses the box finished inside the counted window. A step lasts until
    # its last request is answered or times out, so a box that queues without bound goes on
    # answering the step's arrivals after it: counted by arrival, it would seem to serve
    # whatever was offered, up to (window + client timeout) / window times what it can.
    finished = [o for o in outcomes if 200 <= o.status < 300 and _in_window(o.done_s, p)]
    shed = [o.ms for o in counted if o.status >= 500]
    errors = dict.fromkeys(FAILURE_KINDS, 0)
    not_sent = sum(1 for o in counted if o.kind == NOT_SENT)
    for o in counted:
        if o.kind == NOT_SENT:
            continue
        if o.kind:
            errors[o.kind] += 1
        elif not 200 <= o.status < 300:
            errors["other"] += 1
    served_rps = len(finished) / window
    return StepResult(
        multiplier=multiplier,
        offered_rps=round(rate, 1),
        served_rps=round(served_rps, 1),
        goodput_rps=round(sum(1 for o in finished if o.ms <= p.objective_ms) / window, 1),
        p50_ms=percentile(served, 50),
        p95_ms=percentile(served, 95),
        p99_ms=percentile(served, 99),
        errors=errors,
        shed=len(shed),
        shed_p99_ms=percentile(shed, 99),
        cpu=cpu,
        guest_cpu_ms_per_served=guest_ms_per(cpu, served_rps),
        not_sent=not_sent,
    )


async def metered_window(
    read: Callable[[], CpuReading], started: float, p: SweepProfile
) -> WindowCpu:
    """The CPU of a step's counted window: readings at its start and its end, taken in a
    thread so that arrivals keep their times."""
    loop = asyncio.get_running_loop()

    async def at(t_s: float) -> CpuReading:
        await asyncio.sleep(max(0.0, started + t_s - time.monotonic()))
        return await loop.run_in_executor(None, read)

    before = await at(p.warmup_s)
    return window_cpu(before, await at(p.step_s))


async def sweep(
    host: str,
    port: int,
    p: SweepProfile,
    capacity: float,
    headers: str,
    read_cpu: Callable[[], CpuReading] | None = None,
) -> list[StepResult]:
    steps = []
    for multiplier in p.multipliers:
        client = Client(host, port, headers, p.request_timeout_s)
        rate = capacity * multiplier
        metered = (
            asyncio.create_task(metered_window(read_cpu, time.monotonic(), p))
            if read_cpu is not None
            else None
        )
        try:
            outcomes = await offer(client, p, rate)
            cpu = await metered if metered is not None else None
            steps.append(step_result(multiplier, rate, outcomes, p, cpu))
        finally:
            if metered is not None and not metered.done():
                metered.cancel()
            await client.close()
    return steps


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < MAX_CONNECTIONS:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, MAX_CONNECTIONS), hard))


def capacity_of(host: str, port: int, p: SweepProfile, headers: str) -> float:
    _raise_file_limit()
    loop = asyncio.new_event_loop()
    client = Client(host, port, headers, p.request_timeout_s)
    try:
        return loop.run_until_complete(measure_capacity(client, p))
    finally:
        loop.run_until_complete(client.close())
        loop.close()


def run_sweep(
    p: SweepProfile,
    host: str,
    port: int,
    mode: str,
    capacity: float,
    headers: str = "",
    read_cpu: Callable[[], CpuReading] | None = None,
) -> ProfileResult:
    """The sweep against one box, at steps of `capacity` (the same for stock and tuned), each
    step's CPU metered by `read_cpu` when given."""
    _raise_file_limit()
    cpu_before, wall_before = time.process_time(), time.monotonic()
    loop = asyncio.new_event_loop()
    try:
        steps = loop.run_until_complete(sweep(host, port, p, capacity, headers, read_cpu))
    finally:
        loop.close()
    wall = time.monotonic() - wall_before
    cpu = (time.process_time() - cpu_before) / wall * 100
    failures = dict.fromkeys(FAILURE_KINDS, 0)
    for s in steps:
        for kind, n in s.errors.items():
            failures[kind] += n
    window = p.step_s - p.warmup_s
    series = Series(
        t_s=[s.offered_rps for s in steps],  # x: offered load, not time
        rps=[s.goodput_rps for s in steps],
        p50_ms=[s.p50_ms for s in steps],
        p95_ms=[s.p95_ms for s in steps],
        p99_ms=[s.p99_ms for s in steps],
        errors_per_s=[s.failed / window for s in steps],
        load=[s.served_rps for s in steps],
    )
    below = [s for s in steps if s.multiplier < 1]
    return ProfileResult(
        profile="sweep",
        mode=mode,
        requests=round(sum(s.served_rps for s in steps) * window),
        failures=failures,
        p50_ms=percentile([s.p50_ms for s in below], 50) if below else float("nan"),
        p95_ms=percentile([s.p95_ms for s in below], 100) if below else float("nan"),
        p99_ms=percentile([s.p99_ms for s in below], 100) if below else float("nan"),
        peak_connections=0,
        generator_cpu_percent=round(cpu, 1),
        generator_saturated=cpu >= SATURATED_PERCENT,
        duration_s=round(wall, 1),
        series=series,
        extra={
            "capacity_rps": round(capacity, 1),
            "objective_ms": p.objective_ms,
            "peak_goodput_rps": max((s.goodput_rps for s in steps), default=0.0),
            "steps": [{**asdict(s), "failed": s.failed} for s in steps],
        },
    )
