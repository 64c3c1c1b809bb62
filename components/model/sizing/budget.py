"""Where every megabyte of the plan goes, and how the vCPUs are shared."""

from __future__ import annotations

import math
from dataclasses import dataclass

# The kernel, systemd, journald, sshd, cloud-init's leftovers and the smallest useful page cache.
OS_BASE_MB = 256
# Page tables, struct page and slab grow with RAM (about 1.6% for struct page alone).
OS_PER_RAM = 0.02
# Of what is left for the services (after the OS, the kernel's network tables and HAProxy),
# Redis and the app get these shares; PostgreSQL gets the rest, which is what pgtune sizes.
# On the seed's 4 GB box this gives its split: Redis ~1 GB, PostgreSQL ~1.8 GB, 5 workers.
REDIS_SHARE = 0.28
APP_SHARE = 0.22
POSTGRES_MIN_MB = 256


@dataclass(frozen=True)
class CpuSplit:
    """Cores each service may count on. On fewer than 4 vCPUs every service shares them all."""

    vcpus: int
    app: int
    postgres: int
    redis: int

    @property
    def shared(self) -> bool:
        return self.app + self.postgres + self.redis > self.vcpus


def cpu_split(vcpus: int) -> CpuSplit:
    if vcpus < 4:
        return CpuSplit(vcpus=vcpus, app=vcpus, postgres=vcpus, redis=1)
    # Redis executes commands on one thread; PostgreSQL backs a web app mostly as storage.
    postgres = max(1, vcpus // 4)
    return CpuSplit(vcpus=vcpus, app=vcpus - 1 - postgres, postgres=postgres, redis=1)


def os_reserve_mb(total_mb: int) -> int:
    return OS_BASE_MB + math.ceil(total_mb * OS_PER_RAM)


@dataclass(frozen=True)
class BudgetLine:
    name: str
    mb: int
    detail: str


@dataclass(frozen=True)
class Budget:
    total_mb: int
    os_reserve_mb: int
    kernel_network_mb: int
    haproxy_mb: int
    postgres_mb: int
    redis_maxmemory_mb: int
    redis_fork_headroom_mb: int
    gunicorn_workers: int
    worker_rss_mb: int

    @property
    def gunicorn_mb(self) -> int:
        return self.gunicorn_workers * self.worker_rss_mb

    @property
    def redis_mb(self) -> int:
        return self.redis_maxmemory_mb + self.redis_fork_headroom_mb

    @property
    def allocated_mb(self) -> int:
        return (
            self.os_reserve_mb
            + self.kernel_network_mb
            + self.haproxy_mb
            + self.gunicorn_mb
            + self.postgres_mb
            + self.redis_mb
        )

    @property
    def unallocated_mb(self) -> int:
        return self.total_mb - self.allocated_mb

    @property
    def fits(self) -> bool:
        return self.unallocated_mb >= 0

    def lines(self) -> list[BudgetLine]:
        return [
            BudgetLine(
                "os reserve", self.os_reserve_mb, "kernel, systemd, sshd, minimal page cache"
            ),
            BudgetLine(
                "kernel network", self.kernel_network_mb, "sockets at maxconn + TIME_WAIT table"
            ),
            BudgetLine(
                "haproxy", self.haproxy_mb, "connections at maxconn + buffers of held requests"
            ),
            BudgetLine(
                "gunicorn",
                self.gunicorn_mb,
                f"{self.gunicorn_workers} workers x {self.worker_rss_mb} MB",
            ),
            BudgetLine("postgresql", self.postgres_mb, "shared_buffers + backends + its cache"),
            BudgetLine("redis maxmemory", self.redis_maxmemory_mb, "data set limit"),
            BudgetLine(
                "redis fork headroom", self.redis_fork_headroom_mb, "copy-on-write at BGSAVE"
            ),
            BudgetLine("unallocated", self.unallocated_mb, "page cache"),
        ]

    def table(self) -> str:
        rows = [f"{'where':<22}{'MB':>8}  {'share':>6}  why"]
        for line in self.lines():
            if line.name == "unallocated" and line.mb < 0:
                # A budget that does not fit: how much is missing, not a negative size.
                line = BudgetLine("over the plan", -line.mb, "what the services need beyond it")
            share = 100.0 * line.mb / self.total_mb
            rows.append(f"{line.name:<22}{line.mb:>8}  {share:>5.1f}%  {line.detail}")
        rows.append(f"{'plan total':<22}{self.total_mb:>8}  100.0%")
        return "\n".join(rows)
