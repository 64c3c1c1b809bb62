"""size(): the seed's box as a case, budget errors, and properties over the whole catalog."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.model.errors import SizingError
from components.model.plans import PLANS, Plan
from components.model.settings import Settings, validate
from components.model.sizing import size

SEED_BOX = Plan("seed-linode-4gb-8core", "standard", vcpus=8, memory_mb=4096, disk_mb=81920)
SEED_WORKLOAD = {"peakConnections": 4000, "redisPolicy": "allkeys-lru"}


@pytest.fixture
def seed_settings() -> Settings:
    return validate(
        {"region": "us-east", "plan": "g6-standard-2", "workload": SEED_WORKLOAD}, "seed"
    )


def test_seed_box_gets_the_seeds_split(seed_settings: Settings) -> None:
    sz = size(seed_settings, plan=SEED_BOX)
    b = sz.budget
    # Redis about 1 GB: its share is maxmemory plus the fork headroom the seed did not plan for.
    assert 900 <= b.redis_mb <= 1100
    # PostgreSQL about 1.8 GB, sized by pgtune on that share (a little more since HAProxy books
    # what its connections really use, not two buffers each).
    assert 1700 <= b.postgres_mb <= 1950
    assert 1250 <= sz.postgres.effective_cache_size_kb // 1024 <= 1450
    # 5 gunicorn workers, as the seed ran: its 5 cores would allow 11, the RAM share allows 5.
    assert sz.cpu.app == 5
    assert sz.gunicorn.workers == 5
    assert b.fits
    # Deliberate differences: the seed's pgtune gave max_connections 300 and work_mem 2.8 MB.
    # We size max_connections to what 5 workers really open, twice during a reload
    # (5 x 2 x 2 + 20 headroom). work_mem is pgtune's share per node for the 30 connections
    # that can be busy at once (12.6 MB), halved for hash_mem_multiplier: past the seed's 2.8 MB.
    assert sz.postgres.max_connections == 40
    assert sz.postgres.work_mem_kb == 6 * 1024
    # The seed's nofile 200000 was for everything; each service now gets what it needs.
    assert sz.kernel.file_limits.haproxy >= 2 * sz.haproxy.maxconn


def test_budget_too_big_shows_the_table_and_names_the_key(minimal_raw: dict[str, Any]) -> None:
    raw = {**minimal_raw, "services": {"redis": {"maxmemoryMb": 3000}}}
    with pytest.raises(SizingError) as err:
        size(validate(raw, "stacks/Pulumi.test.yaml"), source="stacks/Pulumi.test.yaml")
    text = str(err.value)
    assert "stacks/Pulumi.test.yaml" in text
    assert "tunedstack:plan = 'g6-standard-2'" in text
    assert "the plan has 4096 MB" in text
    assert "tunedstack:services.redis.maxmemoryMb" in text
    assert "Budget:" in text and "redis fork headroom" in text and "plan total" in text
    assert "(e.g. g6-standard-4)" in text


def test_gthread_workers_get_a_connection_per_thread_for_both_reload_generations(
    minimal_raw: dict[str, Any],
) -> None:
    raw = {
        **minimal_raw,
        "services": {"gunicorn": {"workerClass": "gthread", "threads": 8, "workers": 3}},
    }
    sz = size(validate(raw, "t"))
    assert sz.postgres.max_connections == 3 * 8 * 2 + 20


def test_a_fixed_max_connections_below_the_pools_is_refused(minimal_raw: dict[str, Any]) -> None:
    raw = {
        **minimal_raw,
        "services": {"gunicorn": {"workers": 6}, "postgres": {"maxConnections": 12}},
    }
    with pytest.raises(SizingError) as err:
        size(validate(raw, "t"))
    text = str(err.value)
    assert "tunedstack:services.postgres.maxConnections = 12: 6 gunicorn workers hold 2" in text
    assert "set at least 15, or unset it to size it (44, with room for a reload)" in text
    fits = {**raw, "services": {**raw["services"], "postgres": {"maxConnections": 15}}}
    assert size(validate(fits, "t")).postgres.max_connections == 15


def test_peak_too_large_for_a_nanode_suggests_a_plan(minimal_raw: dict[str, Any]) -> None:
    raw = {**minimal_raw, "plan": "g6-nanode-1", "workload": {"peakConnections": 40000}}
    with pytest.raises(SizingError, match=r"lower workload.peakConnections or choose a plan"):
        size(validate(raw, "t"))


def test_a_rate_above_capacity_is_refused_naming_the_key_and_what_would_serve_it(
    minimal_raw: dict[str, Any],
) -> None:
    raw = {**minimal_raw, "workload": {"requestsPerSecond": 400, "typicalResponseMs": 40}}
    with pytest.raises(SizingError) as err:
        size(validate(raw, "stacks/Pulumi.test.yaml"), source="stacks/Pulumi.test.yaml")
    text = str(err.value)
    served = size(validate({**minimal_raw, "workload": {"typicalResponseMs": 40}}, "t"))
    assert "tunedstack:workload.requestsPerSecond = 400: the box serves about " in text
    assert f"about {served.capacity_rps} req/s ({served.gunicorn.concurrency} requests" in text
    assert "needs 16 at a time" in text  # 400 req/s x 40 ms
    # The smallest standard plan that serves it, with what it serves; on it the rate is fine.
    # (A volume big enough for any plan's Redis: the CPU is the question.)
    roomy = {**minimal_raw, "volumeSizeGb": 10_240}
    bigger = next(
        p
        for p in sorted(PLANS.values(), key=lambda p: (p.memory_mb, p.vcpus))
        if p.plan_class == "standard"
        and size(
            validate({**roomy, "plan": p.id, "workload": {"typicalResponseMs": 40}}, "t")
        ).capacity_rps
        >= 400
    )
    within = size(validate({**raw, "volumeSizeGb": 10_240, "plan": bigger.id}, "t"))
    assert f"tunedstack:plan {bigger.id} (~{within.capacity_rps} req/s)" in text
    assert within.declared_rps == 400
    assert "tunedstack:workload.typicalResponseMs at most " in text
    assert "tunedstack:workload.allowOverCapacity: true" in text


def test_a_rate_no_response_time_could_serve_suggests_no_impossible_one(
    minimal_raw: dict[str, Any],
) -> None:
    raw = {**minimal_raw, "workload": {"requestsPerSecond": 100_000}}
    with pytest.raises(SizingError) as err:
        size(validate(raw, "t"))
    assert "typicalResponseMs at most" not in str(err.value)
    assert "allowOverCapacity: true" in str(err.value)


def test_a_rate_above_capacity_is_accepted_when_allowed(minimal_raw: dict[str, Any]) -> None:
    workload = {"requestsPerSecond": 1500, "typicalResponseMs": 40, "allowOverCapacity": True}
    sz = size(validate({**minimal_raw, "workload": workload}, "t"))
    assert sz.capacity_rps < sz.declared_rps == 1500  # type: ignore[operator]


def test_a_fixed_worker_count_is_named_when_it_caps_capacity(minimal_raw: dict[str, Any]) -> None:
    raw = {
        **minimal_raw,
        "workload": {"requestsPerSecond": 400},
        "services": {"gunicorn": {"workers": 2}},
    }
    with pytest.raises(SizingError, match=r"more tunedstack:services\.gunicorn\.workers"):
        size(validate(raw, "t"))


def test_bad_sysctl_override_fails_sizing(minimal_raw: dict[str, Any]) -> None:
    raw = {**minimal_raw, "sysctl": {"net.ipv4.tcp_syncookies": 0}}
    with pytest.raises(SizingError, match=r"tcp_syncookies'\] = '0'"):
        size(validate(raw, "t"))


def test_sizing_is_json_ready(stack_settings: Settings) -> None:
    data = size(stack_settings).as_dict()
    assert data["postgres"]["conf"]["shared_buffers"]
    assert data["gunicorn"]["concurrency"] >= 1
    assert {line["name"] for line in data["budget"]["lines"]} >= {"postgresql", "redis maxmemory"}


workloads = st.fixed_dictionaries(
    {
        "peakConnections": st.integers(10, 50_000),
        "typicalResponseMs": st.integers(1, 2000),
    },
    optional={"redisDataMb": st.integers(1, 4096)},
)
apps = st.fixed_dictionaries(
    {"workerRssMb": st.integers(40, 600), "dbPoolSize": st.integers(1, 10)}
)


def _raw(plan: str, workload: dict[str, Any], app: dict[str, Any]) -> dict[str, Any]:
    return {"region": "us-east", "plan": plan, "workload": workload, "app": app}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.sampled_from(sorted(PLANS)),
    workload=workloads,
    app=apps,
    volume_gb=st.sampled_from([10, 20, 500, 10_240]),
)
def test_properties_over_the_catalog(
    plan: str, workload: dict[str, Any], app: dict[str, Any], volume_gb: int
) -> None:
    settings_ = validate({**_raw(plan, workload, app), "volumeSizeGb": volume_gb}, "prop")
    try:
        sz = size(settings_)
    except SizingError as e:
        # Refused only with a table, never half-sized.
        assert "Budget:" in str(e) or "Data volume budget:" in str(e)
        return
    assert sz.volume.fits
    b = sz.budget
    assert b.allocated_mb <= PLANS[plan].memory_mb
    assert b.postgres_mb >= 256
    somaxconn = int(sz.kernel.value("net.core.somaxconn"))
    assert somaxconn >= max(sz.haproxy.backlog, sz.gunicorn.backlog, sz.redis.tcp_backlog)
    assert sz.haproxy.server_maxconn == sz.gunicorn.concurrency
    assert sz.redis.fork_headroom_mb * 100 >= sz.redis.maxmemory_mb * 50
    assert b.redis_fork_headroom_mb == sz.redis.fork_headroom_mb
    assert sz.kernel.file_limits.haproxy >= 2 * sz.haproxy.maxconn
    # Both generations of a reload connect, one connection per thread at least.
    per_worker = max(settings_.app.db_pool_size, sz.gunicorn.threads)
    assert sz.postgres.max_connections >= 2 * sz.gunicorn.workers * per_worker


@settings(max_examples=150, deadline=None)
@given(
    vcpus=st.integers(1, 64),
    small_gb=st.integers(2, 64),
    extra_gb=st.integers(1, 64),
    workload=workloads,
)
def test_values_grow_with_ram(
    vcpus: int, small_gb: int, extra_gb: int, workload: dict[str, Any]
) -> None:
    # A volume that holds a 128 GB box's Redis: this is about RAM.
    settings_ = validate({**_raw("g6-standard-2", workload, {}), "volumeSizeGb": 2000}, "prop")
    small = Plan("small", "standard", vcpus, small_gb * 1024, 0)
    big = Plan("big", "standard", vcpus, (small_gb + extra_gb) * 1024, 0)
    try:
        a = size(settings_, plan=small)
    except SizingError:
        return
    b = size(settings_, plan=big)  # a bigger box must fit whatever the smaller one fitted
    assert b.budget.postgres_mb >= a.budget.postgres_mb
    assert b.postgres.shared_buffers_kb >= a.postgres.shared_buffers_kb
    assert b.postgres.effective_cache_size_kb >= a.postgres.effective_cache_size_kb
    assert b.redis.maxmemory_mb >= a.redis.maxmemory_mb
    assert b.gunicorn.workers >= a.gunicorn.workers


def test_the_budget_error_shows_postgresql_at_its_minimum_and_what_is_missing(
    minimal_raw: dict[str, Any],
) -> None:
    raw = {**minimal_raw, "services": {"redis": {"maxmemoryMb": 3000}}}
    with pytest.raises(SizingError) as err:
        size(validate(raw, "t"))
    table = str(err.value).split("Budget:\n", 1)[1]
    assert not any(cell.startswith("-") for cell in table.split()), table
    postgres = next(line for line in table.splitlines() if line.startswith("postgresql"))
    assert postgres.split()[1] == "256"
    assert "over the plan" in table


def test_postgresql_file_limit_is_per_process_not_per_connection(
    minimal_raw: dict[str, Any],
) -> None:
    """It was 16 descriptors per connection: 80,000 for a 5000-connection server."""
    many = {**minimal_raw, "services": {"postgres": {"maxConnections": 5000}}}
    assert size(validate(many, "t")).kernel.file_limits.postgres == 65536
