"""The CPU readings behind the sweep's per-step figures: /proc parsing on a made-up tree and on
this machine's own, the window arithmetic, and a meter reading a real process whose thread is
named as QEMU names a vCPU."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path

import pytest

from components.tools.bench.cpu import (
    USER_HZ,
    CpuMeter,
    CpuReading,
    QemuTicks,
    busy_ticks,
    cpu_ticks,
    daemon_of,
    daemon_ticks,
    qemu_ticks,
    window_cpu,
)

PR_SET_NAME = 15  # prctl(2): the calling thread's name


def _stat(pid: int, name: str, utime: int, stime: int) -> str:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    return f"{pid} ({name}) S 1 1 1 0 -1 4194560 10 0 0 0 {utime} {stime} 0 0 20 0 3 0 5\n"


def _fake_qemu(proc: Path, pid: int, threads: dict[int, tuple[str, int, int]]) -> None:
    (proc / str(pid)).mkdir(parents=True)
    total = sum(u + s for _, u, s in threads.values()) + 40  # 40: threads that have ended
    (proc / str(pid) / "stat").write_text(_stat(pid, "qemu-system-x86", total, 0))
    for tid, (name, utime, stime) in threads.items():
        (proc / str(pid) / "task" / str(tid)).mkdir(parents=True)
        (proc / str(pid) / "task" / str(tid) / "stat").write_text(_stat(tid, name, utime, stime))


def test_a_threads_cpu_is_its_user_and_system_time_whatever_its_name_holds() -> None:
    assert cpu_ticks(_stat(7, "CPU 1/TCG", 120, 30)) == 150
    assert cpu_ticks(_stat(7, "a) b (c", 1, 2)) == 3


def test_qemus_vcpu_threads_are_told_apart_from_its_others(tmp_path: Path) -> None:
    _fake_qemu(
        tmp_path,
        100,
        {
            100: ("qemu-system-x86", 50, 25),  # the main loop: device emulation, the network
            101: ("CPU 0/TCG", 300, 10),
            102: ("CPU 1/TCG", 200, 20),
            103: ("worker", 5, 5),
        },
    )
    ticks = qemu_ticks(100, tmp_path)
    assert ticks.vcpus == 310 + 220
    assert ticks.total == 75 + 530 + 10 + 40


def test_one_thread_for_all_vcpus_counts_as_the_vcpus(tmp_path: Path) -> None:
    _fake_qemu(tmp_path, 9, {9: ("qemu-system-x86", 1, 0), 10: ("ALL CPUs/TCG", 70, 0)})
    assert qemu_ticks(9, tmp_path).vcpus == 70


def test_busy_is_proc_stat_without_idle_and_iowait() -> None:
    assert busy_ticks("cpu  100 5 50 9000 40 3 7 2 0 0\ncpu0 1 1 1 1 1 1 1 1\n") == 167
    with pytest.raises(ValueError, match="cpu line"):
        busy_ticks("cpu0 1 2 3 4 5 6 7 8\n")


def test_a_window_is_in_cores() -> None:
    before = CpuReading(10.0, 1000, QemuTicks(5000, 4000), 9000, 1.0)
    after = CpuReading(20.0, 2800, QemuTicks(7500, 5800), 11900, 3.5)
    cpu = window_cpu(before, after)
    assert cpu.seconds == 10.0
    assert cpu.guest_busy_cores == 1.8  # 1800 ticks in 10 s
    assert cpu.vcpu_thread_cores == 1.8
    assert cpu.qemu_other_cores == 0.7  # 2500 - 1800
    assert cpu.host_busy_cores == 2.9
    assert cpu.generator_cores == 0.25
    with pytest.raises(ValueError, match="no time"):
        window_cpu(after, after)


def test_the_meter_reads_a_real_processs_vcpu_thread(tmp_path: Path) -> None:
    """This process stands in for QEMU: one thread named like a vCPU spins for 0.3 s of CPU. The
    "guest" is this machine, read by the same loop the meter runs over SSH."""
    spun = threading.Event()

    def vcpu() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl(PR_SET_NAME, b"CPU 0/TCG", 0, 0, 0) == 0, os.strerror(ctypes.get_errno())
        while time.thread_time() < 0.3:
            pass
        spun.set()
        time.sleep(5)  # alive (and named) while the meter reads it

    with CpuMeter(["bash", "-c"], os.getpid()) as meter:
        before = meter.read()
        threading.Thread(target=vcpu, daemon=True).start()
        assert spun.wait(timeout=30)
        after = meter.read()
    vcpus = after.qemu.vcpus - before.qemu.vcpus
    assert vcpus >= 0.3 * USER_HZ - 2
    assert after.qemu.total - before.qemu.total >= vcpus
    assert after.host_busy - before.host_busy >= vcpus - 2
    assert after.guest_busy >= before.guest_busy > 0
    assert after.generator_s - before.generator_s >= 0.28


def test_a_meter_whose_guest_reader_ended_says_so() -> None:
    with (
        CpuMeter(["bash", "-c", "exit 3", "--"], os.getpid()) as meter,
        pytest.raises(RuntimeError, match="reader ended"),
    ):
        meter.read()


def test_a_host_box_s_cpu_is_split_by_daemon(tmp_path: Path) -> None:
    def process(pid: int, cmdline: str, utime: int, stime: int, children: int = 0) -> None:
        folder = tmp_path / str(pid)
        folder.mkdir()
        (folder / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")
        fields = ["S"] + ["0"] * 10 + [str(utime), str(stime), str(children), "0"] + ["0"] * 30
        (folder / "stat").write_text(f"{pid} (x) " + " ".join(fields))

    process(10, "haproxy -W -db -f /etc/haproxy/haproxy.cfg", 30, 10)
    # The master: its recycled workers' CPU (cutime) counts with it.
    process(11, "/opt/tunedstack/venv/bin/python -m gunicorn --config g.py", 20, 0, 100)
    process(12, "/opt/tunedstack/venv/bin/python -m gunicorn --config g.py", 50, 10)
    process(13, "postgres: 15/main: app app 127.0.0.1(5000) idle", 7, 3)
    process(14, "python3 - /cache/bench-host/1-tuned/out/syslog", 2, 0)
    process(15, "/usr/bin/redis-server 127.0.0.1:6379", 4, 1)
    ticks = dict(daemon_ticks([10, 11, 12, 13, 14, 15, 99], tmp_path))  # 99: already gone
    assert ticks == {"haproxy": 40, "app": 180, "postgresql": 10, "syslog": 2, "redis": 5}
    assert daemon_of("bash hostbox.sh /cache/bench-host/1-tuned 15 eth1") == "other"
    before = CpuReading(0.0, 0, QemuTicks(0, 0), 0, 0.0, (("app", 100), ("haproxy", 40)))
    after = CpuReading(2.0, 300, QemuTicks(0, 0), 400, 0.5, (("app", 280), ("haproxy", 90)))
    assert window_cpu(before, after).daemon_cores == {"app": 0.9, "haproxy": 0.25}
