"""What a sysctl override may be: a key the target kernel has, and a value of the kind it takes.

`sysctl --system` prints an unknown key or a bad value and goes on, so a typo would be recorded
as applied and never take; these rules refuse it at preview, and the box checks every key took.
"""

from __future__ import annotations

import difflib
import re
import sys
from functools import cache
from pathlib import Path

KERNEL_SYSCTLS = Path(__file__).with_name("kernel-sysctls.txt")
# The image whose kernel the list was taken from; other images are checked on the box only.
LISTED_IMAGE = "linode/debian12"
# An interface's keys hold its name; the list writes it as `*` (`all` and `default` are keys).
_INTERFACE = re.compile(r"^(net\.ipv[46]\.(?:conf|neigh)\.)(?!all\.|default\.)[^.]+\.")

# Keys whose value is one or more names the kernel looks up.
NAMES = frozenset(
    {
        "net.core.default_qdisc",
        "net.ipv4.tcp_congestion_control",
        "net.ipv4.tcp_allowed_congestion_control",
        "kernel.hostname",
        "kernel.domainname",
    }
)
# Keys whose value is a program the kernel runs as root (or a pattern naming one).
COMMANDS = frozenset({"kernel.core_pattern", "kernel.modprobe", "kernel.poweroff_cmd"})
# Integer keys that take negatives (-1: "no limit" or "allow all").
SIGNED = frozenset(
    {
        "kernel.perf_event_paranoid",
        "kernel.sched_rt_runtime_us",
        "kernel.panic",
        "kernel.perf_event_max_sample_rate",
        "net.ipv4.tcp_invalid_ratelimit",
    }
)
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_UNSIGNED = re.compile(r"\d{1,19}")
_INTEGER = re.compile(r"-?\d{1,19}")
# The most numbers one sysctl takes (ip_local_port_range 2, tcp_mem 3, sched_domain more).
MAX_FIELDS = 8


def interface_free(key: str) -> str:
    return _INTERFACE.sub(r"\1*.", key)


@cache
def kernel_keys() -> frozenset[str]:
    lines = KERNEL_SYSCTLS.read_text().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def key_problem(key: str, image: str) -> str | None:
    if image != LISTED_IMAGE or interface_free(key) in kernel_keys():
        return None
    close = difflib.get_close_matches(interface_free(key), sorted(kernel_keys()), n=1)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    return (
        f"the {LISTED_IMAGE} kernel has no such sysctl (`sysctl -aN` on the box lists them){hint}"
    )


def value_problem(key: str, value: str) -> str | None:
    """Why `value` is not a value the kernel takes for `key`, or None."""
    if key in COMMANDS:
        return None if value.isprintable() else "must be printable text"
    fields = value.split()
    if key in NAMES:
        if all(_NAME.fullmatch(f) for f in fields):
            return None
        return "must be a name such as `bbr` or `fq` (letters, digits, `_.-`)"
    pattern = _INTEGER if key in SIGNED else _UNSIGNED
    shaped = 1 <= len(fields) <= MAX_FIELDS and all(pattern.fullmatch(f) for f in fields)
    if shaped and all(abs(int(f)) < 2**63 for f in fields):
        return None
    kind = "whole numbers" if key in SIGNED else "whole numbers of 0 or more"
    return (
        f"must be {kind}, one or up to {MAX_FIELDS} separated by spaces "
        "(e.g. `65535` or `4096 87380 16777216`), nothing else on the line"
    )


def runs_a_program(key: str, value: str) -> bool:
    """The kernel would run something as root: a pipe core pattern, a modprobe, a poweroff."""
    if key == "kernel.core_pattern":
        return value.startswith("|")
    return key in COMMANDS


def main() -> None:
    """`sysctl -aN` on stdin: the list of keys, interface names as `*`, sorted."""
    keys = sorted({interface_free(k) for k in sys.stdin.read().split()})
    sys.stdout.write("".join(k + "\n" for k in keys))


if __name__ == "__main__":
    main()
