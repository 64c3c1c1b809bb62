from __future__ import annotations

from components.model.sizing.redis import (
    fork_headroom_mb,
    maxmemory_for_data,
    maxmemory_in_share,
    size_redis,
)


def test_maxmemory_plus_headroom_fits_the_share() -> None:
    for share in (100, 992, 4096, 30_000):
        for pct in (10, 50, 100):
            maxmemory = maxmemory_in_share(share, pct)
            assert maxmemory + fork_headroom_mb(maxmemory, pct) <= share + 1
            assert maxmemory + 1 + fork_headroom_mb(maxmemory + 1, pct) > share


def test_known_data_set_gets_allocator_overhead() -> None:
    assert maxmemory_for_data(800) == 1000


def test_persistence_is_aof_everysec_plus_rdb() -> None:
    r = size_redis(661, 50, "allkeys-lru")
    assert r.appendonly and r.appendfsync == "everysec"
    assert r.save
    assert r.maxmemory_bytes == 661 * 1024 * 1024
    assert r.fork_headroom_mb == 331
