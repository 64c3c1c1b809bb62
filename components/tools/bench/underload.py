"""What a profile run needs of a box, on either rig: where to send the load, a shell on the
box (the connection count), its CPU readings and the jobs it started meanwhile."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from components.tools.bench.cpu import CpuReading
from components.tools.bench.results import ProfileResult


@dataclass(frozen=True)
class GuestJob:
    """A unit systemd started on the guest while a profile ran, seconds from the profile's
    start by the guest's clock: on an emulated guest a timer's job stalls the load for seconds,
    so a stall is either one of these or the box's own services (or the host)."""

    unit: str
    started_s: float
    finished_s: float | None  # None: still running when the profile ended


class CpuReader(Protocol):
    def read(self) -> CpuReading: ...

    def close(self) -> None: ...


class JobRecord(Protocol):
    def jobs(self) -> Sequence[GuestJob]: ...


class NoJobs:
    """A box with no systemd (the host rig's): no timer can start a job during a load."""

    def jobs(self) -> list[GuestJob]:
        return []


class BoxUnderLoad(Protocol):
    @property
    def target(self) -> str: ...

    def shell_base(self) -> list[str]: ...

    def meter(self) -> CpuReader: ...

    def journal(self) -> JobRecord: ...


class ConnectionSampler:
    """Established connections on the box's port 80, sampled every 2 s by one shell on the box
    (over SSH on a VM, nsenter on the host rig)."""

    def __init__(self, shell_base: list[str]) -> None:
        script = "while true; do ss -Htn state established '( sport = :80 )' | wc -l; sleep 2; done"
        self.process = subprocess.Popen(
            [*shell_base, script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.peak = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip().isdigit():
                self.peak = max(self.peak, int(line))

    def stop(self) -> int:
        self.process.terminate()
        self.process.wait(timeout=30)
        return self.peak


def metered(
    box: BoxUnderLoad, load: Callable[[Callable[[], CpuReading]], ProfileResult]
) -> ProfileResult:
    """A profile run whose windows (a sweep's steps, C10K's hold) read the box's CPU and, on the
    VM rig, its QEMU process's on the host."""
    meter = box.meter()
    try:
        return load(meter.read)
    finally:
        meter.close()


def recorded_run(box: BoxUnderLoad, load: Callable[[], ProfileResult]) -> ProfileResult:
    """A load against the box, with the box's peak connections sampled meanwhile and the jobs
    it started on record."""
    journal = box.journal()
    sampler = ConnectionSampler(box.shell_base())
    result = load()
    result.peak_connections = sampler.stop()
    result.extra["guest_jobs"] = [asdict(job) for job in journal.jobs()]
    return result
