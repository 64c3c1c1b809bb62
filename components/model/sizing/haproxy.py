"""HAProxy tunables: accept the peak with headroom, queue what the app cannot take yet."""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.model.sizing.units import mib_from_bytes, next_power_of_two, round_up

# Accept this much more than the expected peak before HAProxy itself stops accepting.
PEAK_HEADROOM = 1.25
# maxconn is rounded up to a round number: an eighth of the next power of two, within these
# bounds, so rounding adds at most 12.5 % (a fixed 1024 step made 128 out of a 100 peak 1024).
MAXCONN_STEP_MIN = 16
MAXCONN_STEP_MAX = 1024
BUFSIZE = 16384  # HAProxy's default tune.bufsize
BASE_MB = 16
# Measured growth of HAProxy 2.6's resident memory (Debian 12), rounded up: an idle keep-alive
# connection holds no buffer, a request whose body is still arriving holds one. The rehearsal
# measures both on the booted box and checks them against these (haproxy_memory.py).
IDLE_CONNECTION_KB = 4  # measured 1.3 here, 2.4 on the rehearsal's box
ACTIVE_REQUEST_KB = 24  # measured 16.2: one 16 kB buffer and its stream
# A request in service or queued holds at most a request and a response buffer.
BUFFERS_PER_ACTIVE_REQUEST = 2
# somaxconn's ceiling on the kernels we target: the accept backlog is stored in 16 bits.
MAX_BACKLOG = 65535
CONNECT_TIMEOUT_S = 5
# Slow-loris guard: the whole request header must arrive within this, however long the
# idle timeouts below are.
HTTP_REQUEST_TIMEOUT_S = 10
# Longer than a polling client's interval, so held connections are reused, not re-opened:
# an idle connection costs HAProxy no buffer, while a server-side close costs a handshake and
# leaves a TIME_WAIT socket on the box per client per interval. 60 s is what cloud load
# balancers use (AWS ALB's idle timeout; nginx's client timeouts).
KEEPALIVE_TIMEOUT_S = 60
# HAProxy caps the effective keep-alive timeout at `timeout client` (haproxy/haproxy#2334).
CLIENT_TIMEOUT_S = KEEPALIVE_TIMEOUT_S
CHECK_INTERVAL_S = 2
# The queue limit follows the measured drain rate when requests are cheaper than the declared
# `typicalResponseMs` (a cheap path drains many more in queueWaitMs), up to this many times the
# declared count: requests down to an eighth of the declared cost wait rather than being shed.
# A flood of cheaper ones is shed at that count, which bounds the memory queued requests hold.
CHEAPER_REQUESTS_QUEUED = 8
# A shed request is told to come back after this: about one queue's worth of work later.
RETRY_AFTER_S = 1
SHED_STATUS = 503  # Service Unavailable: what RFC 9110 pairs with Retry-After
# Debian's haproxy.cfg defaults, for the stock box.
STOCK_CONNECT_TIMEOUT_S = 5
STOCK_CLIENT_TIMEOUT_S = 50
STOCK_SERVER_TIMEOUT_S = 50


@dataclass(frozen=True)
class HaproxyTunables:
    maxconn: int
    backlog: int
    server_maxconn: int
    nbthread: int
    timeout_connect_s: int
    timeout_client_s: int
    timeout_server_s: int
    timeout_queue_s: int
    # Requests waiting for a worker beyond which new ones are shed (503 at once): at least
    # `maxqueue`, more while the server drains more than that in `queue_wait_ms`, never more
    # than `maxqueue_ceiling`.
    maxqueue: int
    maxqueue_ceiling: int
    queue_wait_ms: int
    retry_after_s: int
    shed_status: int
    timeout_http_request_s: int
    timeout_http_keep_alive_s: int
    check_interval_s: int
    timeout_check_s: int
    bufsize: int

    @property
    def memory_mb(self) -> int:
        return haproxy_memory_mb(self.maxconn, self.server_maxconn + self.maxqueue_ceiling)


def maxconn_for_peak(peak_connections: int) -> int:
    wanted = math.ceil(peak_connections * PEAK_HEADROOM)
    step = min(MAXCONN_STEP_MAX, max(MAXCONN_STEP_MIN, next_power_of_two(wanted) // 8))
    return round_up(wanted, step)


def haproxy_memory_mb(maxconn: int, active_requests: int) -> int:
    """What HAProxy's memory grows to: every connection open and idle, plus the requests it
    holds (in service or queued). HAProxy takes buffers only while data is in flight, so 2
    buffers per connection at maxconn (432 MB at 10,000) booked memory nothing used. A request
    still arriving holds a buffer too, for at most `timeout http-request`; a slow-loris flood of
    those comes out of the page cache, not out of a service's share."""
    kb = maxconn * IDLE_CONNECTION_KB
    kb += active_requests * BUFFERS_PER_ACTIVE_REQUEST * ACTIVE_REQUEST_KB
    return BASE_MB + mib_from_bytes(kb * 1024)


def maxqueue(capacity_rps: int, queue_wait_ms: int, app_concurrency: int) -> int:
    """The queue the app drains within `queue_wait_ms` at its capacity (Little's law), and at
    least one request per worker, so a burst the workers finish at once is never shed."""
    return max(app_concurrency, math.ceil(capacity_rps * queue_wait_ms / 1000))


def maxqueue_ceiling(floor: int) -> int:
    """The most requests HAProxy queues, however fast the server is measured to drain them."""
    return floor * CHEAPER_REQUESTS_QUEUED


def size_haproxy(
    maxconn: int,
    app_concurrency: int,
    vcpus: int,
    app_timeout_s: int,
    queue_timeout_s: int,
    capacity_rps: int,
    queue_wait_ms: int,
) -> HaproxyTunables:
    timeout_server_s = app_timeout_s + 5
    floor = maxqueue(capacity_rps, queue_wait_ms, app_concurrency)
    return HaproxyTunables(
        maxconn=maxconn,
        backlog=min(maxconn, MAX_BACKLOG),
        # Never more in flight to gunicorn than it can work on: the rest waits in HAProxy's queue.
        server_maxconn=app_concurrency,
        nbthread=min(vcpus, 64),
        timeout_connect_s=CONNECT_TIMEOUT_S,
        timeout_client_s=CLIENT_TIMEOUT_S,
        # Past gunicorn's timeout: a sync worker stuck that long is killed by gunicorn first
        # (HAProxy answers 502); a gthread worker's timeout watches the worker, not a request,
        # so a request that long runs on until this timeout answers 504.
        timeout_server_s=timeout_server_s,
        # Bounded by time (a slow app) and by length (more requests than the app drains in
        # queue_wait_ms): past the length, waiting would only make every served request slow.
        timeout_queue_s=queue_timeout_s,
        maxqueue=floor,
        maxqueue_ceiling=maxqueue_ceiling(floor),
        queue_wait_ms=queue_wait_ms,
        retry_after_s=RETRY_AFTER_S,
        shed_status=SHED_STATUS,
        timeout_http_request_s=HTTP_REQUEST_TIMEOUT_S,
        timeout_http_keep_alive_s=KEEPALIVE_TIMEOUT_S,
        check_interval_s=CHECK_INTERVAL_S,
        # The box has one backend server: a check that waits behind busy workers is slowness,
        # not failure, and marking the only server DOWN would answer every request with 503.
        # Without `timeout check` HAProxy gives a check only `inter` (2 s); give it as long as a
        # request may take, so only an app that answers nothing for that long goes DOWN.
        timeout_check_s=timeout_server_s,
        bufsize=BUFSIZE,
    )
