"""The VM rig's load path, run small against a box the rehearsal already boots: the benchmark's
C10K client, its connection sampler over SSH, the guest's /proc/stat and QEMU's threads read
around the hold, systemd's journal. (The benchmark's own figures come from the host rig; this
keeps what `bench --rig vm` runs working, at no boot of its own.) The load goes through the
VM's forwarded port: the tap link needs a private network namespace, which only `bench` makes."""

from __future__ import annotations

from functools import partial

from components.tools.bench.c10k import run_c10k
from components.tools.bench.profiles import C10kProfile
from components.tools.bench.results import ProfileResult
from components.tools.bench.underload import BoxUnderLoad, metered, recorded_run
from components.tools.bench.vmbox import VmUnderLoad
from components.tools.rehearsal.checks import Check
from components.tools.rehearsal.vm import Vm

# Enough to see every part move: connections held while requests trickle, one hold window.
SMALL_LOAD = C10kProfile(connections=50, open_per_s=25.0, request_interval_s=5.0, hold_s=10.0)
FORWARDED = "127.0.0.1"


def small_load(box: BoxUnderLoad, port: int, profile: C10kProfile = SMALL_LOAD) -> ProfileResult:
    """C10K against the box as `bench` runs it: sampled, its hold metered, its jobs recorded."""
    load = partial(run_c10k, profile, box.target, port, "rehearsal", 0)
    return recorded_run(box, partial(metered, box, load))


def load_check(result: ProfileResult, profile: C10kProfile = SMALL_LOAD) -> Check:
    hold = result.extra.get("hold") or {}
    cpu = hold.get("cpu") or {}
    guest, vcpus = cpu.get("guest_busy_cores", 0.0), cpu.get("vcpu_thread_cores", 0.0)
    ok = (
        result.failed == 0
        and result.extra.get("all_held") is True
        and result.peak_connections >= profile.connections
        and guest > 0
        and vcpus > 0
    )
    return Check(
        "a small load over the benchmark's VM path: held, sampled, metered",
        ok,
        f"{result.requests} requests, {result.failed} failed, all held "
        f"{result.extra.get('all_held')}, peak {result.peak_connections} connections on the box, "
        + (f"guest {guest:.2f} cores, vCPU threads {vcpus:.2f}" if cpu else "hold not metered"),
        f"0 failed, all {profile.connections} held and seen on the box, both CPUs read",
    )


def small_load_check(vm: Vm) -> Check:
    return load_check(small_load(VmUnderLoad(vm, FORWARDED), vm.http_port))
