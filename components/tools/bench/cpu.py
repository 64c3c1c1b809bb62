"""Where the CPU went while a load ran: the guest's busy time (its own /proc/stat), and on the
host QEMU's vCPU threads, QEMU's other threads (device emulation and the packet path), the
load generator and the host as a whole. Under emulation the guest's vCPUs are host threads on
the same cores as the generator and QEMU's I/O, so a box that serves less as the load grows
may be starved on the host rather than busier inside; these readings tell the two apart."""

from __future__ import annotations

import contextlib
import math
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

USER_HZ = 100  # what /proc/stat and /proc/<pid>/stat count in, on every Linux architecture
IDLE, IOWAIT = 3, 4  # fields of /proc/stat's cpu line after the name
# QEMU names a vCPU thread "CPU <n>/<accel>" (one per vCPU, MTTCG or KVM) or "ALL CPUs/TCG"
# (one thread for all of them), when started with `-name ...,debug-threads=on`.
VCPU_THREAD = re.compile(r"(CPU \d+|ALL CPUs)/\w+")
# `head -1 /proc/stat` each time a line arrives: one SSH login for every reading of a run.
GUEST_READER = "while read -r _; do head -1 /proc/stat; done"


def busy_ticks(stat_text: str) -> int:
    """All CPUs' busy time in /proc/stat's first line: everything but idle and iowait."""
    cpu_line = stat_text.strip().splitlines()[0]
    name, *fields = cpu_line.split()
    if name != "cpu":
        raise ValueError(f"not /proc/stat's cpu line: {cpu_line!r}")
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return sum(ticks) - ticks[IDLE] - ticks[IOWAIT]


def _stat_fields(stat_text: str) -> tuple[str, list[str]]:
    """A /proc/<pid>/stat line's name and the fields after it (the name may hold spaces)."""
    opened, closed = stat_text.index("("), stat_text.rindex(")")
    return stat_text[opened + 1 : closed], stat_text[closed + 2 :].split()


def cpu_ticks(stat_text: str) -> int:
    """utime + stime of a /proc/<pid>/stat line (fields 14 and 15, counting the pid as 1)."""
    _, fields = _stat_fields(stat_text)
    return int(fields[11]) + int(fields[12])


@dataclass(frozen=True)
class QemuTicks:
    total: int  # the whole process, threads that have exited included
    vcpus: int  # its vCPU threads


def qemu_ticks(pid: int, proc: Path = Path("/proc")) -> QemuTicks:
    vcpus = 0
    for task in (proc / str(pid) / "task").iterdir():
        try:
            text = (task / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):  # a worker thread that just ended
            continue
        if VCPU_THREAD.fullmatch(_stat_fields(text)[0]):
            vcpus += cpu_ticks(text)
    return QemuTicks(cpu_ticks((proc / str(pid) / "stat").read_text()), vcpus)


@dataclass(frozen=True)
class CpuReading:
    at_s: float  # time.monotonic()
    guest_busy: int  # ticks, all the guest's vCPUs
    qemu: QemuTicks
    host_busy: int  # ticks, all the host's cores
    generator_s: float  # the load generator's own CPU (time.process_time())
    # Ticks of the box's processes by daemon (the host rig's, whose processes the host sees),
    # ended children included once waited for.
    daemons: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class WindowCpu:
    """CPU between two readings, in cores (1.0: one core busy the whole window)."""

    seconds: float
    guest_busy_cores: float  # what the guest counts as busy, on its vCPUs
    vcpu_thread_cores: float  # host CPU its vCPU threads got
    qemu_other_cores: float  # host CPU of QEMU's other threads
    generator_cores: float
    host_busy_cores: float
    daemon_cores: dict[str, float] = field(default_factory=dict)


