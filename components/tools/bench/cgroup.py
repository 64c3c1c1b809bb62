"""The host rig's box gets the plan's memory and a fixed set of the host's cores: one cgroup (v1
hierarchies: memory, cpuset, cpuacct), made for one box and removed with it. The load generator
stays outside it, on the other cores."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from components.tools.rehearsal.host import HostError

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpuset", "cpuacct")
PREFIX = "tunedstack-bench-"  # every group the rig makes; a test checks none is left
EMPTY_WAIT_S = 30.0


def box_cores(host_cores: int) -> tuple[int, ...]:
    """The box gets half the host's cores (at least one), the last ones; the generator the
    rest. On a 2-core host: the box core 1, the generator core 0."""
    if host_cores < 2:
        raise HostError("the host rig needs at least 2 cores: one for the box, one for the load")
    count = host_cores // 2
    return tuple(range(host_cores - count, host_cores))


def generator_cores(host_cores: int) -> tuple[int, ...]:
    return tuple(c for c in range(host_cores) if c not in box_cores(host_cores))


@dataclass
class BoxCgroup:
    name: str
    memory_bytes: int
    cores: tuple[int, ...]
    root: Path = CGROUP_ROOT
    made: list[Path] = field(default_factory=list)

    def path(self, controller: str) -> Path:
        return self.root / controller / self.name

    def create(self) -> BoxCgroup:
        for controller in CONTROLLERS:
            if not (self.root / controller / "cgroup.procs").exists():
                raise HostError(
                    f"the host rig needs cgroup v1's {controller} hierarchy at "
                    f"{self.root / controller}"
                )
        for controller in CONTROLLERS:
            group = self.path(controller)
            group.mkdir()
            self.made.append(group)
        (self.path("memory") / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
        cpuset = self.path("cpuset")
        # A cpuset takes no task until it has memory nodes: the parent's.
        (cpuset / "cpuset.mems").write_text((self.root / "cpuset" / "cpuset.mems").read_text())
        (cpuset / "cpuset.cpus").write_text(",".join(str(c) for c in self.cores))
        return self

    def procs_files(self) -> list[Path]:
        return [self.path(c) / "cgroup.procs" for c in CONTROLLERS]

    def pids(self) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            if procs.exists():
                found.update(int(p) for p in procs.read_text().split())
        return sorted(found)

    def cpu_seconds(self) -> float:
        """CPU the box's processes used since the group was made."""
        return int((self.path("cpuacct") / "cpuacct.usage").read_text()) / 1e9

    def peak_memory_bytes(self) -> int:
        return int((self.path("memory") / "memory.max_usage_in_bytes").read_text())

    def remove(self) -> None:
        """Kill whatever is still in the group, wait for it to empty, remove it."""
        deadline = time.monotonic() + EMPTY_WAIT_S
        while self.pids():
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):  # it just exited
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise HostError(f"processes {self.pids()} did not leave cgroup {self.name}")
            time.sleep(0.1)
        for group in reversed(self.made):
            deadline = time.monotonic() + EMPTY_WAIT_S
            while group.exists():
                try:
                    group.rmdir()
                except OSError:  # EBUSY while the last task is still being torn down
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        self.made.clear()


def leftover_groups(root: Path = CGROUP_ROOT) -> list[Path]:
    return [
        group
        for controller in CONTROLLERS
        if (root / controller).is_dir()
        for group in (root / controller).glob(f"{PREFIX}*")
    ]
