"""The data volume: what PostgreSQL and Redis may write to it, against what ext4 leaves usable.

Sized like the memory budget: each line a worst case with its reason, so a stack whose volume
cannot hold its own services' files is refused at preview, not found out when Redis answers
MISCONF (a failed BGSAVE) or PostgreSQL PANICs on a full WAL directory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from components.model.sizing.budget import BudgetLine
from components.model.sizing.postgres import MB, max_wal_size
from components.model.sizing.redis import AOF_REWRITE_PERCENTAGE

GB_MB = 1024  # Linode sizes volumes in GiB, as the rehearsal's disk is
MAX_VOLUME_GB = 10_240  # Linode's largest Block Storage volume (volumeSizeGb's bound)
# ext4 as volume.sh makes it (mkfs.ext4 defaults): 5 % of the blocks reserved for root, which
# neither PostgreSQL nor Redis may use, plus the journal, inode tables and group descriptors
# (2.5 % of 10 GB, 2.1 % of 200 GB). tests/model/sizing/test_volume.py checks this against a
# real mkfs.ext4.
FILESYSTEM_RESERVED_PERCENT = 5
FILESYSTEM_METADATA_PERCENT = 3
# Redis' files at their largest, in units of maxmemory (a dump is at most about the data set):
# dump.rdb, the AOF's base and its increment (rewritten once the increment has grown to the
# base's size: auto-aof-rewrite-percentage), and the one child's new file beside them
# (BGSAVE's temporary dump or the rewrite's new base; Redis runs one child at a time).
REDIS_FILES_PER_MAXMEMORY = 1 + 1 + AOF_REWRITE_PERCENTAGE / 100 + 1
# max_wal_size is a soft limit: a burst of writes or a stalled archive goes past it.
WAL_BOOKED_PER_MAX = 2
# Room the database itself needs at least when the stack declares no size.
DATABASE_FLOOR_MB = 2 * GB_MB
# A declared database size, doubled: VACUUM FULL, CLUSTER or REINDEX write a table's new copy
# beside the old one before they drop it.
DATABASE_REWRITE_FACTOR = 2


def usable_mb(size_gb: int) -> int:
    """What ext4 leaves PostgreSQL and Redis on a volume of `size_gb`."""
    overhead = FILESYSTEM_RESERVED_PERCENT + FILESYSTEM_METADATA_PERCENT
    return math.floor(size_gb * GB_MB * (100 - overhead) / 100)


def redis_files_mb(maxmemory_mb: int) -> int:
    return math.ceil(maxmemory_mb * REDIS_FILES_PER_MAXMEMORY)


def wal_booked_mb(max_wal_size_mb: int) -> int:
    return max_wal_size_mb * WAL_BOOKED_PER_MAX


def database_mb(declared_mb: int | None) -> int:
    if declared_mb is None:
        return DATABASE_FLOOR_MB
    return max(DATABASE_FLOOR_MB, declared_mb * DATABASE_REWRITE_FACTOR)


@dataclass(frozen=True)
class VolumeBudget:
    size_gb: int
    redis_maxmemory_mb: int
    database_mb: int
    database_declared: bool

    @property
    def max_wal_size_mb(self) -> int:
        """PostgreSQL's max_wal_size on this volume (it grows with the volume, up to pgtune's)."""
        return max_wal_size(self.size_gb * GB_MB) // MB

    @property
    def usable_mb(self) -> int:
        return usable_mb(self.size_gb)

    @property
    def filesystem_mb(self) -> int:
        return self.size_gb * GB_MB - self.usable_mb

    @property
    def redis_files_mb(self) -> int:
        return redis_files_mb(self.redis_maxmemory_mb)

    @property
    def wal_mb(self) -> int:
        return wal_booked_mb(self.max_wal_size_mb)

    @property
    def needed_mb(self) -> int:
        return self.redis_files_mb + self.wal_mb + self.database_mb

    @property
    def free_mb(self) -> int:
        return self.usable_mb - self.needed_mb

    @property
    def fits(self) -> bool:
        return self.free_mb >= 0

    def least_size_gb(self) -> int:
        """The smallest volume that holds all of it (its WAL grows with it, so search)."""
        overhead = FILESYSTEM_RESERVED_PERCENT + FILESYSTEM_METADATA_PERCENT
        without_wal = self.redis_files_mb + self.database_mb
        size = max(1, math.ceil(without_wal * 100 / (100 - overhead) / GB_MB))
        while not replace(self, size_gb=size).fits:
            size += 1
        return size

    def lines(self) -> list[BudgetLine]:
        database = (
            "workload.postgresDataMb x 2: a VACUUM FULL writes a table's copy beside it"
            if self.database_declared
            else "room for the database (workload.postgresDataMb not declared)"
        )
        return [
            BudgetLine("ext4", self.filesystem_mb, "5 % reserved for root, journal, inodes"),
            BudgetLine(
                "redis files",
                self.redis_files_mb,
                f"{REDIS_FILES_PER_MAXMEMORY:g} x maxmemory: dump, AOF base + increment, "
                "a child's new file",
            ),
            BudgetLine(
                "postgresql wal",
                self.wal_mb,
                f"{WAL_BOOKED_PER_MAX} x max_wal_size, a soft limit",
            ),
            BudgetLine("postgresql data", self.database_mb, database),
            BudgetLine("free", self.free_mb, "the database's growth"),
        ]

    def table(self) -> str:
        total = self.size_gb * GB_MB
        rows = [f"{'where':<22}{'MB':>8}  {'share':>6}  why"]
        for line in self.lines():
            if line.name == "free" and line.mb < 0:
                line = BudgetLine("over the volume", -line.mb, "what the services need beyond it")
            share = 100.0 * line.mb / total
            rows.append(f"{line.name:<22}{line.mb:>8}  {share:>5.1f}%  {line.detail}")
        rows.append(f"{'volume total':<22}{total:>8}  100.0%")
        return "\n".join(rows)