def window_cpu(before: CpuReading, after: CpuReading) -> WindowCpu:
    seconds = after.at_s - before.at_s
    if seconds <= 0:
        raise ValueError(f"readings {before.at_s} and {after.at_s} span no time")

    def cores(ticks: int) -> float:
        return round(ticks / USER_HZ / seconds, 2)

    vcpus = after.qemu.vcpus - before.qemu.vcpus
    return WindowCpu(
        seconds=round(seconds, 2),
        guest_busy_cores=cores(after.guest_busy - before.guest_busy),
        vcpu_thread_cores=cores(vcpus),
        qemu_other_cores=cores(after.qemu.total - before.qemu.total - vcpus),
        generator_cores=round((after.generator_s - before.generator_s) / seconds, 2),
        host_busy_cores=cores(after.host_busy - before.host_busy),
        daemon_cores={
            name: cores(ticks - dict(before.daemons).get(name, 0)) for name, ticks in after.daemons
        },
    )


def guest_ms_per(cpu: WindowCpu | None, served_rps: float) -> float:
    """All the guest's CPU over what it served, in ms a request (sheds, logging and the kernel
    included); NaN for an unmetered window or one that served nothing."""
    if cpu is None or not served_rps:
        return math.nan
    return round(cpu.guest_busy_cores * 1000 / served_rps, 1)


class CpuMeter:
    """Readings of one booted box and its QEMU process, the guest's over one SSH session."""

    def __init__(self, ssh_base: list[str], qemu_pid: int, proc: Path = Path("/proc")) -> None:
        self.qemu_pid = qemu_pid
        self.proc = proc
        self.guest = subprocess.Popen(
            [*ssh_base, GUEST_READER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def read(self) -> CpuReading:
        assert self.guest.stdin is not None and self.guest.stdout is not None
        try:
            self.guest.stdin.write("\n")
            self.guest.stdin.flush()
            guest = self.guest.stdout.readline()
        except BrokenPipeError:
            guest = ""
        if not guest:
            raise RuntimeError(f"the guest's CPU reader ended (exit {self.guest.poll()})")
        return CpuReading(
            at_s=time.monotonic(),
            guest_busy=busy_ticks(guest),
            qemu=qemu_ticks(self.qemu_pid, self.proc),
            host_busy=busy_ticks((self.proc / "stat").read_text()),
            generator_s=time.process_time(),
        )

    def close(self) -> None:
        if self.guest.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.guest.stdin.close()
        try:
            self.guest.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.guest.kill()
            self.guest.wait(timeout=30)

    def __enter__(self) -> CpuMeter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# What a host box's process is, from its command line: the daemons the cost of a request is
# split between, and the box's syslog (HAProxy's log lines).
DAEMONS = (
    ("haproxy", "haproxy"),
    ("gunicorn", "app"),
    ("postgres", "postgresql"),
    ("redis-server", "redis"),
    ("/syslog", "syslog"),  # the sink hostbox.sh starts: `python3 - OUT/syslog`
)


def daemon_of(cmdline: str) -> str:
    for needle, name in DAEMONS:
        if needle in cmdline:
            return name
    return "other"


def cpu_ticks_with_children(stat_text: str) -> int:
    """utime + stime + cutime + cstime: a process's CPU and that of its children that ended
    and were waited for (a recycled gunicorn worker's goes to its master, a PostgreSQL
    backend's to the postmaster), so a window's figure does not drop when a process exits."""
    _, fields = _stat_fields(stat_text)
    return sum(int(f) for f in fields[11:15])


def daemon_ticks(pids: list[int], proc: Path = Path("/proc")) -> tuple[tuple[str, int], ...]:
    """CPU ticks of the given processes and their ended children, summed by daemon."""
    totals: dict[str, int] = {}
    for pid in pids:
        try:
            cmdline = (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ticks = cpu_ticks_with_children((proc / str(pid) / "stat").read_text())
        except (FileNotFoundError, ProcessLookupError):  # ended since the list was read
            continue
        name = daemon_of(cmdline)
        totals[name] = totals.get(name, 0) + ticks
    return tuple(sorted(totals.items()))
