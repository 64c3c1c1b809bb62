"""A CPU meter for the load clients' tests: readings of a guest 1.5 cores busy whose vCPU
threads get 1 core of the host, at whatever moments the client reads it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from components.tools.bench.cpu import USER_HZ, CpuReading, QemuTicks

GUEST_BUSY_CORES = 1.5
VCPU_THREAD_CORES = 1.0


@dataclass
class StandInMeter:
    readings: list[float] = field(default_factory=list)  # when each reading was taken

    def read(self) -> CpuReading:
        now = time.monotonic()
        self.readings.append(now)
        vcpus = round(now * USER_HZ * VCPU_THREAD_CORES)
        guest = round(now * USER_HZ * GUEST_BUSY_CORES)
        return CpuReading(now, guest, QemuTicks(vcpus * 2, vcpus), 0, 0.0)
