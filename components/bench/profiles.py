"""Load profiles, with the seed's scenario and C10K as defaults and a smoke size for CI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedProfile:
    """The seed: 4 testers each adding a client a second up to 1000; clients loop on /hits.

    The think time sets the offered load and so how many requests are in flight at the peak
    (the seed saw about 300): in flight ~= clients x response time / (response + think time).
    60 s offers 4000 / 60 ~= 67 requests/s at the peak, under what the emulated (TCG) guest
    serves, so the run measures connection handling rather than a CPU-starved guest; on real
    hardware or KVM a shorter think time (`--think-time`) gets the seed's 300 in flight.
    """

    testers: int = 4
    clients_per_tester: int = 1000
    spawn_per_tester_per_s: float = 1.0
    think_time_s: float = 60.0
    hold_s: float = 120.0
    path: str = "/hits"
    request_timeout_s: float = 30.0

    @property
    def clients(self) -> int:
        return self.testers * self.clients_per_tester

    @property
    def spawn_rate(self) -> float:
        return self.testers * self.spawn_per_tester_per_s

    @property
    def ramp_s(self) -> float:
        return self.clients / self.spawn_rate

    @property
    def duration_s(self) -> float:
        return self.ramp_s + self.hold_s


@dataclass(frozen=True)
class C10kProfile:
    """10,000 keep-alive connections held through HAProxy, each sending a request now and then,
    while a probe measures the health endpoint's latency on its own connection."""

    connections: int = 10_000
    open_per_s: float = 500.0
    # 10,000 / 60 s ~= 167 requests/s on a cheap endpoint: within an emulated guest's reach.
    request_interval_s: float = 60.0
    hold_s: float = 120.0
    path: str = "/"
    probe_path: str = "/healthz"
    probe_interval_s: float = 1.0
    request_timeout_s: float = 30.0


SMOKE_SEED = SeedProfile(
    testers=2, clients_per_tester=10, spawn_per_tester_per_s=2.0, think_time_s=1.0, hold_s=10.0
)
SMOKE_C10K = C10kProfile(connections=200, open_per_s=100.0, request_interval_s=2.0, hold_s=15.0)
