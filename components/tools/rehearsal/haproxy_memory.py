"""What HAProxy's memory really grows by: per idle keep-alive connection and per request whose
body is still arriving (the buffer `option http-buffer-request` holds).

`MEASURE_SCRIPT` is plain Python 3 (standard library only) run next to an HAProxy: on the
rehearsal guest over SSH, or on this machine by the tests. It opens the connections on loopback,
reads the worker's resident memory before and after from /proc, and prints one JSON line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from components.model.layout import PORTS
from components.model.sizing.haproxy import ACTIVE_REQUEST_KB, IDLE_CONNECTION_KB
from components.tools.rehearsal.checks import Check

IDLE_CONNECTIONS = 1000
ACTIVE_REQUESTS = 200
# HAProxy's pools and the allocator grow in chunks: a few hundred kB of growth belong to no one
# connection (500 connections measured 4.1 kB each on the box, 1000 measured 2.4).
POOL_SLACK_KB = 1024

MEASURE_SCRIPT = r"""
import json, socket, sys, time

pid, port, idle_n, active_n, path = (
    int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
)


def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def settled():
    # HAProxy allocates from its own pools as connections arrive: read once nothing moves.
    last, same = rss_kb(), 0
    while same < 3:
        time.sleep(0.3)
        now = rss_kb()
        same = same + 1 if now == last else 0
        last = now
    return last


def request(conn, text):
    conn.sendall(text.encode())


def answered(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise SystemExit("HAProxy closed a connection the measurement keeps")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
    length = int(lengths[0].split(b":")[1]) if lengths else 0
    while len(body) < length:
        body += conn.recv(65536)


# Warm the pools with a few requests first, as a serving box has.
for _ in range(20):
    with socket.create_connection(("127.0.0.1", port)) as c:
        request(c, f"GET {path} HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n")
        answered(c)
base = settled()
idle = []
for _ in range(idle_n):
    c = socket.create_connection(("127.0.0.1", port))
    request(c, f"GET {path} HTTP/1.1\r\nHost: box\r\n\r\n")
    answered(c)  # answered, and now idle on keep-alive
    idle.append(c)
with_idle = settled()
active = []
for _ in range(active_n):
    c = socket.create_connection(("127.0.0.1", port))
    # A body still on its way: HAProxy holds the request (and its buffer) until it has it.
    request(c, "POST /hits HTTP/1.1\r\nHost: box\r\nContent-Length: 100000\r\n\r\n" + "x" * 8000)
    active.append(c)
with_active = settled()
print(json.dumps({
    "base_kb": base, "idle_connections": idle_n, "with_idle_kb": with_idle,
    "active_requests": active_n, "with_active_kb": with_active,
}))
for c in idle + active:
    c.close()
"""


@dataclass(frozen=True)
class HaproxyMemory:
    base_kb: int
    idle_connections: int
    with_idle_kb: int
    active_requests: int
    with_active_kb: int

    @property
    def per_idle_connection_kb(self) -> float:
        return (self.with_idle_kb - self.base_kb) / self.idle_connections

    @property
    def per_active_request_kb(self) -> float:
        return (self.with_active_kb - self.with_idle_kb) / self.active_requests

    def summary(self) -> str:
        return (
            f"{self.per_idle_connection_kb:.1f} kB per idle connection ({self.idle_connections}), "
            f"{self.per_active_request_kb:.1f} kB per request still arriving "
            f"({self.active_requests}); sizing books {IDLE_CONNECTION_KB} and {ACTIVE_REQUEST_KB}"
        )


def parse(output: str) -> HaproxyMemory:
    return HaproxyMemory(**json.loads(output.strip().splitlines()[-1]))


def guest_command() -> str:
    """Bash for the guest: the script against the box's own HAProxy worker on loopback (the
    app's `/`, which touches neither PostgreSQL nor Redis)."""
    return (
        'worker=$(pgrep -P "$(systemctl show -p MainPID --value haproxy)" haproxy | head -n 1)\n'
        f'python3 - "$worker" {PORTS.http} {IDLE_CONNECTIONS} {ACTIVE_REQUESTS} / '
        f"<<'PY'\n{MEASURE_SCRIPT}\nPY\n"
    )


def memory_checks(measured: HaproxyMemory) -> list[Check]:
    """The box's HAProxy grows by no more than sizing books for that many connections and
    requests (plus a chunk of pool granularity)."""
    idle_growth = measured.with_idle_kb - measured.base_kb
    idle_booked = measured.idle_connections * IDLE_CONNECTION_KB + POOL_SLACK_KB
    active_growth = measured.with_active_kb - measured.with_idle_kb
    active_booked = measured.active_requests * ACTIVE_REQUEST_KB + POOL_SLACK_KB
    return [
        Check(
            f"haproxy kB for {measured.idle_connections} idle connections (measured)",
            idle_growth <= idle_booked,
            f"{idle_growth} ({measured.per_idle_connection_kb:.1f} each)",
            f"at most {idle_booked} ({IDLE_CONNECTION_KB} each booked + {POOL_SLACK_KB})",
        ),
        Check(
            f"haproxy kB for {measured.active_requests} requests still arriving (measured)",
            active_growth <= active_booked,
            f"{active_growth} ({measured.per_active_request_kb:.1f} each)",
            f"at most {active_booked} ({ACTIVE_REQUEST_KB} each booked + {POOL_SLACK_KB})",
        ),
    ]
