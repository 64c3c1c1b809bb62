from __future__ import annotations

from pathlib import Path

import pytest

from components.model.settings import SysctlOverride
from components.model.sizing.kernel import (
    Floors,
    apply_overrides,
    danger,
    file_limits,
    kernel_tcp_mem_max_bytes,
    kernel_tw_buckets,
    modern_key,
    profile_sysctls,
    size_kernel,
    somaxconn_for,
    tcp_buffer_max,
    tw_buckets,
)

SEED_HARMFUL_KEYS = (
    "fs.file-max",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.ipv4.tcp_mem",
)


# A box sized for 1000 connections: the values an override must not undercut.
FLOORS = Floors(65536, file_limits(1000, 1000))
MiB = 1024 * 1024


def _override(value: str, reason: str | None = None) -> SysctlOverride:
    return SysctlOverride(value=value, reason=reason)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("net.ipv4.netfilter.ip_conntrack_max", "net.netfilter.nf_conntrack_max"),
        (
            "net.ipv4.netfilter.ip_conntrack_generic_timeout",
            "net.netfilter.nf_conntrack_generic_timeout",
        ),
        (
            "net.ipv4.netfilter.ip_conntrack_tcp_timeout_established",
            "net.netfilter.nf_conntrack_tcp_timeout_established",
        ),
        ("net.ipv4.tcp_tw_recycle", None),
    ],
)
def test_obsolete_keys_name_their_replacement(old: str, new: str | None) -> None:
    assert modern_key(old) == (True, new)
    _, problems = apply_overrides([], {old: _override("1")}, 4096, 4096, FLOORS)
    (problem,) = problems
    assert problem.key == f"tunedstack:sysctl[{old!r}]"
    assert "obsolete key" in problem.message
    assert (f"use `{new}` instead" if new else "removed from the kernel") in problem.message


def test_modern_key_is_not_obsolete() -> None:
    assert modern_key("net.netfilter.nf_conntrack_max") == (False, None)


def test_syncookies_off_is_refused_with_what_is_valid() -> None:
    _, problems = apply_overrides(
        [], {"net.ipv4.tcp_syncookies": _override("0")}, 4096, 4096, FLOORS
    )
    (problem,) = problems
    assert problem.value == "0"
    assert "SYN-flood protection" in problem.message and "valid: 1" in problem.message
    assert "reason" in problem.message


def test_syncookies_off_is_accepted_with_a_reason() -> None:
    sysctls, problems = apply_overrides(
        [], {"net.ipv4.tcp_syncookies": _override("0", "SYN proxy in front")}, 4096, 4096, FLOORS
    )
    assert problems == []
    assert sysctls[0].value == "0" and sysctls[0].origin == "stack"


def test_seed_rmem_minimum_in_megabytes_is_refused() -> None:
    harm = danger("net.ipv4.tcp_rmem", "30000000 30000000 30000000", 4096)
    assert harm is not None and "guaranteed to every socket" in harm


def test_seed_tcp_mem_in_pages_beyond_ram_is_refused() -> None:
    harm = danger("net.ipv4.tcp_mem", "30000000 30000000 30000000", 4096)
    assert harm is not None and "pages" in harm and "4096 MB" in harm
    assert danger("net.ipv4.tcp_mem", "10000 20000 40000", 4096) is None


@pytest.mark.parametrize("key", SEED_HARMFUL_KEYS)
def test_seed_harmful_values_are_refused(key: str) -> None:
    assert danger(
        key, "10000000" if key != "net.ipv4.tcp_mem" else "30000000 30000000 30000000", 4096
    )


