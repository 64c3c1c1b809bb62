from __future__ import annotations

import pytest

from components.model.settings import GunicornOverrides
from components.model.sizing.gunicorn import (
    RESTART_COST_REQUESTS,
    RESTART_OVERHEAD,
    cpu_bound_workers,
    ram_bound_workers,
    restart_overhead,
    size_gunicorn,
)


def test_cpu_bound_is_two_per_core_plus_one() -> None:
    assert cpu_bound_workers(1) == 3
    assert cpu_bound_workers(5) == 11


def test_ram_bound_never_below_one() -> None:
    assert ram_bound_workers(100, 150) == 1
    assert ram_bound_workers(780, 150) == 5


def test_workers_take_the_smaller_bound() -> None:
    g = size_gunicorn(5, 780, 150, GunicornOverrides())
    assert g.workers == 5 and g.cpu_bound_workers == 11 and g.ram_bound_workers == 5
    g = size_gunicorn(1, 10_000, 150, GunicornOverrides())
    assert g.workers == 3


def test_override_wins_and_jitter_spreads_recycling_over_a_whole_cycle() -> None:
    g = size_gunicorn(2, 780, 150, GunicornOverrides(workers=9, max_requests=5000))
    assert g.workers == 9
    # gunicorn recycles a worker after max_requests + randint(0, jitter) requests. Workers
    # sharing requests evenly all reach max_requests at once; their first restarts fall
    # anywhere in [max_requests, max_requests + jitter] of their own requests, so the jitter
    # must be as wide as a cycle, not a tenth of one, for the restarts to spread.
    assert g.max_requests_jitter == g.max_requests == 5000
    assert size_gunicorn(2, 780, 150, GunicornOverrides(max_requests=0)).max_requests_jitter == 0


def test_by_default_recycling_takes_about_one_percent_of_the_workers_time() -> None:
    # Each restart costs RESTART_COST_REQUESTS requests' work (measured on the bench box);
    # gunicorn's jitter of a whole cycle makes a worker's cycle 1.5 x max_requests on average.
    g = size_gunicorn(2, 780, 150, GunicornOverrides())
    assert g.max_requests == g.max_requests_jitter == 6_667
    mean_cycle = g.max_requests + g.max_requests_jitter / 2
    assert RESTART_COST_REQUESTS / mean_cycle <= RESTART_OVERHEAD == 0.01
    assert restart_overhead(g.max_requests) == pytest.approx(0.01, rel=1e-3)
    assert restart_overhead(0) == 0.0  # never recycled


def test_gthread_concurrency_is_workers_times_threads() -> None:
    g = size_gunicorn(4, 10_000, 100, GunicornOverrides(worker_class="gthread", threads=4))
    assert g.concurrency == 9 * 4


def test_a_gthread_worker_takes_no_more_connections_than_threads() -> None:
    gthread = size_gunicorn(4, 4096, 150, GunicornOverrides(worker_class="gthread", threads=4))
    assert gthread.worker_connections == 4
    assert size_gunicorn(4, 4096, 150, GunicornOverrides()).worker_connections is None  # sync
    assert gthread.keepalive_seconds == 0  # HAProxy closes after each response
