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
# Kernel memory of one established TCP socket: tcp_sock, its inode, dentry, file and epoll
# entry. Measured on Debian 12's kernel as the Slab growth of /proc/meminfo over 5000 loopback
# connections: 3.6 KB per socket.
SOCKET_KERNEL_BYTES = 4096
# TIME_WAIT sockets per client connection: the live one's successors from recent clients.
TIME_WAIT_PER_CONNECTION = 4
TIME_WAIT_ENTRY_BYTES = 256  # tw_sock_TCP's slab object
# The kernel's own tcp_max_tw_buckets is half its established-hash size, one bucket per 128 kB
# of RAM rounded up to a power of two, at most 524288 (tcp_init, alloc_large_system_hash).
EHASH_BUCKETS_PER_MB = 8
EHASH_MAX_BUCKETS = 524288
# tcp_rmem/tcp_wmem maxima the kernel itself picks on any plan we size (tcp_init: 6 MB and 4 MB
# once RAM / 128 exceeds them).
KERNEL_TCP_RMEM_MAX = 6 * MiB
KERNEL_TCP_WMEM_MAX = 4 * MiB
# One socket's buffers may grow to this share of all TCP memory (tcp_mem's max), so it takes
# that many full-speed connections, not 6 on a Nanode, before the kernel's limit is reached.
TCP_BUFFER_SHARE = 32
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
    sockets: int
    tcp_max_tw_buckets: int
    tcp_mem_max_bytes: int

    def value(self, key: str) -> str:
        for s in self.sysctls:
            if s.key == key:
                return s.value
        raise KeyError(key)

    @property
    def memory_mb(self) -> int:
        return kernel_network_mb(self.sockets, self.tcp_max_tw_buckets)


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


def kernel_tw_buckets(memory_mb: int) -> int:
    """tcp_max_tw_buckets as the kernel sets it on this much RAM (plan RAM: an upper bound)."""
    return min(EHASH_MAX_BUCKETS, next_power_of_two(memory_mb * EHASH_BUCKETS_PER_MB)) // 2


def tw_buckets(maxconn: int, memory_mb: int) -> int:
    """Room for every connection's recent TIME_WAIT successors, never below the kernel's own
    (ip-sysctl.rst: "you must not lower the limit artificially")."""
    return max(kernel_tw_buckets(memory_mb), next_power_of_two(maxconn * TIME_WAIT_PER_CONNECTION))


def kernel_tcp_mem_max_bytes(memory_mb: int) -> int:
    """tcp_mem's third value as the kernel sets it (tcp_init_mem: RAM/16 x 3/4 x 2), in bytes."""
    return memory_mb * MiB // 16 // 4 * 3 * 2


def tcp_buffer_max(memory_mb: int, kernel_default: int) -> int:
    """A socket's buffer ceiling: TCP_BUFFER_SHARE of tcp_mem, at most 16 MiB, never below what
    the kernel itself allows."""
    share = kernel_tcp_mem_max_bytes(memory_mb) // TCP_BUFFER_SHARE
    power = next_power_of_two(share + 1) // 2  # the largest power of two within the share
    return max(kernel_default, min(TCP_BUFFER_MAX, power))