def test_port_range_over_service_ports_is_refused() -> None:
    harm = danger("net.ipv4.ip_local_port_range", "1024 65535", 4096)
    assert harm and "5432 (PostgreSQL), 6379 (Redis)" in harm and "8404 (HAProxy stats)" in harm
    # The stats port alone, which the old check (anything from 6380 up) let through.
    stats = danger("net.ipv4.ip_local_port_range", "8400 9000", 4096)
    assert stats and "8404 (HAProxy stats)" in stats and "PostgreSQL" not in stats
    assert danger("net.ipv4.ip_local_port_range", "32768 60999", 4096) is None
    assert danger("net.ipv4.ip_local_port_range", "10000 65535", 4096) is None


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("net.ipv4.tcp_timestamps", "0", "PAWS"),
        ("net.ipv4.tcp_sack", "0", "selective acknowledgements"),
        ("net.ipv4.tcp_window_scaling", "0", "64 KB"),
        ("net.ipv4.tcp_fin_timeout", "1", "FIN_WAIT_2 sockets after 1 s"),
        ("vm.overcommit_memory", "2", "BGSAVE"),
    ],
)
def test_harmful_tcp_and_memory_values_need_a_reason(key: str, value: str, says: str) -> None:
    _, problems = apply_overrides([], {key: _override(value)}, 4096, 4096, FLOORS)
    (problem,) = problems
    assert says in problem.message and "reason" in problem.message
    merged, problems = apply_overrides([], {key: _override(value, "measured")}, 4096, 4096, FLOORS)
    assert problems == [] and merged[0].value == value


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("net.ipv4.tcp_timestamps", "1"),
        ("net.ipv4.tcp_sack", "1"),
        ("net.ipv4.tcp_fin_timeout", "10"),
        ("vm.overcommit_memory", "1"),
    ],
)
def test_the_defaults_of_those_keys_are_fine(key: str, value: str) -> None:
    assert danger(key, value, 4096) is None


def test_an_override_below_the_sized_time_wait_table_needs_a_reason() -> None:
    key = "net.ipv4.tcp_max_tw_buckets"
    _, problems = apply_overrides([], {key: _override("65535")}, 4096, 4096, FLOORS)
    (problem,) = problems
    assert "below the 65536 sized for the peak connections" in problem.message
    _, problems = apply_overrides([], {key: _override("65536")}, 4096, 4096, FLOORS)
    assert problems == []


@pytest.mark.parametrize(
    "key",
    [
        "net.netfilter.nf_conntrack_max",
        "net.ipv4.netfilter.ip_conntrack_max",
        "net.nf_conntrack_max",
    ],
)
def test_conntrack_keys_are_refused_as_inert_even_with_a_reason(key: str) -> None:
    _, problems = apply_overrides([], {key: _override("262144", "seed")}, 4096, 4096, FLOORS)
    (problem,) = problems
    assert "conntrack tracks nothing on this box" in problem.message


def test_the_profile_loads_no_conntrack_and_sets_none_of_its_keys() -> None:
    kernel, _ = size_kernel(5120, [5120], 10000, {}, 4096)
    assert kernel.modules == ()
    assert not [s for s in kernel.sysctls if "conntrack" in s.key]


def test_nr_open_below_a_services_file_limit_is_refused_even_with_a_reason() -> None:
    haproxy = FLOORS.file_limits.haproxy
    highest = max(haproxy, FLOORS.file_limits.gunicorn, FLOORS.file_limits.postgres)
    _, problems = apply_overrides(
        [], {"fs.nr_open": _override(str(highest - 1), "smaller")}, 4096, 4096, FLOORS
    )
    (problem,) = problems
    assert f"LimitNOFILE {highest}" in problem.message and "fails to start" in problem.message
    _, problems = apply_overrides([], {"fs.nr_open": _override(str(highest))}, 4096, 4096, FLOORS)
    assert problems == []


def test_somaxconn_override_below_a_backlog_is_refused() -> None:
    _, problems = apply_overrides([], {"net.core.somaxconn": _override("1024")}, 4096, 5120, FLOORS)
    assert "at least 5120" in problems[0].message


def test_override_replaces_the_profile_value() -> None:
    profile = profile_sysctls(5120, 65536, 4096)
    merged, problems = apply_overrides(
        profile, {"vm.swappiness": _override("1")}, 4096, 5120, FLOORS
    )
    assert problems == []
    swappiness = [s for s in merged if s.key == "vm.swappiness"]
    assert len(swappiness) == 1 and swappiness[0].value == "1"
    assert len(merged) == len(profile)


