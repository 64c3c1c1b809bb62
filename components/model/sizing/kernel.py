"""The kernel profile: the seed's intent (many sockets, no refused connections, Redis fork
safety) with today's keys and values, then the stack's overrides, checked for obsolete keys and
dangerous values. Also the file-descriptor limits of every service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from components.model.errors import Problem
from components.model.layout import PORTS
from components.model.settings import NAMESPACE, SysctlOverride
from components.model.sizing.sysctl_rules import (
    LISTED_IMAGE,
    key_problem,
    runs_a_program,
    value_problem,
)
from components.model.sizing.units import next_power_of_two, round_up

MiB = 1024 * 1024
PAGE_SIZE = 4096
# The kernel's default accept-queue ceiling since 5.4; we never go below it.
SOMAXCONN_FLOOR = 4096
SOMAXCONN_CEILING = 65535
CONNTRACK_FLOOR = 65536
# Entries per client connection: the live one plus TIME_WAIT/closing ones of recent clients.
CONNTRACK_PER_CONNECTION = 4
CONNTRACK_ENTRY_BYTES = 320
TIME_WAIT_ENTRY_BYTES = 256
TCP_BUFFER_MAX = 16 * MiB
# fs.nr_open's default: no process may raise RLIMIT_NOFILE above it.
NR_OPEN = 1048576
FD_HEADROOM = 1024
# systemd (240 and later) starts every login session with a hard limit of 524288: limits.d
# may raise the soft limit, and must not lower the hard one.
SYSTEMD_LOGIN_HARD_NOFILE = 524288
# Debian's redis-server.service sets LimitNOFILE=65535; the drop-in only ever raises it.
DEBIAN_REDIS_NOFILE = 65535
# A PostgreSQL backend opens up to max_files_per_process (1000) files plus a few sockets; the
# limit is per process, so it does not grow with max_connections.
POSTGRES_NOFILE = 65536
# Debian 12 and Ubuntu 24.04 kernels: the ephemeral port range starts here by default.
EPHEMERAL_PORT_FLOOR = 32768
# Ports services on the box listen on after boot: an ephemeral range over one of them lets an
# outgoing connection hold it first (SSH, HTTP and HTTPS are below any range Linux accepts).
LISTENING_PORTS = {
    "PostgreSQL": PORTS.postgres,
    "Redis": PORTS.redis,
    "gunicorn (stock)": PORTS.app_tcp,
    "HAProxy stats": PORTS.stats,
}
# FIN_WAIT_2 shorter than this cuts off peers that are still closing cleanly (default 60 s).
FIN_TIMEOUT_FLOOR_S = 10
# TCP features RFC 7323 and RFC 2018 made standard: 0 turns them off for every connection.
TCP_FEATURES_OFF = {
    "net.ipv4.tcp_timestamps": "turns off TCP timestamps: no protection against wrapped "
    "sequence numbers (PAWS) and no per-segment RTT measurement",
    "net.ipv4.tcp_sack": "turns off selective acknowledgements: one lost packet costs the "
    "retransmission of everything sent after it",
    "net.ipv4.tcp_window_scaling": "caps every TCP window at 64 KB, so a connection moves at "
    "most 64 KB per round trip",
}

Origin = Literal["profile", "stack"]


@dataclass(frozen=True)
class Sysctl:
    key: str
    value: str
    reason: str
    origin: Origin = "profile"


@dataclass(frozen=True)
class FileLimits:
    """RLIMIT_NOFILE per service (systemd LimitNOFILE) and for login shells (limits.d)."""

    haproxy: int
    gunicorn: int
    postgres: int
    redis: int

    def per_service(self) -> dict[str, int]:
        return {
            "haproxy": self.haproxy,
            "gunicorn": self.gunicorn,
            "postgresql": self.postgres,
            "redis": self.redis,
        }

    @property
    def login(self) -> int:
        """The soft limit of a login shell: enough to run any service's command by hand."""
        return max(self.per_service().values())

    @property
    def login_hard(self) -> int:
        return max(self.login, SYSTEMD_LOGIN_HARD_NOFILE)


