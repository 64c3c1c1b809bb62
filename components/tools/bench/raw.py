"""The physical limit: what the app serves on the box's cores with nothing in front of it.
gunicorn is driven directly on its Unix socket by closed-loop clients (each sends a request,
reads the answer, sends the next), at a few concurrencies around its worker count; the best
rate is what any proxy, queue or shedding in front of it can at most pass on."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

WARMUP_S = 1.0


@dataclass(frozen=True)
class RawRate:
    concurrency: int
    served_rps: float  # 2xx answers per second in the counted window
    failed: int
    generator_cores: float  # the client's own CPU: near 1.0, it is the limit, not the app


@dataclass(frozen=True)
class RawThroughput:
    rates: tuple[RawRate, ...]

    @property
    def best(self) -> RawRate:
        return max(self.rates, key=lambda r: r.served_rps)


def request_bytes(path: str, headers: str) -> bytes:
    return f"GET {path} HTTP/1.0\r\nHost: box\r\n{headers}\r\n".encode()


async def _client(
    socket: Path, request: bytes, until: float, counted_from: float, tally: list[int]
) -> None:
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_unix_connection(str(socket))
            writer.write(request)
            await writer.drain()
            answer = await reader.read()  # gunicorn closes after each answer (keepalive 0)
            writer.close()
        except OSError:
            answer = b""
        if time.monotonic() >= counted_from:
            ok = answer.startswith((b"HTTP/1.0 2", b"HTTP/1.1 2"))
            tally[0 if ok else 1] += 1


async def _rate(socket: Path, request: bytes, concurrency: int, seconds: float) -> RawRate:
    start, cpu_start = time.monotonic(), time.process_time()
    counted_from, until = start + WARMUP_S, start + WARMUP_S + seconds
    tally = [0, 0]
    await asyncio.gather(
        *(_client(socket, request, until, counted_from, tally) for _ in range(concurrency))
    )
    end = time.monotonic()
    window = end - counted_from
    cores = (time.process_time() - cpu_start) / (end - start)
    return RawRate(concurrency, round(tally[0] / window, 1), tally[1], round(cores, 2))


def raw_throughput(
    socket: Path, path: str, headers: str, concurrencies: tuple[int, ...], seconds: float
) -> RawThroughput:
    """Each concurrency in turn for `seconds` (after a second's warm-up)."""
    request = request_bytes(path, headers)
    loop = asyncio.new_event_loop()
    try:
        rates = tuple(
            loop.run_until_complete(_rate(socket, request, c, seconds)) for c in concurrencies
        )
    finally:
        loop.close()
    return RawThroughput(rates)


def concurrencies_for(workers: int) -> tuple[int, ...]:
    """As many clients as workers (each busy), twice (one waiting per worker: no gap between
    requests) and four times (a backlog)."""
    return (workers, 2 * workers, 4 * workers)
