"""Sizing: plan + settings -> the budget and every tunable. Pure functions, no I/O.

This is the one source of every number that lands in a config file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from components.model.errors import Problem, SizingError
from components.model.plans import PLANS, Plan
from components.model.settings import NAMESPACE, Image, Settings
from components.model.sizing.backups import BackupTunables, size_backups
from components.model.sizing.budget import (
    APP_SHARE,
    POSTGRES_MIN_MB,
    REDIS_SHARE,
    Budget,
    CpuSplit,
    cpu_split,
    os_reserve_mb,
)
from components.model.sizing.gunicorn import (
    GunicornTunables,
    cpu_bound_workers,
    size_gunicorn,
    stock_gunicorn,
)
from components.model.sizing.haproxy import (
    HaproxyTunables,
    haproxy_memory_mb,
    maxconn_for_peak,
    maxqueue,
    maxqueue_ceiling,
    size_haproxy,
)
from components.model.sizing.kernel import (
    KernelProfile,
    kernel_network_mb,
    size_kernel,
    tw_buckets,
)
from components.model.sizing.postgres import (
    PostgresTunables,
    app_connections,
    connections_per_worker,
    least_max_connections,
    max_connections,
    size_postgres,
)
from components.model.sizing.redis import (
    RedisTunables,
    fork_headroom_mb,
    maxmemory_for_data,
    maxmemory_in_share,
    size_redis,
)
from components.model.sizing.volume import GB_MB, MAX_VOLUME_GB, VolumeBudget, database_mb

POSTGRES_VERSION: dict[Image, int] = {"linode/debian12": 15, "linode/ubuntu24.04": 16}


@dataclass(frozen=True)
class Sizing:
    plan: Plan
    cpu: CpuSplit
    budget: Budget
    postgres: PostgresTunables
    redis: RedisTunables
    gunicorn: GunicornTunables
    haproxy: HaproxyTunables
    kernel: KernelProfile
    volume: VolumeBudget
    backups: BackupTunables
    capacity_rps: int
    declared_rps: int | None = None  # workload.requestsPerSecond, checked against capacity

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["budget"]["lines"] = [asdict(line) for line in self.budget.lines()]
        data["volume"]["lines"] = [asdict(line) for line in self.volume.lines()]
        data["postgres"]["conf"] = self.postgres.conf()
        data["gunicorn"]["concurrency"] = self.gunicorn.concurrency
        return data


def _memory_drivers(settings: Settings) -> list[str]:
    """Stack keys that asked for memory explicitly, to name in a budget error."""
    set_keys = []
    s = settings.services
    for key, value in (
        ("services.redis.maxmemoryMb", s.redis.maxmemory_mb),
        ("services.postgres.memoryMb", s.postgres.memory_mb),
        ("services.gunicorn.workers", s.gunicorn.workers),
        ("services.haproxy.maxconn", s.haproxy.maxconn),
        ("workload.redisDataMb", settings.workload.redis_data_mb),
    ):
        if value is not None:
            set_keys.append(f"{NAMESPACE}:{key}")
    return set_keys


def _smallest_fitting_plan(needed_mb: int, current: Plan) -> Plan | None:
    candidates = [
        p for p in PLANS.values() if p.memory_mb >= needed_mb and p.vcpus >= current.vcpus
    ]
    return min(candidates, key=lambda p: (p.memory_mb, p.vcpus), default=None)


def size(settings: Settings, source: str = "stack", plan: Plan | None = None) -> Sizing:
    """Size the box; `plan` replaces the catalog entry (a live API answer, or a test's machine)."""
    plan = plan or PLANS[settings.plan]
    s = settings.services
    total = plan.memory_mb
    cpu = cpu_split(plan.vcpus)

    maxconn = s.haproxy.maxconn or maxconn_for_peak(settings.workload.peak_connections)
    os_mb = os_reserve_mb(total)
    kernel_mb = kernel_network_mb(maxconn, tw_buckets(maxconn, total))
    haproxy_mb = haproxy_memory_mb(maxconn, _most_requests_held(settings, cpu))
    fixed = os_mb + kernel_mb + haproxy_mb

    pool = total - fixed

    headroom_pct = s.redis.fork_headroom_percent
    if s.redis.maxmemory_mb is not None:
        maxmemory = s.redis.maxmemory_mb
    elif settings.workload.redis_data_mb is not None:
        maxmemory = maxmemory_for_data(settings.workload.redis_data_mb)
    else:
        maxmemory = maxmemory_in_share(max(0, math.floor(pool * REDIS_SHARE)), headroom_pct)
    maxmemory = max(maxmemory, 1)
    redis_share = maxmemory + fork_headroom_mb(maxmemory, headroom_pct)

    rss = settings.app.worker_rss_mb
    if settings.stock:
        gunicorn = stock_gunicorn(plan.vcpus)
    else:
        gunicorn = size_gunicorn(cpu.app, max(0, math.floor(pool * APP_SHARE)), rss, s.gunicorn)
    postgres_mb = s.postgres.memory_mb or pool - redis_share - gunicorn.workers * rss

    budget = Budget(
        total_mb=total,
        os_reserve_mb=os_mb,
        kernel_network_mb=kernel_mb,
        haproxy_mb=haproxy_mb,
        postgres_mb=postgres_mb,
        redis_maxmemory_mb=maxmemory,
        redis_fork_headroom_mb=redis_share - maxmemory,
        gunicorn_workers=gunicorn.workers,
        worker_rss_mb=rss,
    )
    problems: list[Problem] = []
    if not budget.fits or postgres_mb < POSTGRES_MIN_MB:
        needed = budget.allocated_mb - budget.postgres_mb + max(postgres_mb, POSTGRES_MIN_MB)
        bigger = _smallest_fitting_plan(needed, plan)
        drivers = _memory_drivers(settings)
        hint = (
            f"lower {', '.join(drivers)} or " if drivers else "lower workload.peakConnections or "
        )
        hint += f"choose a plan with at least {needed} MB"
        if bigger is not None:
            hint += f" (e.g. {bigger.id})"
        problems.append(
            Problem(
                f"{NAMESPACE}:plan",
                settings.plan,
                f"the services need {needed} MB but the plan has {total} MB "
                f"(PostgreSQL needs at least {POSTGRES_MIN_MB} MB); {hint}",
            )
        )
        # PostgreSQL at the least it needs, so the table shows what is missing.
        wanted = replace(budget, postgres_mb=max(postgres_mb, POSTGRES_MIN_MB))
        raise SizingError(source, problems, "Budget:\n" + wanted.table())

    per_worker = connections_per_worker(settings.app.db_pool_size, gunicorn.threads)
    steady = gunicorn.workers * per_worker
    least = least_max_connections(steady)
    if s.postgres.max_connections is not None and s.postgres.max_connections < least:
        raise SizingError(
            source,
            [
                Problem(
                    f"{NAMESPACE}:services.postgres.maxConnections",
                    s.postgres.max_connections,
                    f"{gunicorn.workers} gunicorn workers hold {per_worker} connections each "
                    f"({steady}) and PostgreSQL reserves {least - steady} for superusers: "
                    f"set at least {least}, or unset it to size it "
                    f"({max_connections(app_connections(gunicorn.workers, per_worker))}, "
                    "with room for a reload)",
                )
            ],
        )
    pg_connections = s.postgres.max_connections or max_connections(
        app_connections(gunicorn.workers, per_worker)
    )
    postgres = size_postgres(
        postgres_mb,
        cpu.postgres,
        pg_connections,
        POSTGRES_VERSION[settings.image],
        volume_mb=settings.volume_size_gb * GB_MB,
        busy_connections=min(pg_connections, max_connections(steady)),
    )
    volume = VolumeBudget(
        size_gb=settings.volume_size_gb,
        redis_maxmemory_mb=maxmemory,
        database_mb=database_mb(settings.workload.postgres_data_mb),
        database_declared=settings.workload.postgres_data_mb is not None,
    )
    if not volume.fits:
        raise SizingError(
            source, [_volume_too_small(settings, volume)], "Data volume budget:\n" + volume.table()
        )
    redis = size_redis(maxmemory, headroom_pct, settings.workload.redis_policy)
    capacity = capacity_rps(gunicorn.concurrency, settings.workload.typical_response_ms)
    haproxy = size_haproxy(
        maxconn,
        gunicorn.concurrency,
        plan.vcpus,
        gunicorn.timeout_seconds,
        s.haproxy.queue_timeout_seconds,
        capacity,
        s.haproxy.queue_wait_ms,
    )
    kernel, problems = size_kernel(
        haproxy_maxconn=maxconn,
        listen_backlogs=[haproxy.backlog, gunicorn.backlog, redis.tcp_backlog],
        redis_maxclients=redis.maxclients,
        overrides=settings.sysctl,
        memory_mb=total,
        image=settings.image,
        huge_pages=postgres.huge_pages_reserved,
    )
    if problems:
        raise SizingError(source, problems)
    declared = settings.workload.requests_per_second
    if declared is not None and declared > capacity and not settings.workload.allow_over_capacity:
        raise SizingError(source, [_over_capacity(settings, plan, gunicorn, capacity, declared)])
    return Sizing(
        plan,
        cpu,
        budget,
        postgres,
        redis,
        gunicorn,
        haproxy,
        kernel,
        volume,
        size_backups(settings.backups, plan.vcpus),
        capacity,
        declared,
    )


def _volume_too_small(settings: Settings, volume: VolumeBudget) -> Problem:
    ways = [f"set it to at least {volume.least_size_gb()}"]
    for key, value in (
        ("services.redis.maxmemoryMb", settings.services.redis.maxmemory_mb),
        ("workload.redisDataMb", settings.workload.redis_data_mb),
        ("workload.postgresDataMb", settings.workload.postgres_data_mb),
    ):
        if value is not None:
            ways.append(f"lower {NAMESPACE}:{key}")
    if settings.services.redis.maxmemory_mb is None and settings.workload.redis_data_mb is None:
        ways.append(f"declare {NAMESPACE}:workload.redisDataMb if Redis holds less than its share")
    return Problem(
        f"{NAMESPACE}:volumeSizeGb",
        settings.volume_size_gb,
        f"the data volume must hold {volume.needed_mb} MB (Redis' files "
        f"{volume.redis_files_mb} MB for maxmemory {volume.redis_maxmemory_mb} MB, "
        f"PostgreSQL's WAL {volume.wal_mb} MB and data {volume.database_mb} MB) but ext4 leaves "
        f"{volume.usable_mb} MB of {volume.size_gb} GB; {', or '.join(ways)}",
    )


def _most_requests_held(settings: Settings, cpu: CpuSplit) -> int:
    """The most requests HAProxy holds at once (in service or queued), from the most workers
    the CPU allows: the memory it books comes before the workers are counted."""
    g = settings.services.gunicorn
    workers = cpu_bound_workers(cpu.app) if g.workers is None else g.workers
    if settings.stock:
        workers = cpu_bound_workers(cpu.vcpus)
    concurrency = workers * g.threads
    capacity = capacity_rps(concurrency, settings.workload.typical_response_ms)
    floor = maxqueue(capacity, settings.services.haproxy.queue_wait_ms, concurrency)
    return concurrency + maxqueue_ceiling(floor)


def capacity_rps(concurrency: int, typical_response_ms: int) -> int:
    """Requests per second the app serves with every worker busy (Little's law)."""
    return math.floor(concurrency * 1000 / typical_response_ms)


def _over_capacity(
    settings: Settings, plan: Plan, gunicorn: GunicornTunables, capacity: int, declared: int
) -> Problem:
    """The declared rate is more than the box serves: say by how much, and what would serve it."""
    ms = settings.workload.typical_response_ms
    needed = math.ceil(declared * ms / 1000)
    ways = []
    bigger = _smallest_plan_serving(settings, declared, plan)
    if bigger is not None:
        ways.append(f"{NAMESPACE}:plan {bigger[0].id} (~{bigger[1]} req/s)")
    if settings.services.gunicorn.workers is not None:
        ways.append(f"more {NAMESPACE}:services.gunicorn.workers")
    fast_enough_ms = math.floor(gunicorn.concurrency * 1000 / declared)
    if fast_enough_ms >= 1:  # else no response time could make this box serve the rate
        ways.append(
            f"{NAMESPACE}:workload.typicalResponseMs at most {fast_enough_ms} "
            "if the app is that fast"
        )
    ways.append(f"{NAMESPACE}:workload.allowOverCapacity: true to queue and shed the excess")
    return Problem(
        f"{NAMESPACE}:workload.requestsPerSecond",
        declared,
        f"the box serves about {capacity} req/s ({gunicorn.concurrency} requests at a time, "
        f"{ms} ms each) and {declared} req/s needs {needed} at a time; "
        f"set {', or '.join(ways)}",
    )


def _smallest_plan_serving(
    settings: Settings, declared: int, current: Plan
) -> tuple[Plan, int] | None:
    """The smallest catalog plan of the same class on which the stack's box serves `declared`."""
    # The CPU is the question here; a bigger plan's bigger Redis asks for its own volume size,
    # which sizing that plan then names.
    unbounded = settings.model_copy(
        update={
            "workload": settings.workload.model_copy(update={"requests_per_second": None}),
            "volume_size_gb": MAX_VOLUME_GB,
        }
    )
    same_class = [p for p in PLANS.values() if p.plan_class == current.plan_class]
    for candidate in sorted(same_class, key=lambda p: (p.memory_mb, p.vcpus)):
        try:
            served = size(unbounded, plan=candidate).capacity_rps
        except SizingError:
            continue
        if served >= declared:
            return candidate, served
    return None
