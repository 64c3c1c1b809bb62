"""What recycling a gunicorn worker costs, measured on a booted box: closed-loop clients on
`/hits` in windows with recycling off and with restarts forced, the guest's CPU per request of
each, the restarts counted from gunicorn's own log. A restart's cost, in requests' work, is the
forced windows' extra CPU over their requests, per restart, divided by one request's CPU. It is
the measurement behind sizing's RESTART_COST_REQUESTS."""

from __future__ import annotations

import shlex
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Protocol

from components.model.layout import PATHS
from components.tools.bench.cpu import USER_HZ, busy_ticks
from components.tools.bench.profiles import RestartsProfile, SweepProfile
from components.tools.bench.results import FAILURE_KINDS, ProfileResult, Series
from components.tools.bench.sweep import SATURATED_PERCENT, capacity_of

APP_UNIT = "tunedstack-app.service"
# The line gunicorn's arbiter logs each time it starts a worker (gunicorn/arbiter.py).
BOOTING = "Booting worker with pid"
# The guest's busy CPU (all of /proc/stat's first line but idle and iowait), in USER_HZ ticks,
# and how many workers gunicorn has started since the box booted.
SAMPLE = f"head -1 /proc/stat; journalctl -u {APP_UNIT} -o cat | grep -c '{BOOTING}' || true"


class Shell(Protocol):
    """A box to run scripts on: the rehearsal's Vm."""

    def ssh(
        self, script: str, stdin: str | None = None, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...


@dataclass(frozen=True)
class GuestSample:
    busy_ticks: int
    workers_started: int


def parse_sample(text: str) -> GuestSample:
    cpu_line, started = text.strip().splitlines()[:2]
    return GuestSample(busy_ticks(cpu_line), int(started))


@dataclass(frozen=True)
class Window:
    max_requests: int
    served: int
    seconds: float
    cpu_ms: float  # the guest's busy CPU over the window, all of its vCPUs
    restarts: int

    @property
    def rps(self) -> float:
        return self.served / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_ms / self.served if self.served else float("nan")


def calm_cpu_ms_per_request(windows: list[Window]) -> float:
    """One request's CPU, from the windows with recycling off."""
    calm = [w.cpu_ms_per_request for w in windows if w.max_requests == 0 and w.served]
    if not calm:
        raise ValueError("needs a window with recycling off that served requests")
    return statistics.mean(calm)


def restart_cost_requests(windows: list[Window]) -> float:
    """A restart's cost in requests' work: the extra CPU of the windows with restarts over what
    their requests cost in the windows without, per restart, over one request's CPU."""
    per_request = calm_cpu_ms_per_request(windows)
    forced = [w for w in windows if w.restarts]
    if not forced:
        raise ValueError("needs a window in which workers restarted")
    extra_ms = sum(w.cpu_ms - per_request * w.served for w in forced)
    return extra_ms / sum(w.restarts for w in forced) / per_request


def recycling_config(text: str, max_requests: int) -> str:
    """gunicorn.conf.py recycling after `max_requests` (+ as much jitter, as sizing does)."""
    kept = [
        line
        for line in text.splitlines()
        if not line.startswith(("max_requests =", "max_requests_jitter ="))
    ]
    return "\n".join(
        [*kept, f"max_requests = {max_requests}", f"max_requests_jitter = {max_requests}", ""]
    )


def _install(box: Shell, conf_text: str) -> None:
    conf = shlex.quote(PATHS.gunicorn_conf)
    box.ssh(
        f"cat > {conf} && systemctl restart {APP_UNIT} && systemctl is-active --quiet {APP_UNIT}",
        stdin=conf_text,
    )


def run_restarts(
    p: RestartsProfile, box: Shell, host: str, port: int, mode: str, headers: str
) -> ProfileResult:
    """Windows alternating recycling off and forced, `p.rounds` of each; the box is left
    recycling as it was rendered (the original gunicorn.conf.py put back)."""
    original = box.ssh(f"cat {shlex.quote(PATHS.gunicorn_conf)}").stdout
    clients = SweepProfile(path=p.path, capacity_clients=p.clients, capacity_s=p.window_s)
    warm = SweepProfile(path=p.path, capacity_clients=p.clients, capacity_s=p.warmup_s)
    windows: list[Window] = []
    started, cpu_before = time.monotonic(), time.process_time()
    try:
        for _ in range(p.rounds):
            for max_requests in (0, p.forced_max_requests):
                _install(box, recycling_config(original, max_requests))
                capacity_of(host, port, warm, headers)  # every worker past its first requests
                before, t0 = parse_sample(box.ssh(SAMPLE).stdout), time.monotonic()
                rps = capacity_of(host, port, clients, headers)
                after, seconds = parse_sample(box.ssh(SAMPLE).stdout), time.monotonic() - t0
                windows.append(
                    Window(
                        max_requests=max_requests,
                        served=round(rps * p.window_s),
                        seconds=seconds,
                        cpu_ms=(after.busy_ticks - before.busy_ticks) * 1000 / USER_HZ,
                        restarts=after.workers_started - before.workers_started,
                    )
                )
    finally:
        _install(box, original)
    wall = time.monotonic() - started
    generator_cpu = (time.process_time() - cpu_before) / wall * 100
    cost = restart_cost_requests(windows)
    return ProfileResult(
        profile="restarts",
        mode=mode,
        requests=sum(w.served for w in windows),
        failures=dict.fromkeys(FAILURE_KINDS, 0),
        p50_ms=float("nan"),
        p95_ms=float("nan"),
        p99_ms=float("nan"),
        peak_connections=0,
        generator_cpu_percent=round(generator_cpu, 1),
        generator_saturated=generator_cpu >= SATURATED_PERCENT,
        duration_s=round(wall, 1),
        series=Series(
            t_s=[float(i) for i in range(len(windows))],  # x: the window's number
            rps=[round(w.rps, 1) for w in windows],
            load=[float(w.restarts) for w in windows],
        ),
        extra={
            "restart_cost_requests": round(cost, 1),
            "restart_cpu_s": round(cost * calm_cpu_ms_per_request(windows) / 1000, 2),
            "windows": [
                {**asdict(w), "cpu_ms_per_request": round(w.cpu_ms_per_request, 2)} for w in windows
            ],
        },
    )
