"""The benchmark harness: its steps, sizing, results and summary. The smoke run end to end is
on the host rig (test_host_rig.py); the VM rig's load path runs against a box the rehearsal
boots. The full run (`tunedstack bench`) is not part of CI."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from components.model.project import PACKAGE_ROOT
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.tools.bench.bench import (
    bench_steps,
    capacity_measured,
    hold_line,
    result_line,
    served_capacity,
    sized_for_load,
    sweep_step_lines,
    told_the_measured_capacity,
)
from components.tools.bench.plot import plot
from components.tools.bench.profiles import (
    SMOKE_C10K,
    SMOKE_RESTARTS,
    SMOKE_SEED,
    SMOKE_SWEEP,
    C10kProfile,
    SeedProfile,
    SweepProfile,
)
from components.tools.bench.results import ProfileResult, Series
from components.tools.bench.underload import GuestJob
from components.tools.bench.vmbox import guest_jobs
from components.tools.rehearsal.rehearse import PREPARE_STEPS


def test_the_tuned_box_is_sized_for_the_largest_profile() -> None:
    staging = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    assert staging.workload.peak_connections == 4000
    both = sized_for_load(staging, SeedProfile(), C10kProfile())
    assert both.workload.peak_connections == 10_001  # C10K and its probe
    assert sized_for_load(staging, SeedProfile(), None).workload.peak_connections == 4000
    # Never below what the stack already says; nothing else changes.
    small = sized_for_load(staging, SMOKE_SEED, SMOKE_C10K)
    assert small == staging


def test_the_tuned_box_is_told_the_response_time_its_measured_capacity_means() -> None:
    staging = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    assert size(staging).gunicorn.concurrency == 5
    told = told_the_measured_capacity(staging, 30.4)
    # 5 workers busy serve 30.4 req/s: each request takes 5 / 30.4 s.
    assert told.workload.typical_response_ms == 165
    sized = size(told)
    assert sized.capacity_rps == 30
    # A quarter second of work at the measured rate, not at the declared 100 req/s (25).
    assert sized.haproxy.maxqueue == 8
    assert told.model_copy(update={"workload": staging.workload}) == staging
    # A box slower than any response time a stack may declare is told the slowest one.
    assert told_the_measured_capacity(staging, 0.01).workload.typical_response_ms == 60_000


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_request_from_the_back_of_a_full_queue_is_served_within_the_objective(
    stack: str,
) -> None:
    """The queue limit is what keeps served requests fast under overload: the last request in
    waits for every one queued and in service ahead of it, at the box's capacity."""
    sized = size(load_stack_file(PACKAGE_ROOT / "stacks", stack))
    h = sized.haproxy
    in_box = h.maxqueue + h.server_maxconn
    assert in_box * 1000 / sized.capacity_rps <= SweepProfile().objective_ms


def test_the_steps_follow_the_profiles_chosen() -> None:
    assert bench_steps(SMOKE_SEED, SMOKE_C10K) == (
        *PREPARE_STEPS,
        "stock box",
        "capacity",
        "stock seed",
        "stock C10K",
        "tuned box",
        "tuned seed",
        "tuned C10K",
        "results",
    )
    assert bench_steps(None, SMOKE_C10K)[3:] == (
        "stock box",
        "stock C10K",
        "tuned box",
        "tuned C10K",
        "results",
    )


def test_the_sweep_measures_capacity_once_on_the_first_box() -> None:
    assert bench_steps(None, None, SMOKE_SWEEP)[3:] == (
        "stock box",
        "capacity",
        "stock sweep",
        "tuned box",
        "tuned sweep",
        "results",
    )
    given = replace(SMOKE_SWEEP, capacity_rps=100.0)
    assert "capacity" not in bench_steps(None, None, given)


def test_the_restarts_profile_comes_last_on_each_box() -> None:
    # It restarts the app between its windows: nothing else runs after it on that box.
    steps = bench_steps(None, None, SMOKE_SWEEP, SMOKE_RESTARTS)
    assert steps[3:] == (
        "stock box",
        "capacity",
        "stock sweep",
        "stock restarts",
        "tuned box",
        "tuned sweep",
        "tuned restarts",
        "results",
    )


def test_the_restarts_step_ends_with_its_cost_not_latencies() -> None:
    result = ProfileResult(
        "restarts",
        "tuned",
        14601,
        {},
        math.nan,
        math.nan,
        math.nan,
        0,
        0.0,
        False,
        317.0,
        Series(),
        {"restart_cost_requests": 97.2, "restart_cpu_s": 2.55},
    )
    line = result_line(result)
    assert (
        line == "14601 requests; a worker restart costs 97.2 requests' work (2.55 s of guest CPU)"
    )


def test_capacity_is_measured_on_the_fresh_box_before_other_profiles() -> None:
    steps = bench_steps(SMOKE_SEED, SMOKE_C10K, SMOKE_SWEEP)
    assert steps[3:6] == ("stock box", "capacity", "stock seed")
    assert steps.index("stock sweep") > steps.index("stock C10K")


def test_a_box_that_serves_nothing_gives_no_capacity_to_sweep_from() -> None:
    assert served_capacity(30.4, "stock", SMOKE_SWEEP) == 30.4
    refused = r"stock box served 0\.0 requests/s on /hits.*--capacity"
    with pytest.raises(RuntimeError, match=refused):
        served_capacity(0.0, "stock", SMOKE_SWEEP)


