"""Redis tunables: maxmemory inside its share, with room for the fork of BGSAVE/AOF rewrite."""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.model.settings import RedisPolicy

# Redis' own default; its file limit is derived from it.
MAXCLIENTS = 10000
# Redis' default accept queue; only local gunicorn workers connect.
TCP_BACKLOG = 511
# Allocator overhead and fragmentation on top of the data set when its size is known.
DATA_OVERHEAD = 1.25
SAVE_POINTS = "3600 1 300 100 60 10000"
# Redis' default, written out: the data volume's budget counts on the AOF's increment growing to
# at most the base's size before a rewrite.
AOF_REWRITE_PERCENTAGE = 100


@dataclass(frozen=True)
class RedisTunables:
    maxmemory_mb: int
    fork_headroom_mb: int
    maxmemory_policy: RedisPolicy
    maxclients: int
    tcp_backlog: int
    appendonly: bool
    appendfsync: str
    aof_rewrite_percentage: int
    save: str

    @property
    def maxmemory_bytes(self) -> int:
        return self.maxmemory_mb * 1024 * 1024


def fork_headroom_mb(maxmemory_mb: int, headroom_percent: int) -> int:
    return math.ceil(maxmemory_mb * headroom_percent / 100)


def maxmemory_in_share(share_mb: int, headroom_percent: int) -> int:
    """The largest maxmemory whose fork headroom still fits in the share."""
    return math.floor(share_mb * 100 / (100 + headroom_percent))


def maxmemory_for_data(data_mb: int) -> int:
    return math.ceil(data_mb * DATA_OVERHEAD)


def size_redis(maxmemory_mb: int, headroom_percent: int, policy: RedisPolicy) -> RedisTunables:
    return RedisTunables(
        maxmemory_mb=maxmemory_mb,
        fork_headroom_mb=fork_headroom_mb(maxmemory_mb, headroom_percent),
        maxmemory_policy=policy,
        maxclients=MAXCLIENTS,
        tcp_backlog=TCP_BACKLOG,
        appendonly=True,
        appendfsync="everysec",
        aof_rewrite_percentage=AOF_REWRITE_PERCENTAGE,
        save=SAVE_POINTS,
    )
