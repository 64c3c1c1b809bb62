from __future__ import annotations

from components.sizing.haproxy import (
    MAX_BACKLOG,
    haproxy_memory_mb,
    maxconn_for_peak,
    size_haproxy,
)


def test_maxconn_has_headroom_over_the_peak() -> None:
    assert maxconn_for_peak(4000) == 5120
    assert maxconn_for_peak(10000) >= 12500


def test_memory_counts_two_buffers_per_connection() -> None:
    assert haproxy_memory_mb(5120) == 16 + 160


def test_server_maxconn_is_app_concurrency_and_backlog_is_capped() -> None:
    h = size_haproxy(100_352, 22, 8, 30, 10)
    assert h.server_maxconn == 22
    assert h.backlog == MAX_BACKLOG
    assert h.timeout_server_s > 30  # gunicorn's timeout fires first
    assert h.timeout_queue_s == 10