def test_a_sweep_result_plots_against_the_offered_rate(tmp_path: Path) -> None:
    series = Series(t_s=[50.0, 200.0], rps=[50.0, 90.0], p50_ms=[10.0, 20.0])
    series.p95_ms, series.p99_ms = [20.0, 40.0], [30.0, 90.0]
    series.errors_per_s, series.load = [0.0, 110.0], [50.0, 95.0]
    results = [
        ProfileResult(
            "sweep",
            mode,
            1000,
            {},
            10.0,
            20.0,
            30.0,
            0,
            5.0,
            False,
            60.0,
            series,
            {"objective_ms": 500.0},
        )
        for mode in ("stock", "tuned")
    ]
    plot(results, tmp_path / "bench.png", "sweep")
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _entry(at_us: int, message: str, **fields: str) -> str:
    return json.dumps({"__REALTIME_TIMESTAMP": str(at_us), "MESSAGE": message, **fields})


def test_the_jobs_systemd_started_during_a_profile_are_named_with_their_times() -> None:
    # journalctl _PID=1 -o json, trimmed to the fields read (systemd 252, Debian 12).
    start = {"JOB_TYPE": "start"}
    journal = "\n".join(
        [
            _entry(1_000_000_000, "Starting man-db.service...", UNIT="man-db.service", **start),
            _entry(1_000_500_000, "Started session-7.scope", UNIT="session-7.scope", **start),
            _entry(1_001_000_000, "Reached target timers.target."),
            _entry(
                1_004_250_000,
                "Finished man-db.service.",
                UNIT="man-db.service",
                JOB_RESULT="done",
                **start,
            ),
            _entry(
                1_009_000_000, "Starting logrotate.service...", UNIT="logrotate.service", **start
            ),
        ]
    )
    assert guest_jobs(journal, since_us=900_000_000) == [
        GuestJob("man-db.service", 100.0, 104.2),
        GuestJob("logrotate.service", 109.0, None),
    ]
    assert guest_jobs("", since_us=0) == []


def test_a_metered_sweep_step_says_where_the_cpu_went() -> None:
    step = {
        "multiplier": 2.0,
        "offered_rps": 149.6,
        "served_rps": 43.5,
        "goodput_rps": 12.7,
        "p99_ms": 860.2,
        "shed": 3183,
        "cpu": {
            "guest_busy_cores": 1.96,
            "vcpu_thread_cores": 1.52,
            "qemu_other_cores": 0.31,
            "generator_cores": 0.12,
            "host_busy_cores": 1.99,
        },
        "guest_cpu_ms_per_served": 45.1,
    }
    result = ProfileResult(
        "sweep", "tuned", 1, {}, 1.0, 1.0, 1.0, 0, 1.0, False, 1.0, Series(), {"steps": [step]}
    )
    (line,) = sweep_step_lines(result)
    assert line.startswith("2x: offered 149.6, served 43.5, goodput 12.7 req/s, p99 860 ms")
    assert "guest 1.96 cores (45.1 ms a served request)" in line
    assert "vCPU threads 1.52, QEMU's other threads 0.31, generator 0.12, all 1.99" in line
    unmetered = replace(result, extra={"steps": [{**step, "cpu": None}]})
    assert sweep_step_lines(unmetered) == [line.split(";")[0]]


def test_a_metered_c10k_hold_says_where_the_cpu_went() -> None:
    extra = {
        "hold": {
            "started_s": 100.0,
            "cpu": {
                "seconds": 120.0,
                "guest_busy_cores": 1.98,
                "vcpu_thread_cores": 1.8,
                "qemu_other_cores": 0.1,
                "generator_cores": 0.08,
                "host_busy_cores": 1.99,
            },
            "offered_rps": 181.8,
            "served_rps": 92.5,
            "shed_rps": 88.1,
        },
        "hold_guest_cpu_ms_per_served": 21.4,
    }
    result = ProfileResult(
        "c10k", "tuned", 1, {}, 1.0, 1.0, 1.0, 0, 1.0, False, 1.0, Series(), extra
    )
    (line,) = hold_line(result)
    assert line.startswith("hold from 100 s: offered 181.8, served 92.5, shed 88.1 req/s; ")
    assert "guest 1.98 cores (21.4 ms a served request)" in line
    assert "vCPU threads 1.80, QEMU's other threads 0.10, generator 0.08, all 1.99" in line
    assert hold_line(replace(result, extra={})) == []


def test_the_seed_offers_half_the_measured_capacity_at_its_peak() -> None:
    at = SeedProfile().at_capacity(40.0)
    assert at.clients / at.think_time_s == pytest.approx(20.0, rel=0.01)
    assert at.load_fraction is None  # fixed from here on: both boxes get the same load
    fixed = replace(SeedProfile(), think_time_s=180.0, load_fraction=None)
    assert fixed.at_capacity(40.0) == fixed


def test_a_seed_with_its_think_time_fixed_measures_no_capacity() -> None:
    fixed = replace(SMOKE_SEED, load_fraction=None)
    assert "capacity" not in bench_steps(fixed, SMOKE_C10K)
    assert bench_steps(SMOKE_SEED, None)[3:6] == ("stock box", "capacity", "stock seed")
    assert capacity_measured(None, replace(SMOKE_SWEEP, capacity_rps=30.0)) is False
