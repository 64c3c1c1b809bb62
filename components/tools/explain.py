"""`tunedstack explain`: the plan, where every MB goes, and the key tunables with reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from components.model.backups import max_age_s, on_calendar
from components.model.settings import NAMESPACE, Settings
from components.model.sizing import Sizing
from components.model.sizing.backups import BACKUP_CPU_SHARE
from components.model.sizing.gunicorn import RESTART_COST_REQUESTS, restart_overhead
from components.model.sizing.haproxy import CHEAPER_REQUESTS_QUEUED, PEAK_HEADROOM
from components.model.sizing.postgres import WORK_MEM_CAP_KB, format_kb


@dataclass(frozen=True)
class Explained:
    name: str
    value: str
    reason: str


def _recycling(max_requests: int, jitter: int) -> str:
    if max_requests == 0:
        return "workers never recycled (max_requests 0)"
    return (
        f"max_requests {max_requests} + up to {jitter} (restarts spread over a cycle, each "
        f"~{RESTART_COST_REQUESTS} requests' work: {restart_overhead(max_requests):.1%} "
        "of the workers' time)"
    )


def key_tunables(sz: Sizing) -> list[Explained]:
    g, h, p, r, k = sz.gunicorn, sz.haproxy, sz.postgres, sz.redis, sz.kernel
    return [
        Explained(
            "gunicorn.workers",
            str(g.workers),
            f"min({g.cpu_bound_workers} by CPU = 2x{sz.cpu.app}+1, "
            f"{g.ram_bound_workers} by RAM share / {sz.budget.worker_rss_mb} MB per worker)",
        ),
        Explained(
            "gunicorn.worker_class",
            f"{g.worker_class} x{g.threads}",
            f"concurrency {g.concurrency}; {_recycling(g.max_requests, g.max_requests_jitter)}",
        ),
        Explained(
            "haproxy.maxconn",
            str(h.maxconn),
            f"peak connections + {round((PEAK_HEADROOM - 1) * 100)}% headroom",
        ),
        Explained(
            "haproxy.server maxconn",
            str(h.server_maxconn),
            "= gunicorn concurrency: excess requests queue in HAProxy, not the socket",
        ),
        Explained(
            "haproxy.timeout queue",
            f"{h.timeout_queue_s}s",
            "a queued request gets a 503 instead of hanging",
        ),
        Explained(
            "haproxy.queue limit",
            f"{h.maxqueue}-{h.maxqueue_ceiling}",
            f"capacity ~{sz.capacity_rps} req/s x queueWaitMs {h.queue_wait_ms} ms, or what the "
            f"app was measured to drain in that time when more (up to x"
            f"{CHEAPER_REQUESTS_QUEUED}): more waiting get a 503 at once "
            f"(Retry-After {h.retry_after_s}s), so served requests stay fast under overload",
        ),
        Explained(
            "haproxy.timeout server",
            f"{h.timeout_server_s}s",
            f"gunicorn timeout {g.timeout_seconds}s + 5: "
            + (
                "gunicorn kills a sync worker stuck that long first (502)"
                if g.worker_class == "sync"
                else "gunicorn does not stop a long request in a thread; this ends it (504)"
            ),
        ),
        Explained(
            "haproxy.timeout check",
            f"{h.timeout_check_s}s",
            "= timeout server: the only server is never marked DOWN for being busy",
        ),
        Explained(
            "postgresql.max_connections",
            str(p.max_connections),
            f"{g.workers} workers x max(pool, threads) x 2 (a reload's old and new workers) "
            "+ headroom for admin and maintenance",
        ),
        Explained(
            "postgresql.shared_buffers",
            format_kb(p.shared_buffers_kb),
            f"pgtune: 1/4 of PostgreSQL's {p.memory_mb} MB share, in whole MB",
        ),
        Explained(
            "postgresql.effective_cache_size",
            format_kb(p.effective_cache_size_kb),
            "pgtune: 3/4 of the share, in whole MB",
        ),
        Explained(
            "postgresql.huge_pages",
            p.huge_pages + (f" ({p.huge_pages_reserved} x 2 MB)" if p.huge_pages_reserved else ""),
            "shared memory in 2 MB pages reserved at boot (vm.nr_hugepages), sized like "
            "shared_memory_size_in_huge_pages: no 4 kB page tables per backend"
            if p.huge_pages_reserved
            else "shared_buffers under 2 GB: 4 kB pages cost each backend little",
        ),
        Explained(
            "postgresql.work_mem",
            format_kb(p.work_mem_kb),
            "pgtune: (share - shared_buffers) / ((connections + workers) x 3), connections "
            "without a reload's second generation (HAProxy sends no more requests then), "
            f"/ hash_mem_multiplier {p.hash_mem_multiplier} (a hash node may use that many "
            f"times work_mem), at most {format_kb(WORK_MEM_CAP_KB)} (each node of a runaway "
            "query takes its own), >= 4MB, in whole MB",
        ),
        Explained(
            "redis.maxmemory",
            f"{r.maxmemory_mb}MB",
            f"its share minus {r.fork_headroom_mb} MB fork headroom for BGSAVE/AOF rewrite",
        ),
        Explained("redis.maxmemory-policy", r.maxmemory_policy, "from workload.redisPolicy"),
        Explained(
            "net.core.somaxconn",
            k.value("net.core.somaxconn"),
            f">= HAProxy's listen backlog {h.backlog}",
        ),
        Explained(
            "LimitNOFILE haproxy",
            str(k.file_limits.haproxy),
            "2 descriptors per proxied connection + headroom",
        ),
        Explained(
            "capacity",
            f"~{sz.capacity_rps} req/s",
            "gunicorn concurrency / workload.typicalResponseMs"
            + (
                "" if sz.declared_rps is None else f"; workload.requestsPerSecond {sz.declared_rps}"
            ),
        ),
    ]


def backup_plan(settings: Settings, sz: Sizing) -> list[Explained]:
    """What is backed up off the box, when, for how long: empty when backups are off."""
    if not settings.backups_enabled:
        return []
    b, t = settings.backups, sz.backups
    newest = max_age_s(b.full_schedule, b.differential_schedule)
    kept = (
        f"what PITR to any moment of the last {t.retention_full} days needs"
        if t.retention_full_type == "time"
        else f"{t.retention_full} full backups and the WAL they need (PITR window: back to the "
        "oldest)"
    )
    return [
        Explained("postgres full", on_calendar(b.full_schedule), kept),
        Explained(
            "postgres differential",
            on_calendar(b.differential_schedule),
            "changes since the last full backup",
        ),
        Explained(
            "postgres WAL",
            f"<= {t.archive_timeout_s}s",
            "every segment archived; at least this often while anything is written: the most "
            "a lost volume loses",
        ),
        Explained(
            "redis snapshot",
            on_calendar(b.redis_schedule),
            f"a fresh BGSAVE copied off; the last {t.redis_snapshots} kept",
        ),
        Explained(
            "pgbackrest process-max",
            str(t.process_max),
            f"{BACKUP_CPU_SHARE:.0%} of {sz.plan.vcpus} vCPUs: the box serves while it backs up",
        ),
        Explained(
            "stale after",
            f"{max_age_s(b.full_schedule) // 3600}h / {newest // 3600}h / "
            f"{max_age_s(b.redis_schedule) // 3600}h",
            "a full backup / any PostgreSQL backup / Redis' snapshot older than twice its "
            "schedule's interval: `tunedstack-backup status` fails",
        ),
    ]


def explain_text(stack: str, settings: Settings, sz: Sizing) -> str:
    cpu = sz.cpu
    lines = [
        f"stack {stack}: {settings.environment}, {settings.region}, {settings.image}",
        f"plan  {sz.plan.label}",
        f"cpu   app {cpu.app}, postgresql {cpu.postgres}, redis {cpu.redis}"
        + (" (shared: fewer than 4 vCPUs)" if cpu.shared else ""),
        "",
        "memory budget",
        sz.budget.table(),
        "",
        f"data volume budget ({settings.volume_size_gb} GB)",
        sz.volume.table(),
        "",
        "key tunables",
    ]
    tunables = key_tunables(sz)
    width = max(len(t.name) for t in tunables)
    value_width = max(len(t.value) for t in tunables)
    lines += [f"  {t.name:<{width}}  {t.value:>{value_width}}  {t.reason}" for t in tunables]
    plan = backup_plan(settings, sz)
    if plan:
        lines += ["", "backups (off the box, encrypted, in the stack's bucket; times in UTC)"]
        name_width = max(len(t.name) for t in plan)
        lines += [f"  {t.name:<{name_width}}  {t.value}  {t.reason}" for t in plan]
    else:
        lines += [
            "",
            f"backups: off (`{NAMESPACE}:backups.enabled: true` copies PostgreSQL and Redis "
            "off the box; required in production)",
        ]
    lines += ["", "kernel profile"]
    lines += [f"  {s.key} = {s.value}  ({s.origin}: {s.reason})" for s in sz.kernel.sysctls]
    return "\n".join(lines)


def explain_data(stack: str, settings: Settings, sz: Sizing) -> dict[str, Any]:
    return {
        "stack": stack,
        "settings": settings.model_dump(mode="json", by_alias=True),
        "plan": {"id": sz.plan.id, "vcpus": sz.plan.vcpus, "memory_mb": sz.plan.memory_mb},
        "memory_mb": {line.name: line.mb for line in sz.budget.lines()},
        "volume_mb": {line.name: line.mb for line in sz.volume.lines()},
        "key_tunables": [t.__dict__ for t in key_tunables(sz)],
        "backups": [t.__dict__ for t in backup_plan(settings, sz)],
        "sysctl": {s.key: s.value for s in sz.kernel.sysctls},
        "sizing": sz.as_dict(),
    }


def explain_json(stack: str, settings: Settings, sz: Sizing) -> str:
    return json.dumps(explain_data(stack, settings, sz), indent=2, sort_keys=True)
