from __future__ import annotations

from components.model.settings import GunicornOverrides
from components.model.sizing.gunicorn import cpu_bound_workers, ram_bound_workers, size_gunicorn


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


def test_override_wins_and_jitter_is_a_tenth() -> None:
    g = size_gunicorn(2, 780, 150, GunicornOverrides(workers=9, max_requests=5000))
    assert g.workers == 9
    assert g.max_requests_jitter == 500


def test_gthread_concurrency_is_workers_times_threads() -> None:
    g = size_gunicorn(4, 10_000, 100, GunicornOverrides(worker_class="gthread", threads=4))
    assert g.concurrency == 9 * 4


def test_a_gthread_worker_takes_no_more_connections_than_threads() -> None:
    gthread = size_gunicorn(4, 4096, 150, GunicornOverrides(worker_class="gthread", threads=4))
    assert gthread.worker_connections == 4
    assert size_gunicorn(4, 4096, 150, GunicornOverrides()).worker_connections is None  # sync
    assert gthread.keepalive_seconds == 0  # HAProxy closes after each response
