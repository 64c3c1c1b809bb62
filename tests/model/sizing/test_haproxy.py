from __future__ import annotations

import pytest

from components.model.sizing import haproxy as hp
from components.model.sizing.haproxy import (
    MAX_BACKLOG,
    haproxy_memory_mb,
    maxconn_for_peak,
    size_haproxy,
)


def test_maxconn_has_headroom_over_the_peak() -> None:
    assert maxconn_for_peak(4000) == 5120
    assert maxconn_for_peak(10000) == 13312
    assert maxconn_for_peak(100) == 128  # was 1024: +924 % instead of the 25 % meant


def test_memory_books_idle_connections_and_the_buffers_of_held_requests() -> None:
    # 5120 idle connections at 4 kB, 30 held requests (5 in service, 25 queued) x 2 x 24 kB.
    assert haproxy_memory_mb(5120, 30) == 16 + 20 + 2
    # 10,000 connections no longer book 2 x 16 kB each (432 MB): what they really use.
    assert haproxy_memory_mb(13312, 30) < 80


def test_server_maxconn_is_app_concurrency_and_backlog_is_capped() -> None:
    h = size_haproxy(100_352, 22, 8, 30, 10, 440, 250)
    assert h.server_maxconn == 22
    assert h.backlog == MAX_BACKLOG
    assert h.timeout_server_s > 30  # gunicorn's timeout fires first
    assert h.timeout_queue_s == 10


def test_idle_keep_alive_is_not_cut_short_by_the_client_timeout() -> None:
    # HAProxy applies the smaller of the two to an idle keep-alive connection.
    h = size_haproxy(5120, 5, 2, 30, 10, 100, 250)
    assert h.timeout_http_keep_alive_s <= h.timeout_client_s
    # A client polling every 50 s keeps its connection; a slow header is still cut at 10 s.
    assert h.timeout_http_keep_alive_s > 50
    assert h.timeout_http_request_s < h.timeout_http_keep_alive_s


@pytest.mark.parametrize("peak", [10, 99, 100, 1000, 4000, 10_000, 50_000, 1_000_000])
def test_maxconn_adds_the_headroom_and_rounding_adds_at_most_an_eighth(peak: int) -> None:
    wanted = peak * 1.25
    assert wanted <= maxconn_for_peak(peak) <= max(wanted * 1.125, wanted + 16)


def test_a_health_check_may_wait_as_long_as_a_request() -> None:
    """One sync worker busy with a 3 s request must not fail a check: the only server
    would go DOWN after 3 failures and every request get a 503."""
    h = size_haproxy(128, 1, 1, 30, 10, 20, 250)
    assert h.timeout_check_s == h.timeout_server_s > h.check_interval_s


def test_the_queue_holds_what_the_app_drains_in_the_wait() -> None:
    # 100 req/s for 250 ms: 25 waiting; a slower wait queues more.
    assert hp.maxqueue(capacity_rps=100, queue_wait_ms=250, app_concurrency=5) == 25
    assert hp.maxqueue(capacity_rps=100, queue_wait_ms=1000, app_concurrency=5) == 100


def test_the_queue_holds_at_least_one_request_per_worker() -> None:
    # A Nanode's single sync worker at 2 s a request would otherwise shed its second request.
    assert hp.maxqueue(capacity_rps=0, queue_wait_ms=250, app_concurrency=3) == 3


def test_cheaper_requests_than_declared_queue_more_up_to_a_ceiling_that_memory_is_booked_for() -> (
    None
):
    """The rendered limit rises with the server's measured drain rate (see
    test_haproxy_shedding), never past the ceiling; HAProxy's memory is booked for the
    ceiling's requests, not the declared count's."""
    h = size_haproxy(5120, 5, 2, 30, 10, 100, 250)
    assert h.maxqueue == 25
    assert h.maxqueue_ceiling == 25 * hp.CHEAPER_REQUESTS_QUEUED == 200
    assert h.memory_mb == haproxy_memory_mb(5120, 5 + 200)
    assert h.memory_mb > haproxy_memory_mb(5120, 5 + 25)