@dataclass(frozen=True)
class KernelProfile:
    sysctls: tuple[Sysctl, ...]
    modules: tuple[str, ...]
    transparent_hugepage: str
    file_limits: FileLimits
    conntrack_max: int
    tcp_max_tw_buckets: int

    def value(self, key: str) -> str:
        for s in self.sysctls:
            if s.key == key:
                return s.value
        raise KeyError(key)

    @property
    def memory_mb(self) -> int:
        return kernel_network_mb(self.conntrack_max, self.tcp_max_tw_buckets)


# Keys that no longer exist, and what replaced them (None: removed without a replacement).
OBSOLETE: dict[str, str | None] = {
    "net.ipv4.tcp_tw_recycle": None,
    "net.ipv4.tcp_low_latency": None,
    "net.ipv4.ip_conntrack_max": "net.netfilter.nf_conntrack_max",
    "net.ipv4.netfilter.ip_conntrack_max": "net.netfilter.nf_conntrack_max",
    "net.ipv4.netfilter.ip_conntrack_buckets": "net.netfilter.nf_conntrack_buckets",
}
_OLD_CONNTRACK = re.compile(r"net\.ipv4\.netfilter\.ip_conntrack_(\w+)")


def modern_key(key: str) -> tuple[bool, str | None]:
    """(is obsolete, replacement) for a sysctl key."""
    if key in OBSOLETE:
        return True, OBSOLETE[key]
    match = _OLD_CONNTRACK.fullmatch(key)
    if match:
        return True, f"net.netfilter.nf_conntrack_{match.group(1)}"
    return False, None


def conntrack_max(maxconn: int) -> int:
    return max(CONNTRACK_FLOOR, next_power_of_two(maxconn * CONNTRACK_PER_CONNECTION))


