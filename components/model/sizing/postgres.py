"""PostgreSQL tunables: le0pard/pgtune's formulas (web profile, Linux, SSD) on PostgreSQL's share.

One small function per setting, as pgtune has them; memory is in kB, as pgtune computes it.
The tunables then keep whole megabytes (`whole_mb`), so every memory setting reads in MB or GB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KB = 1
MB = 1024 * KB
GB = 1024 * MB

DEFAULT_MAX_WORKER_PROCESSES = 8
# Connections besides the app's pools: superuser_reserved (3), migrations, cron, psql, monitoring.
CONNECTION_HEADROOM = 20
SUPERUSER_RESERVED_CONNECTIONS = 3  # PostgreSQL's default: not for the app
# A graceful reload of gunicorn (HUP: a new release, a changed gunicorn.conf) starts the new
# workers before the old ones exit, so for a moment both generations hold their connections.
RELOAD_GENERATIONS = 2
# Since PostgreSQL 15 a hash node may use hash_mem_multiplier (2.0) x work_mem.
HASH_MEM_MULTIPLIER = {13: 1.0, 14: 1.0, 15: 2.0, 16: 2.0, 17: 2.0}
# pgtune's formula hands a big box's whole share to few connections (779 MB on g7-highmem-16).
# A web request's sort or hash never needs that; what it risks is a runaway query with more
# than pgtune's 3 nodes, each node (and each parallel worker) taking its own work_mem.
WORK_MEM_CAP_KB = 256 * MB


def connections_per_worker(pool_size: int, threads: int) -> int:
    """A worker's PostgreSQL connections: its pool, and at least one per thread (a thread
    waiting on a smaller pool is a request waiting; the sample app keeps one per thread)."""
    return max(pool_size, threads)


def app_connections(workers: int, per_worker: int) -> int:
    """What the app may hold at once: both generations of workers during a reload."""
    return workers * per_worker * RELOAD_GENERATIONS


def max_connections(app_connections: int) -> int:
    return app_connections + CONNECTION_HEADROOM


def least_max_connections(steady_connections: int) -> int:
    """Below this the app's own pools cannot connect (the reserved slots are not for it)."""
    return steady_connections + SUPERUSER_RESERVED_CONNECTIONS


def shared_buffers(memory_kb: int) -> int:
    return memory_kb // 4


def effective_cache_size(memory_kb: int) -> int:
    return memory_kb * 3 // 4


