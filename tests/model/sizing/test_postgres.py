"""pgtune parity: le0pard/pgtune's own test cases that apply to our inputs (web profile, Linux,
SSD, PostgreSQL 15/16), then full configurations worked out by hand for several memory sizes."""

from __future__ import annotations

import pytest

from components.model.plans import PLANS
from components.model.sizing import postgres as pg
from components.model.sizing.postgres import GB, MB, format_kb, size_postgres

VOLUME_MB = 100 * 1024  # big enough for pgtune's WAL sizes (a tenth of it is past 4 GB)


def test_default_statistics_target_web() -> None:
    assert pg.default_statistics_target() == 100


def test_random_page_cost_ssd() -> None:
    assert pg.random_page_cost() == 1.1


def test_effective_io_concurrency_linux_ssd() -> None:
    assert pg.effective_io_concurrency() == 200


def test_parallel_settings_below_four_cpus() -> None:
    assert pg.parallel_settings(1) is None
    assert pg.parallel_settings(3) is None


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [
        (12, (12, 4, 12, 4)),  # pgtune "postgresql 13", 12 CPUs
        (31, (31, 4, 31, 4)),  # pgtune "31 cpu": per-gather capped at 4 outside DW
        (4, (4, 2, 4, 2)),
    ],
)
def test_parallel_settings(cpus: int, expected: tuple[int, int, int, int]) -> None:
    p = pg.parallel_settings(cpus)
    assert p is not None
    assert (
        p.max_worker_processes,
        p.max_parallel_workers_per_gather,
        p.max_parallel_workers,
        p.max_parallel_maintenance_workers,
    ) == expected


def test_maintenance_work_mem_caps_at_8gb() -> None:
    assert pg.maintenance_work_mem(256 * GB) == 8388608


def test_maintenance_work_mem_below_cap() -> None:
    assert pg.maintenance_work_mem(16 * GB) == 1048576


def test_huge_pages_off_below_2gb_shared_buffers() -> None:
    assert pg.huge_pages(pg.shared_buffers(4 * GB)) == "off"


def test_huge_pages_try_from_2gb_shared_buffers() -> None:
    assert pg.huge_pages(pg.shared_buffers(16 * GB)) == "try"


def test_work_mem_floors_at_4mb_with_extreme_connections() -> None:
    memory = 4 * GB
    assert pg.work_mem(memory, pg.shared_buffers(memory), 9999, 4, 15) == 4096


def test_jit_off_for_web_on_pg12_and_later() -> None:
    assert pg.jit(12) == "off"
    assert pg.jit(15) == "off"
    assert pg.jit(11) is None


def test_wal_compression() -> None:
    assert pg.wal_compression(14) == "on"
    assert pg.wal_compression(15) == "lz4"
    assert pg.wal_compression(17) == "lz4"


def test_autovacuum_max_workers_scale_with_cpus() -> None:
    assert pg.autovacuum_max_workers(32) == 5
    assert pg.autovacuum_max_workers(16) == 4
    assert pg.autovacuum_max_workers(8) is None


def test_autovacuum_work_mem_left_alone_when_small() -> None:
    assert pg.autovacuum_work_mem(pg.maintenance_work_mem(4 * GB)) is None


def test_autovacuum_work_mem_capped_at_2gb_when_massive() -> None:
    assert pg.autovacuum_work_mem(pg.maintenance_work_mem(256 * GB)) == 2097152


@pytest.mark.parametrize(
    ("shared_buffers_kb", "expected"),
    [
        (1 * GB, 16 * MB),  # 3% = 30.7 MB, capped at 16 MB
        (480 * MB, 16 * MB),  # 3% = 14.4 MB, "near 16 MB" rounds up
        (256 * MB, 7864),  # 3% of 262144 kB
        (512, 32),  # below 32 kB: the minimum
    ],
)
def test_wal_buffers(shared_buffers_kb: int, expected: int) -> None:
    assert pg.wal_buffers(shared_buffers_kb) == expected


def test_format_kb_uses_largest_exact_unit() -> None:
    assert format_kb(1 * GB) == "1GB"
    assert format_kb(1536 * MB) == "1536MB"
    assert format_kb(115456) == "115456kB"


def test_whole_mb_rounds_down_to_a_megabyte_and_keeps_at_least_one() -> None:
    assert pg.whole_mb(2403840) == 2347 * MB  # prod's share / 4: 2347.5 MB
    assert pg.whole_mb(451 * MB) == 451 * MB
    assert pg.whole_mb(32) == MB


