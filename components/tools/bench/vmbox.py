"""A booted VM as a box under load (the VM rig's): the load link's far end, SSH for its shell,
its guest's /proc/stat and its QEMU process for the CPU, systemd's journal for its jobs."""

from __future__ import annotations

import json
from dataclasses import dataclass

from components.tools.bench.cpu import CpuMeter
from components.tools.bench.underload import GuestJob
from components.tools.rehearsal.vm import Vm

# Units every SSH login starts: the sampler's and this record's own sessions.
LOGIN_UNITS = ("session-", "user@", "user-runtime-dir@")


def guest_jobs(journal_json: str, since_us: int) -> list[GuestJob]:
    """The start jobs in systemd's journal (`journalctl _PID=1 -o json`), logins left out."""
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    for line in journal_json.splitlines():
        entry = json.loads(line)
        unit = entry.get("UNIT", "")
        if entry.get("JOB_TYPE") != "start" or not unit or unit.startswith(LOGIN_UNITS):
            continue
        at_s = round((int(entry["__REALTIME_TIMESTAMP"]) - since_us) / 1e6, 1)
        if "JOB_RESULT" in entry:
            finished[unit] = at_s
        else:
            started.setdefault(unit, at_s)
    return [GuestJob(unit, at_s, finished.get(unit)) for unit, at_s in started.items()]


class GuestJournal:
    """What systemd started on the guest from now until `jobs()`."""

    def __init__(self, vm: Vm) -> None:
        self.vm = vm
        self.since_us = int(vm.ssh("date +%s%6N", timeout=60).stdout.strip())

    def jobs(self) -> list[GuestJob]:
        journal = self.vm.ssh(
            f"journalctl _PID=1 -o json --no-pager --since=@{self.since_us / 1e6:.6f}",
            timeout=120,
        ).stdout
        return guest_jobs(journal, self.since_us)


@dataclass
class VmUnderLoad:
    vm: Vm
    target: str

    def shell_base(self) -> list[str]:
        return self.vm.ssh_base()

    def meter(self) -> CpuMeter:
        if self.vm.process is None:
            raise RuntimeError("the box's QEMU process is not running")
        return CpuMeter(self.vm.ssh_base(), self.vm.process.pid)

    def journal(self) -> GuestJournal:
        return GuestJournal(self.vm)
