from __future__ import annotations

import pytest

from components.model.sizing.budget import Budget, cpu_split, os_reserve_mb


@pytest.mark.parametrize(
    ("vcpus", "app", "postgres", "redis", "shared"),
    [
        (1, 1, 1, 1, True),
        (2, 2, 2, 1, True),
        (4, 2, 1, 1, False),
        (8, 5, 2, 1, False),  # the seed: gunicorn 5 cores, Redis 1, PostgreSQL 2
        (32, 23, 8, 1, False),
    ],
)
def test_cpu_split(vcpus: int, app: int, postgres: int, redis: int, shared: bool) -> None:
    split = cpu_split(vcpus)
    assert (split.app, split.postgres, split.redis, split.shared) == (app, postgres, redis, shared)


def test_os_reserve_grows_with_ram() -> None:
    assert os_reserve_mb(1024) < os_reserve_mb(4096) < os_reserve_mb(65536)
    assert os_reserve_mb(4096) == 256 + 82


def _budget(**overrides: int) -> Budget:
    values = dict(
        total_mb=4096,
        os_reserve_mb=300,
        kernel_network_mb=20,
        haproxy_mb=100,
        postgres_mb=1800,
        redis_maxmemory_mb=600,
        redis_fork_headroom_mb=300,
        gunicorn_workers=4,
        worker_rss_mb=150,
    )
    values.update(overrides)
    return Budget(**values)


def test_budget_sums_and_leaves_the_rest_unallocated() -> None:
    b = _budget()
    assert b.allocated_mb == 300 + 20 + 100 + 600 + 1800 + 600 + 300
    assert b.unallocated_mb == 4096 - b.allocated_mb
    assert b.fits


def test_budget_that_overflows_does_not_fit() -> None:
    assert not _budget(postgres_mb=4000).fits


def test_budget_table_lists_every_line_and_the_total() -> None:
    table = _budget().table()
    for name in (
        "os reserve",
        "haproxy",
        "gunicorn",
        "postgresql",
        "redis maxmemory",
        "redis fork headroom",
        "unallocated",
        "plan total",
    ):
        assert name in table
    assert "4 workers x 150 MB" in table


def test_a_budget_over_the_plan_says_by_how_much_and_shows_no_negative_size() -> None:
    budget = _budget(postgres_mb=4000)
    table = budget.table()
    assert f"over the plan{-budget.unallocated_mb:>17}" in table
    assert "unallocated" not in table
    assert not any(cell.startswith("-") for cell in table.split())