def maintenance_work_mem(memory_kb: int) -> int:
    return min(memory_kb // 16, 8 * GB)


def autovacuum_work_mem(maintenance_work_mem_kb: int) -> int | None:
    """Cap each autovacuum worker at 2 GB once maintenance_work_mem reaches it (else inherit)."""
    return 2 * GB if maintenance_work_mem_kb >= 2 * GB else None


def wal_buffers(shared_buffers_kb: int) -> int:
    value = 3 * shared_buffers_kb // 100
    if value > 16 * MB:
        value = 16 * MB
    if 14 * MB < value < 16 * MB:
        value = 16 * MB
    return max(value, 32)


def huge_pages(shared_buffers_kb: int) -> str:
    """`try` with the pages reserved (vm.nr_hugepages = huge_pages_reserved): without them, every
    backend maps shared_buffers in 4 kB pages, 2 MB of page tables per GB per backend."""
    return "try" if shared_buffers_kb >= 2 * GB else "off"


HUGE_PAGE_KB = 2 * MB
# PostgreSQL's shared memory besides shared_buffers and wal_buffers, fitted to what
# `postgres -C shared_memory_size` reports (PostgreSQL 15): buffer descriptors, the
# checkpointer's sort array and the buffer lookup table (2.35 % of shared_buffers), the PGPROC
# and lock slots of each connection and worker, and fixed structures. tests/model/test_render.py
# holds the estimate to PostgreSQL's own answer for every plan's configuration.
SHM_PER_SHARED_BUFFERS_PERMILLE = 24
SHM_PER_CONNECTION_KB = 48
SHM_FIXED_KB = 12 * MB


def shared_memory_kb(shared_buffers_kb: int, wal_buffers_kb: int, connections: int) -> int:
    return (
        shared_buffers_kb
        + shared_buffers_kb * SHM_PER_SHARED_BUFFERS_PERMILLE // 1000
        + wal_buffers_kb
        + connections * SHM_PER_CONNECTION_KB
        + SHM_FIXED_KB
    )


def huge_pages_reserved(huge_pages_setting: str, shared_memory: int) -> int:
    """2 MB pages for the whole of PostgreSQL's shared memory, or none when it uses 4 kB ones."""
    return 0 if huge_pages_setting == "off" else -(-shared_memory // HUGE_PAGE_KB)


def random_page_cost() -> float:
    return 1.1  # Linode disks and volumes are SSD/NVMe-backed


def effective_io_concurrency() -> int:
    return 200


def default_statistics_target() -> int:
    return 100


def checkpoint_completion_target() -> float:
    return 0.9


# pgtune's web profile keeps 1 GB to 4 GB of WAL, 40 % of a 10 GB volume: at most a tenth of it.
WAL_VOLUME_PERCENT = 10


def max_wal_size(volume_mb: int) -> int:
    return min(4 * GB, whole_mb(volume_mb * MB * WAL_VOLUME_PERCENT // 100))


def min_wal_size(max_wal_size_kb: int) -> int:
    """pgtune's 1 GB, or a quarter of a smaller max_wal_size (WAL recycled, not re-created)."""
    return min(1 * GB, whole_mb(max_wal_size_kb // 4))


@dataclass(frozen=True)
class ParallelSettings:
    max_worker_processes: int
    max_parallel_workers_per_gather: int
    max_parallel_workers: int
    max_parallel_maintenance_workers: int


def parallel_settings(cpus: int) -> ParallelSettings | None:
    if cpus < 4:
        return None
    per_gather = min(math.ceil(cpus / 2), 4)
    return ParallelSettings(
        max_worker_processes=cpus,
        max_parallel_workers_per_gather=per_gather,
        max_parallel_workers=cpus,
        max_parallel_maintenance_workers=min(math.ceil(cpus / 2), 4),
    )


def work_mem(
    memory_kb: int, shared_buffers_kb: int, connections: int, cpus: int, version: int
) -> int:
    """pgtune's share per node, divided by hash_mem_multiplier so a hash node stays within it,
    capped at WORK_MEM_CAP_KB, and never below PostgreSQL's own 4 MB default."""
    parallel = parallel_settings(cpus)
    workers = parallel.max_worker_processes if parallel else DEFAULT_MAX_WORKER_PROCESSES
    value = math.floor((memory_kb - shared_buffers_kb) / ((connections + workers) * 3))
    value = math.floor(value / HASH_MEM_MULTIPLIER[version])
    return max(min(value, WORK_MEM_CAP_KB), 4 * MB)


def jit(version: int) -> str | None:
    return "off" if version >= 12 else None


def wal_compression(version: int) -> str:
    return "lz4" if version >= 15 else "on"


def autovacuum_max_workers(cpus: int) -> int | None:
    if cpus >= 32:
        return 5
    if cpus >= 16:
        return 4
    return None


@dataclass(frozen=True)
class PostgresTunables:
    version: int
    memory_mb: int
    cpus: int
    max_connections: int
    shared_buffers_kb: int
    effective_cache_size_kb: int
    maintenance_work_mem_kb: int
    autovacuum_work_mem_kb: int | None
    work_mem_kb: int
    hash_mem_multiplier: float
    wal_buffers_kb: int
    min_wal_size_kb: int
    max_wal_size_kb: int
    checkpoint_completion_target: float
    default_statistics_target: int
    random_page_cost: float
    effective_io_concurrency: int
    huge_pages: str
    huge_pages_reserved: int  # vm.nr_hugepages: 2 MB pages held for PostgreSQL from boot
    jit: str | None
    wal_compression: str
    autovacuum_max_workers: int | None
    parallel: ParallelSettings | None

    def conf(self) -> dict[str, str]:
        """postgresql.conf lines, in pgtune's order, with PostgreSQL's own units."""
        lines: dict[str, str] = {
            "max_connections": str(self.max_connections),
            "shared_buffers": format_kb(self.shared_buffers_kb),
            "effective_cache_size": format_kb(self.effective_cache_size_kb),
            "maintenance_work_mem": format_kb(self.maintenance_work_mem_kb),
            "checkpoint_completion_target": str(self.checkpoint_completion_target),
            "wal_buffers": format_kb(self.wal_buffers_kb),
            "default_statistics_target": str(self.default_statistics_target),
            "random_page_cost": str(self.random_page_cost),
            "effective_io_concurrency": str(self.effective_io_concurrency),
            "work_mem": format_kb(self.work_mem_kb),
            "hash_mem_multiplier": f"{self.hash_mem_multiplier:g}",
            "huge_pages": self.huge_pages,
            "min_wal_size": format_kb(self.min_wal_size_kb),
            "max_wal_size": format_kb(self.max_wal_size_kb),
            "wal_compression": self.wal_compression,
        }
        if self.jit is not None:
            lines["jit"] = self.jit
        if self.autovacuum_work_mem_kb is not None:
            lines["autovacuum_work_mem"] = format_kb(self.autovacuum_work_mem_kb)
        if self.autovacuum_max_workers is not None:
            lines["autovacuum_max_workers"] = str(self.autovacuum_max_workers)
        if self.parallel is not None:
            p = self.parallel
            lines["max_worker_processes"] = str(p.max_worker_processes)
            lines["max_parallel_workers_per_gather"] = str(p.max_parallel_workers_per_gather)
            lines["max_parallel_workers"] = str(p.max_parallel_workers)
            lines["max_parallel_maintenance_workers"] = str(p.max_parallel_maintenance_workers)
        return lines


def whole_mb(value_kb: int) -> int:
    """pgtune's kB, rounded down to a whole MB (at least 1 MB). A remainder under 1 MB changes
    nothing PostgreSQL does (it keeps shared_buffers and wal_buffers in 8 kB pages), yet it made
    prod read `shared_buffers 2403840kB` beside staging's `451MB`. Down, so the memory budget
    stays an upper bound."""
    return max(MB, value_kb // MB * MB)


def format_kb(value_kb: int) -> str:
    """pgtune's formatting: the largest of GB/MB/kB that divides the value exactly."""
    if value_kb % GB == 0:
        return f"{value_kb // GB}GB"
    if value_kb % MB == 0:
        return f"{value_kb // MB}MB"
    return f"{value_kb}kB"


def size_postgres(
    memory_mb: int,
    cpus: int,
    connections: int,
    version: int,
    volume_mb: int,
    busy_connections: int | None = None,
) -> PostgresTunables:
    """`busy_connections`: how many can run queries at once, for work_mem (default: all).
    During a reload both generations are connected, but HAProxy still sends only one
    generation's worth of requests, so work_mem need not shrink for the reload's extra pools."""
    memory_kb = memory_mb * MB
    sb = whole_mb(shared_buffers(memory_kb))
    mwm = whole_mb(maintenance_work_mem(memory_kb))
    max_wal = max_wal_size(volume_mb)
    wal = whole_mb(wal_buffers(sb))
    pages = huge_pages(sb)
    return PostgresTunables(
        version=version,
        memory_mb=memory_mb,
        cpus=cpus,
        max_connections=connections,
        shared_buffers_kb=sb,
        effective_cache_size_kb=whole_mb(effective_cache_size(memory_kb)),
        maintenance_work_mem_kb=mwm,
        autovacuum_work_mem_kb=autovacuum_work_mem(mwm),
        work_mem_kb=whole_mb(
            work_mem(memory_kb, sb, busy_connections or connections, cpus, version)
        ),
        hash_mem_multiplier=HASH_MEM_MULTIPLIER[version],
        wal_buffers_kb=wal,
        min_wal_size_kb=min_wal_size(max_wal),
        max_wal_size_kb=max_wal,
        checkpoint_completion_target=checkpoint_completion_target(),
        default_statistics_target=default_statistics_target(),
        random_page_cost=random_page_cost(),
        effective_io_concurrency=effective_io_concurrency(),
        huge_pages=pages,
        huge_pages_reserved=huge_pages_reserved(
            pages, shared_memory_kb(sb, wal, max(connections, busy_connections or 0))
        ),
        jit=jit(version),
        wal_compression=wal_compression(version),
        autovacuum_max_workers=autovacuum_max_workers(cpus),
        parallel=parallel_settings(cpus),
    )