def kernel_network_mb(sockets: int, tw_buckets: int) -> int:
    """Kernel memory of the sockets HAProxy may hold and of a full TIME_WAIT table. TCP's
    buffers are not booked: the kernel bounds them by tcp_mem and reclaims them under pressure
    from the page cache, which PostgreSQL's share leaves room for (effective_cache_size)."""
    return -(-(sockets * SOCKET_KERNEL_BYTES + tw_buckets * TIME_WAIT_ENTRY_BYTES) // MiB)


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


def profile_sysctls(somaxconn: int, tw_buckets: int, memory_mb: int) -> list[Sysctl]:
    rmem = tcp_buffer_max(memory_mb, KERNEL_TCP_RMEM_MAX)
    wmem = tcp_buffer_max(memory_mb, KERNEL_TCP_WMEM_MAX)
    share = f"1/{TCP_BUFFER_SHARE} of tcp_mem, at most {TCP_BUFFER_MAX // MiB} MiB"
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
        Sysctl("net.core.rmem_max", str(rmem), f"receive buffer ceiling: {share}"),
        Sysctl("net.core.wmem_max", str(wmem), f"send buffer ceiling: {share}"),
        Sysctl(
            "net.ipv4.tcp_rmem",
            f"4096 131072 {rmem}",
            "kernel min/default kept (min is guaranteed per socket); autotuning may grow to "
            f"{share} (never below the kernel's {KERNEL_TCP_RMEM_MAX // MiB} MiB)",
        ),
        Sysctl(
            "net.ipv4.tcp_wmem",
            f"4096 16384 {wmem}",
            f"kernel min/default kept; autotuning may grow to {share} "
            f"(never below the kernel's {KERNEL_TCP_WMEM_MAX // MiB} MiB)",
        ),
        Sysctl(
            "net.ipv4.tcp_max_tw_buckets",
            str(tw_buckets),
            f"{TIME_WAIT_PER_CONNECTION} TIME_WAIT sockets per HAProxy connection kept instead "
            "of destroyed early, never below the kernel's own for this RAM",
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

    tcp_max_tw_buckets: int
    file_limits: FileLimits
    huge_pages: int = 0


def below_sized(key: str, value: str, floors: Floors) -> str | None:
    """Why an override undercuts a sized value (a reason may still set it), or None."""
    numbers = _ints(value) or []
    if key == "net.ipv4.tcp_max_tw_buckets" and numbers and numbers[0] < floors.tcp_max_tw_buckets:
        return (
            f"below the {floors.tcp_max_tw_buckets} sized for the peak connections (and never "
            "below the kernel's own): the kernel destroys TIME_WAIT sockets early past it"
        )
    if key == "vm.nr_hugepages" and numbers and numbers[0] < floors.huge_pages:
        return (
            f"below the {floors.huge_pages} pages PostgreSQL's shared memory needs: it falls back "
            "to 4 kB pages (huge_pages = try) and the reserved ones sit unused"
        )
    return None


# No netfilter ruleset on the box (the Linode Cloud Firewall filters before it): since Linux
# 4.15 conntrack registers its hooks only for a ruleset that needs them, so it tracks nothing,
# and without nf_conntrack loaded these keys do not exist for systemd-sysctl to set.
CONNTRACK_PREFIXES = ("net.netfilter.nf_conntrack_", "net.netfilter.nf_flowtable_")
CONNTRACK_KEYS = ("net.nf_conntrack_max", "net.netfilter.nf_hooks_lwtunnel")


def conntrack_problem(key: str) -> str | None:
    """The keys nf_conntrack adds (nf_conntrack_standalone.c registers all of them)."""
    if not key.startswith(CONNTRACK_PREFIXES) and key not in CONNTRACK_KEYS:
        return None
    return (
        "conntrack tracks nothing on this box: it has no netfilter ruleset (the Linode Cloud "
        "Firewall filters before traffic reaches it), so nf_conntrack is not loaded and the key "
        "does not exist at boot; drop it"
    )


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
        inert = conntrack_problem(replacement) if obsolete and replacement else None
        if inert:
            message = f"obsolete key: use `{replacement}` instead, yet {inert}"
            problems.append(Problem(name, override.value, message))
            continue
        if obsolete:
            hint = (
                f"use `{replacement}` instead"
                if replacement
                else "removed from the kernel; drop it"
            )
            problems.append(Problem(name, override.value, f"obsolete key: {hint}"))
            continue
        inert = conntrack_problem(key)  # before the key list, which no longer has them
        if inert:
            problems.append(Problem(name, override.value, inert))
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
    huge_pages: int = 0,
) -> tuple[KernelProfile, list[Problem]]:
    somaxconn = somaxconn_for(listen_backlogs)
    tw = tw_buckets(haproxy_maxconn, memory_mb)
    limits = file_limits(haproxy_maxconn, redis_maxclients)
    profile_keys = profile_sysctls(somaxconn, tw, memory_mb)
    if huge_pages:
        profile_keys.append(
            Sysctl(
                "vm.nr_hugepages",
                str(huge_pages),
                "PostgreSQL's shared memory in 2 MB pages, reserved at boot before RAM fragments",
            )
        )
    sysctls, problems = apply_overrides(
        profile_keys,
        overrides,
        memory_mb,
        max(listen_backlogs),
        Floors(tw, limits, huge_pages),
        image,
    )
    profile = KernelProfile(
        sysctls=tuple(sysctls),
        # None: conntrack tracks nothing here (see conntrack_problem). The modules-load file
        # stays, empty, so a box that loaded nf_conntrack before stops loading it.
        modules=(),
        # Redis forks for persistence; THP turns copy-on-write of 4 kB into 2 MB copies.
        transparent_hugepage="never",
        file_limits=limits,
        sockets=haproxy_maxconn,
        tcp_max_tw_buckets=tw,
        tcp_mem_max_bytes=kernel_tcp_mem_max_bytes(memory_mb),
    )
    return profile, problems
