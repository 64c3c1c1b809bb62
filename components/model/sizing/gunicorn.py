"""gunicorn tunables: how many workers the CPU share and the RAM share can carry."""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.model.settings import GunicornOverrides, WorkerClass

# Queue on the Unix socket in front of the workers; HAProxy's per-server maxconn keeps it short.
LISTEN_BACKLOG = 2048
# HAProxy closes its side after each response (`option http-server-close`): 0 has gunicorn
# answer with `Connection: close` instead of holding an idle connection that counts against
# a gthread worker's connections.
KEEPALIVE_SECONDS = 0
# What recycling a worker costs, in requests' work: it re-imports the app and opens new
# PostgreSQL and Redis connections (a new backend, its authentication, cold caches). Measured
# on the bench's emulated staging box with `bench --profile restarts` (closed-loop `/hits`,
# restarts forced with max_requests 200, against none): 2.4-2.7 s of guest CPU per restart,
# 86, 97 and 93 requests' work in three runs. At max_requests 1000 (a restart every ~1,500
# requests) that was about 7 % of its CPU.
RESTART_COST_REQUESTS = 100
# Recycling is a guard against an app that leaks memory, so it may cost little: this share of
# the workers' time.
RESTART_OVERHEAD = 0.01
# With a whole cycle of jitter a worker restarts after 1.5 x max_requests requests on average.
MEAN_CYCLE_PER_MAX_REQUESTS = 1.5


def recycle_after() -> int:
    """The max_requests at which restarts take RESTART_OVERHEAD of the workers' time."""
    return math.ceil(RESTART_COST_REQUESTS / (RESTART_OVERHEAD * MEAN_CYCLE_PER_MAX_REQUESTS))


def restart_overhead(max_requests: int) -> float:
    """The share of the workers' time restarts take (0 when workers are never recycled)."""
    if max_requests == 0:
        return 0.0
    return RESTART_COST_REQUESTS / (max_requests * MEAN_CYCLE_PER_MAX_REQUESTS)


@dataclass(frozen=True)
class GunicornTunables:
    workers: int
    worker_class: WorkerClass
    threads: int
    # gthread only: a worker accepts no more connections than it has threads, so a busy worker
    # leaves the next request to an idle one (gunicorn's default, 1000, lets it queue inside).
    worker_connections: int | None
    keepalive_seconds: int
    timeout_seconds: int
    graceful_timeout_seconds: int
    max_requests: int
    max_requests_jitter: int
    backlog: int
    cpu_bound_workers: int
    ram_bound_workers: int

    @property
    def concurrency(self) -> int:
        """Requests the app can work on at once: what HAProxy may send it."""
        return self.workers * self.threads


def cpu_bound_workers(app_cores: int) -> int:
    return 2 * app_cores + 1  # gunicorn's design guide: (2 x cores) + 1


def ram_bound_workers(app_ram_mb: int, worker_rss_mb: int) -> int:
    return max(1, app_ram_mb // worker_rss_mb)


def size_gunicorn(
    app_cores: int, app_ram_mb: int, worker_rss_mb: int, overrides: GunicornOverrides
) -> GunicornTunables:
    by_cpu = cpu_bound_workers(app_cores)
    by_ram = ram_bound_workers(app_ram_mb, worker_rss_mb)
    workers = overrides.workers if overrides.workers is not None else min(by_cpu, by_ram)
    max_requests = recycle_after() if overrides.max_requests is None else overrides.max_requests
    return GunicornTunables(
        workers=workers,
        worker_class=overrides.worker_class,
        threads=overrides.threads,
        worker_connections=overrides.threads if overrides.worker_class == "gthread" else None,
        keepalive_seconds=KEEPALIVE_SECONDS,
        timeout_seconds=overrides.timeout_seconds,
        graceful_timeout_seconds=overrides.timeout_seconds,
        max_requests=max_requests,
        # Workers start together and share requests evenly, so they reach max_requests
        # together: gunicorn adds randint(0, jitter) to each worker's limit, and a tenth of a
        # cycle still restarted all of them within seconds (every worker re-imports the app
        # meanwhile; measured as 2 s stalls every ~5,000 requests on the bench's staging box).
        # A whole cycle of jitter spreads the restarts over a cycle.
        max_requests_jitter=max_requests,
        backlog=LISTEN_BACKLOG,
        cpu_bound_workers=by_cpu,
        ram_bound_workers=by_ram,
    )


# gunicorn's own defaults, for the stock box.
STOCK_TIMEOUT_SECONDS = 30
STOCK_KEEPALIVE_SECONDS = 2


def stock_gunicorn(vcpus: int) -> GunicornTunables:
    """What a careful newcomer deploys: gunicorn's (2 x cores) + 1 on every core, its defaults."""
    workers = cpu_bound_workers(vcpus)
    return GunicornTunables(
        workers=workers,
        worker_class="sync",
        threads=1,
        worker_connections=None,
        keepalive_seconds=STOCK_KEEPALIVE_SECONDS,
        timeout_seconds=STOCK_TIMEOUT_SECONDS,
        graceful_timeout_seconds=STOCK_TIMEOUT_SECONDS,
        max_requests=0,
        max_requests_jitter=0,
        backlog=LISTEN_BACKLOG,
        cpu_bound_workers=workers,
        ram_bound_workers=workers,
    )