@pytest.mark.parametrize("plan", sorted(PLANS))
@pytest.mark.parametrize("connections", [10, 113, 1000])
def test_every_memory_setting_reads_in_whole_mb_or_gb(plan: str, connections: int) -> None:
    spec = PLANS[plan]
    for memory_mb in (spec.memory_mb // 4, spec.memory_mb * 3 // 7):
        conf = size_postgres(memory_mb, spec.vcpus, connections, 15, VOLUME_MB).conf()
        memory = {k: v for k, v in conf.items() if v[-2:] in ("kB", "MB", "GB")}
        assert "shared_buffers" in memory and "work_mem" in memory
        assert all(v.endswith(("MB", "GB")) for v in memory.values()), (plan, memory)


# Full configurations, worked out by hand from the formulas (share MB, cpus, connections, PG).
def test_full_config_2gb_2cpu_pg15() -> None:
    t = size_postgres(2048, 2, 100, 15, VOLUME_MB)
    assert t.conf() == {
        "max_connections": "100",
        "shared_buffers": "512MB",  # 2097152 kB / 4
        "effective_cache_size": "1536MB",
        "maintenance_work_mem": "128MB",
        "checkpoint_completion_target": "0.9",
        "wal_buffers": "16MB",  # 3% = 15728 kB, within (14 MB, 16 MB): rounded up
        "default_statistics_target": "100",
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "work_mem": "4MB",  # (2097152 - 524288) / ((100 + 8 default workers) * 3) / 2 = 2427 kB
        "hash_mem_multiplier": "2",
        "huge_pages": "off",
        "min_wal_size": "1GB",
        "max_wal_size": "4GB",
        "wal_compression": "lz4",
        "jit": "off",
    }


def test_full_config_8gb_4cpu_pg15() -> None:
    t = size_postgres(8192, 4, 50, 15, VOLUME_MB)
    conf = t.conf()
    assert conf["shared_buffers"] == "2GB"
    assert conf["effective_cache_size"] == "6GB"
    assert conf["maintenance_work_mem"] == "512MB"
    assert conf["huge_pages"] == "try"  # shared_buffers reached 2 GB
    assert conf["work_mem"] == "18MB"  # (8388608 - 2097152) / ((50 + 4) * 3) / 2 = 19418 kB
    assert conf["max_worker_processes"] == "4"
    assert conf["max_parallel_workers_per_gather"] == "2"
    assert conf["max_parallel_workers"] == "4"
    assert conf["max_parallel_maintenance_workers"] == "2"
    assert "autovacuum_work_mem" not in conf
    assert "autovacuum_max_workers" not in conf


def test_full_config_32gb_16cpu_pg16() -> None:
    conf = size_postgres(32768, 16, 200, 16, VOLUME_MB).conf()
    assert conf["shared_buffers"] == "8GB"
    assert conf["effective_cache_size"] == "24GB"
    assert conf["maintenance_work_mem"] == "2GB"
    assert conf["autovacuum_work_mem"] == "2GB"
    assert conf["autovacuum_max_workers"] == "4"
    assert conf["work_mem"] == "18MB"  # (33554432 - 8388608) / ((200 + 16) * 3) / 2 = 19418 kB
    assert conf["max_parallel_workers_per_gather"] == "4"
    assert conf["wal_compression"] == "lz4"


def test_wal_is_pgtunes_on_a_big_volume_and_a_tenth_of_a_small_one() -> None:
    assert pg.max_wal_size(100 * 1024) == 4 * GB
    assert pg.min_wal_size(4 * GB) == 1 * GB
    assert pg.max_wal_size(10 * 1024) == 1 * GB
    assert pg.min_wal_size(1 * GB) == 256 * MB


def test_max_connections_is_app_connections_plus_headroom() -> None:
    assert pg.max_connections(10) == 10 + pg.CONNECTION_HEADROOM


def test_a_worker_holds_its_pool_and_at_least_a_connection_per_thread() -> None:
    assert pg.connections_per_worker(pool_size=2, threads=1) == 2
    assert pg.connections_per_worker(pool_size=2, threads=8) == 8


def test_app_connections_count_both_generations_of_a_reload() -> None:
    # A HUP starts 5 new workers before the 5 old ones exit: 10 pools open for a moment.
    assert pg.app_connections(workers=5, per_worker=2) == 20


def test_a_hash_node_stays_within_pgtunes_share() -> None:
    # PostgreSQL 15+ lets a hash node use hash_mem_multiplier (2.0) x work_mem.
    memory, cpus, connections = 8 * GB, 4, 50
    share = (memory - pg.shared_buffers(memory)) // ((connections + cpus) * 3)
    value = pg.work_mem(memory, pg.shared_buffers(memory), connections, cpus, 15)
    assert value * pg.HASH_MEM_MULTIPLIER[15] <= share
    assert size_postgres(8192, 4, 50, 16, VOLUME_MB).conf()["hash_mem_multiplier"] == "2"


def test_work_mem_is_capped_on_a_big_share_with_few_connections() -> None:
    # g7-highmem-16's share with a handful of workers: pgtune alone gave 779 MB.
    conf = size_postgres(100_000, 8, 30, 15, VOLUME_MB).conf()
    assert conf["work_mem"] == "256MB"
    assert pg.WORK_MEM_CAP_KB == 256 * MB


def test_work_mem_divides_by_the_connections_that_can_be_busy() -> None:
    # 50 connections, of which 30 can run queries at once: the share is as for 30.
    assert size_postgres(8192, 4, 50, 15, VOLUME_MB, busy_connections=30).work_mem_kb == (
        size_postgres(8192, 4, 30, 15, VOLUME_MB).work_mem_kb
    )