def test_somaxconn_covers_every_backlog_within_bounds() -> None:
    assert somaxconn_for([511, 2048]) == 4096
    assert somaxconn_for([13312, 2048]) == 13312
    assert somaxconn_for([100_000]) == 65535


def test_time_wait_table_never_goes_below_the_kernels_own() -> None:
    # The kernel's: half its established hash, a bucket per 128 kB, at most 524288 buckets.
    assert kernel_tw_buckets(4096) == 16384
    assert kernel_tw_buckets(16384) == 65536
    assert kernel_tw_buckets(65536) == 262144
    assert kernel_tw_buckets(524288) == 262144
    assert tw_buckets(1024, 4096) == 16384  # 4 x 1024 = 4096, the kernel's 16384 kept
    assert tw_buckets(100_352, 4096) == 524288  # 4 per connection, a power of two
    assert tw_buckets(5120, 65536) == 262144  # 64 GB: the kernel's 262144, not 32768


def test_kernel_tcp_mem_estimate_matches_this_kernel() -> None:
    """The formula against the running kernel's own tcp_mem (read only), on this machine's RAM."""
    pages = int(Path("/proc/sys/net/ipv4/tcp_mem").read_text().split()[2])
    total_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    estimate = kernel_tcp_mem_max_bytes(total_kb // 1024)
    assert estimate * 0.85 <= pages * 4096 <= estimate * 1.01


def test_tcp_buffers_scale_with_the_plan_and_never_go_below_the_kernels() -> None:
    # Nanode: 1/32 of its ~96 MB tcp_mem is 3 MB, under the kernel's own 6 MB / 4 MB: kept.
    assert tcp_buffer_max(1024, 6 * MiB) == 6 * MiB
    assert tcp_buffer_max(1024, 4 * MiB) == 4 * MiB
    # 4 GB: 1/32 of 384 MB is 12 MB, rounded down to 8 MiB; 8 GB and up: the 16 MiB ceiling.
    assert tcp_buffer_max(4096, 4 * MiB) == 8 * MiB
    assert tcp_buffer_max(8192, 6 * MiB) == 16 * MiB
    assert tcp_buffer_max(524288, 6 * MiB) == 16 * MiB
    nanode = {s.key: s.value for s in profile_sysctls(4096, 16384, 1024)}
    assert nanode["net.ipv4.tcp_rmem"] == f"4096 131072 {6 * MiB}"
    assert nanode["net.core.wmem_max"] == str(4 * MiB)
    # No socket may take more than a 32nd of what TCP may use in all.
    for memory_mb in (2048, 4096, 16384):
        assert tcp_buffer_max(memory_mb, 0) * 32 <= kernel_tcp_mem_max_bytes(memory_mb)


def test_file_limits_cover_two_fds_per_proxied_connection() -> None:
    limits = file_limits(5120, 10000)
    assert limits.haproxy >= 2 * 5120
    assert limits.redis >= 10000 + 32
    assert limits.login == max(limits.haproxy, limits.gunicorn, limits.postgres, limits.redis)


def test_file_limits_never_lower_what_debian_and_systemd_give() -> None:
    small = file_limits(128, 100)
    assert small.redis == 65535  # Debian's redis-server.service
    assert small.login_hard == 524288  # systemd's hard limit for login sessions
    assert file_limits(400_000, 100).login_hard == file_limits(400_000, 100).login > 524288


def test_profile_keys_are_modern_and_safe() -> None:
    profile, problems = size_kernel(5120, [5120, 2048, 511], 10000, {}, 4096)
    assert problems == []
    for s in profile.sysctls:
        assert modern_key(s.key) == (False, None)
        assert danger(s.key, s.value, 4096) is None
    assert profile.value("net.ipv4.tcp_syncookies") == "1"
    for absent in SEED_HARMFUL_KEYS:
        with pytest.raises(KeyError):
            profile.value(absent)


def test_profile_keys_exist_in_this_kernel() -> None:
    profile, _ = size_kernel(5120, [5120], 10000, {}, 4096)
    missing = [s.key for s in profile.sysctls if not Path("/proc/sys", *s.key.split(".")).exists()]
    assert missing == []