def kernel_network_mb(conntrack: int, tw_buckets: int) -> int:
    return -(-(conntrack * CONNTRACK_ENTRY_BYTES + tw_buckets * TIME_WAIT_ENTRY_BYTES) // MiB)


def somaxconn_for(backlogs: list[int]) -> int:
    return min(SOMAXCONN_CEILING, max(SOMAXCONN_FLOOR, *backlogs))


def file_limits(haproxy_maxconn: int, redis_maxclients: int) -> FileLimits:
    return FileLimits(
        # A proxied connection is two descriptors (client side and server side).
        haproxy=min(NR_OPEN, round_up(2 * haproxy_maxconn + FD_HEADROOM, 1024)),
        gunicorn=65536,
        postgres=POSTGRES_NOFILE,
        # maxclients plus Redis's own 32 descriptors.
        redis=min(
            NR_OPEN, max(DEBIAN_REDIS_NOFILE, round_up(redis_maxclients + 32 + FD_HEADROOM, 1024))
        ),
    )


def profile_sysctls(somaxconn: int, conntrack: int, tw_buckets: int) -> list[Sysctl]:
    return [
        Sysctl(
            "net.core.somaxconn",
            str(somaxconn),
            "accept queue ceiling: at least every listen backlog (HAProxy's frontend)",
        ),
        Sysctl(
            "net.ipv4.tcp_max_syn_backlog",
            str(somaxconn),
            "half-open connections kept while the accept queue drains",
        ),
        Sysctl(
            "net.ipv4.tcp_syncookies", "1", "SYN-flood protection stays on (the seed turned it off)"
        ),
        Sysctl("net.core.rmem_max", str(TCP_BUFFER_MAX), "receive buffer ceiling: raise max only"),
        Sysctl("net.core.wmem_max", str(TCP_BUFFER_MAX), "send buffer ceiling: raise max only"),
        Sysctl(
            "net.ipv4.tcp_rmem",
            f"4096 131072 {TCP_BUFFER_MAX}",
            "kernel min/default kept (min is guaranteed per socket); autotuning may grow",
        ),
        Sysctl(
            "net.ipv4.tcp_wmem",
            f"4096 16384 {TCP_BUFFER_MAX}",
            "kernel min/default kept; autotuning may grow to the max",
        ),
        Sysctl(
            "net.ipv4.tcp_max_tw_buckets",
            str(tw_buckets),
            "TIME_WAIT sockets of recent clients kept instead of destroyed early",
        ),
        Sysctl(
            "net.netfilter.nf_conntrack_max",
            str(conntrack),
            "room for every client connection and its TIME_WAIT ('table full, dropping packet')",
        ),
        Sysctl(
            "net.netfilter.nf_conntrack_tcp_timeout_established",
            "54000",
            "the seed's 15 h instead of 5 days: slots of vanished peers come back",
        ),
        Sysctl(
            "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
            "30",
            "the seed's 30 s: short-lived HTTP connections free their slot sooner",
        ),
        Sysctl(
            "net.netfilter.nf_conntrack_generic_timeout",
            "120",
            "the seed's 120 s for untracked protocols instead of 600 s",
        ),
        Sysctl(
            "vm.overcommit_memory",
            "1",
            "Redis BGSAVE/AOF rewrite fork must not fail (headroom is in the budget)",
        ),
        Sysctl(
            "vm.swappiness", "10", "keep PostgreSQL and Redis pages in RAM; swap is a last resort"
        ),
        Sysctl("net.ipv4.conf.all.rp_filter", "1", "drop spoofed source addresses (the seed's)"),
        Sysctl("net.ipv4.conf.default.rp_filter", "1", "same for interfaces added later"),
    ]


def _ints(value: str) -> list[int] | None:
    try:
        return [int(v) for v in value.split()]
    except ValueError:
        return None


def danger(key: str, value: str, memory_mb: int) -> str | None:
    """Why a value is harmful on a modern kernel, or None."""
    if runs_a_program(key, value):
        return "makes the kernel run a program as root, a way in for whoever controls it"
    numbers = _ints(value) or []
    if key == "net.ipv4.tcp_syncookies" and numbers == [0]:
        return "turns off SYN-flood protection; valid: 1 (default) or 2"
    if key in ("net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem") and numbers and numbers[0] > 65536:
        return (
            f"the minimum ({numbers[0]} bytes) is guaranteed to every socket even under memory "
            "pressure; keep it at 4096 and raise only the third (max) value"
        )
    if key == "net.ipv4.tcp_mem" and numbers and max(numbers) * PAGE_SIZE > memory_mb * MiB:
        return (
            f"tcp_mem is in pages of {PAGE_SIZE} bytes: {max(numbers)} pages is "
            f"{max(numbers) * PAGE_SIZE // MiB} MB, more than the plan's {memory_mb} MB, "
            "which disables TCP memory pressure; leave it unset (the kernel sizes it from RAM)"
        )
    if key in ("net.core.rmem_default", "net.core.wmem_default") and numbers and numbers[0] > MiB:
        return "applies to every non-TCP socket; keep the default (212992)"
    if key == "fs.file-max":
        return "systemd already raises it to the maximum at boot; any value here lowers it"
    if key in TCP_FEATURES_OFF and numbers == [0]:
        return f"{TCP_FEATURES_OFF[key]}; valid: 1 (default)"
    if key == "net.ipv4.tcp_fin_timeout" and numbers and numbers[0] < FIN_TIMEOUT_FLOOR_S:
        return (
            f"drops FIN_WAIT_2 sockets after {numbers[0]} s, cutting off peers still closing "
            f"cleanly; valid: {FIN_TIMEOUT_FLOOR_S} or more (default 60)"
        )
    if key == "vm.overcommit_memory" and numbers == [2]:
        return (
            "strict accounting: Redis's BGSAVE and AOF-rewrite fork is charged Redis's whole "
            "memory and fails, and Redis then refuses writes; the profile sets 1"
        )
    if key == "net.ipv4.ip_local_port_range" and len(numbers) == 2:
        taken = [
            f"{port} ({name})"
            for name, port in LISTENING_PORTS.items()
            if numbers[0] <= port <= numbers[1]
        ]
        if taken:
            return (
                f"ephemeral ports {numbers[0]}-{numbers[1]} include {', '.join(taken)}: an "
                "outgoing connection can hold the port before the service starts; keep the "
                f"range from {EPHEMERAL_PORT_FLOOR} up (the default)"
            )
    return None


@dataclass(frozen=True)
class Floors:
    """What the rest of the box was sized to, which an override must not undercut."""

    conntrack_max: int
    tcp_max_tw_buckets: int
    file_limits: FileLimits


def below_sized(key: str, value: str, floors: Floors) -> str | None:
    """Why an override undercuts a sized value (a reason may still set it), or None."""
    numbers = _ints(value) or []
    sized = {
        "net.netfilter.nf_conntrack_max": (
            floors.conntrack_max,
            "the kernel drops new connections once the table is full",
        ),
        "net.ipv4.tcp_max_tw_buckets": (
            floors.tcp_max_tw_buckets,
            "the kernel destroys TIME_WAIT sockets early past it",
        ),
    }
    if key in sized and numbers and numbers[0] < sized[key][0]:
        floor, why = sized[key]
        return f"below the {floor} sized for the peak connections: {why}"
    return None


def nr_open_problem(value: str, limits: FileLimits) -> str | None:
    """fs.nr_open caps every LimitNOFILE: below one, systemd cannot start that service."""
    numbers = _ints(value) or []
    highest = max(limits.per_service().items(), key=lambda item: item[1])
    if numbers and numbers[0] < highest[1]:
        return (
            f"below {highest[0]}'s LimitNOFILE {highest[1]}, which systemd then cannot set, "
            f"so the service fails to start; valid: at least {highest[1]} (default {NR_OPEN})"
        )
    return None


def sysctl_key_name(key: str) -> str:
    return f"{NAMESPACE}:sysctl[{key!r}]"


def apply_overrides(
    profile: list[Sysctl],
    overrides: dict[str, SysctlOverride],
    memory_mb: int,
    min_somaxconn: int,
    floors: Floors,
    image: str = LISTED_IMAGE,
) -> tuple[list[Sysctl], list[Problem]]:
    """The dev-sec model: profile defaults, replaced or extended by the stack's keys."""
    problems: list[Problem] = []
    merged = {s.key: s for s in profile}
    for key, override in overrides.items():
        name = sysctl_key_name(key)
        obsolete, replacement = modern_key(key)
        if obsolete:
            hint = (
                f"use `{replacement}` instead"
                if replacement
                else "removed from the kernel; drop it"
            )
            problems.append(Problem(name, override.value, f"obsolete key: {hint}"))
            continue
        wrong = key_problem(key, image) or value_problem(key, override.value)
        if wrong:
            problems.append(Problem(name, override.value, wrong))
            continue
        nr_open = (
            nr_open_problem(override.value, floors.file_limits) if key == "fs.nr_open" else None
        )
        if nr_open:
            problems.append(Problem(name, override.value, nr_open))
            continue
        harm = danger(key, override.value, memory_mb) or below_sized(key, override.value, floors)
        if harm and not override.reason:
            problems.append(
                Problem(
                    name,
                    override.value,
                    f"{harm}. To set it anyway, write it as {{value: ..., reason: '...'}}",
                )
            )
            continue
        if key == "net.core.somaxconn":
            numbers = _ints(override.value)
            if not numbers or numbers[0] < min_somaxconn:
                problems.append(
                    Problem(
                        name,
                        override.value,
                        f"must be at least {min_somaxconn}, the largest listen backlog (HAProxy)",
                    )
                )
                continue
        reason = override.reason or "set by the stack"
        merged[key] = Sysctl(key, override.value, reason, origin="stack")
    return list(merged.values()), problems


def size_kernel(
    haproxy_maxconn: int,
    listen_backlogs: list[int],
    redis_maxclients: int,
    overrides: dict[str, SysctlOverride],
    memory_mb: int,
    image: str = LISTED_IMAGE,
) -> tuple[KernelProfile, list[Problem]]:
    somaxconn = somaxconn_for(listen_backlogs)
    conntrack = conntrack_max(haproxy_maxconn)
    limits = file_limits(haproxy_maxconn, redis_maxclients)
    sysctls, problems = apply_overrides(
        profile_sysctls(somaxconn, conntrack, conntrack),
        overrides,
        memory_mb,
        max(listen_backlogs),
        Floors(conntrack, conntrack, limits),
        image,
    )
    profile = KernelProfile(
        sysctls=tuple(sysctls),
        # Loaded at boot so systemd-sysctl (ordered after modules-load) can set its keys.
        modules=("nf_conntrack",),
        # Redis forks for persistence; THP turns copy-on-write of 4 kB into 2 MB copies.
        transparent_hugepage="never",
        file_limits=limits,
        conntrack_max=conntrack,
        tcp_max_tw_buckets=conntrack,
    )
    return profile, problems
