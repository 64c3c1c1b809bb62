"""Backup tunables: how hard pgBackRest may work beside the serving box, how much data a lost
box may lose at most, and what is kept. Every number the backup files hold comes from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.model.settings import BackupSettings

# PostgreSQL switches to a new WAL segment (and so archives it) at least this often while
# anything is written: the most a lost volume loses of what was committed, and PITR's finest
# step between archived segments. A segment compresses to almost nothing when mostly empty.
ARCHIVE_TIMEOUT_S = 60
# pgBackRest compresses with zstd (built into Debian's package): near lz4's speed, near gzip's
# ratio; level 3 is zstd's own default.
COMPRESS_TYPE = "zst"
COMPRESS_LEVEL = 3
# A backup shares the box with the traffic it protects: it gets at most half the vCPUs.
BACKUP_CPU_SHARE = 0.5
# How long one S3 request may stall before pgBackRest retries it (its default, written out).
IO_TIMEOUT_S = 60
# A backup's processes yield the CPU to the services (nice 10: a quarter of a nice-0 share).
NICE = 10

RetentionType = Literal["count", "time"]


@dataclass(frozen=True)
class BackupTunables:
    process_max: int
    archive_timeout_s: int
    compress_type: str
    compress_level: int
    io_timeout_s: int
    retention_full: int
    retention_full_type: RetentionType
    redis_snapshots: int
    nice: int


def process_max(vcpus: int) -> int:
    """pgBackRest's parallel processes (compression, upload): half the vCPUs, at least one."""
    return max(1, int(vcpus * BACKUP_CPU_SHARE))


def retention(settings: BackupSettings) -> tuple[int, RetentionType]:
    """pgBackRest keeps full backups by count, or as many as cover the last N days (its
    `time` type keeps the newest full backup older than N days, so PITR reaches back N days);
    it keeps the WAL every kept backup needs."""
    if settings.pitr_days is not None:
        return settings.pitr_days, "time"
    return settings.keep_full, "count"


def size_backups(settings: BackupSettings, vcpus: int) -> BackupTunables:
    kept, kind = retention(settings)
    return BackupTunables(
        process_max=process_max(vcpus),
        archive_timeout_s=ARCHIVE_TIMEOUT_S,
        compress_type=COMPRESS_TYPE,
        compress_level=COMPRESS_LEVEL,
        io_timeout_s=IO_TIMEOUT_S,
        retention_full=kept,
        retention_full_type=kind,
        redis_snapshots=settings.redis_snapshots,
        nice=NICE,
    )
