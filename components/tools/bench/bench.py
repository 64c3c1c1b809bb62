"""`tunedstack bench`: the stock and the tuned box for the same plan, in turn, in the same VM
size and image; each profile against each; results.json, a plot, and tuned/stock ratios."""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from multiprocessing.queues import Queue
from pathlib import Path
from queue import Empty
from typing import Any

from components.model.render import Secrets
from components.model.settings import MAX_TYPICAL_RESPONSE_MS, Settings, load_stack_file
from components.model.sizing import size
from components.tools.bench.c10k import run_c10k
from components.tools.bench.plot import plot
from components.tools.bench.profiles import (
    C10kProfile,
    RestartsProfile,
    SeedProfile,
    SweepProfile,
)
from components.tools.bench.restarts import run_restarts
from components.tools.bench.results import ProfileResult, ratios, write_results
from components.tools.bench.seed_load import run_seed
from components.tools.bench.spread import as_json, headline, targets
from components.tools.bench.sweep import capacity_of, run_sweep
from components.tools.bench.underload import BoxUnderLoad, metered, recorded_run
from components.tools.bench.vmbox import VmUnderLoad
from components.tools.progress import Progress, progress_for
from components.tools.rehearsal.checks import http_json
from components.tools.rehearsal.host import cache_root
from components.tools.rehearsal.image import BaseImage
from components.tools.rehearsal.loadlink import LoadLink, enter_private_network
from components.tools.rehearsal.rehearse import PREPARE_STEPS, Rehearsal, hits_headers, timings
from components.tools.rehearsal.vm import Accel, Vm, signal_when_parent_dies

MODES = ("stock", "tuned")
LOAD_LINK = LoadLink()


def bench_steps(
    seed: SeedProfile | None,
    c10k: C10kProfile | None,
    sweep: SweepProfile | None = None,
    restarts: RestartsProfile | None = None,
    rig: str = "vm",
    runs: int = 1,
) -> tuple[str, ...]:
    """The benchmark's steps in order: on the VM rig the rehearsal's preparation, then per run
    and mode its box and each profile run (the host rig's tuned box: the app's raw throughput
    first; the seed in the first run only), then the results."""
    per_mode = [
        (
            f"{mode} box{suffix}",
            # On the fresh box: after seed or C10K an overloaded box is still draining requests
            # its clients gave up on, and would measure far less than it serves.
            # The host rig measures it on each run's stock box (its spread is a figure too); the
            # steps stay those of the first.
            *(
                [f"capacity{suffix}"]
                if capacity_measured(seed, sweep, c10k) and mode == MODES[0]
                else []
            ),
            *([f"raw app{suffix}"] if rig == "host" and mode == "tuned" else []),
            *([f"{mode} seed{suffix}"] if seed and run == 1 else []),
            *([f"{mode} C10K{suffix}"] if c10k else []),
            *([f"{mode} sweep{suffix}"] if sweep else []),
            *([f"{mode} restarts{suffix}"] if restarts else []),
        )
        for run in range(1, runs + 1)
        for suffix in [run_suffix(run, runs)]
        for mode in MODES
    ]
    prepare = PREPARE_STEPS if rig == "vm" else ()
    return (*prepare, *(step for steps in per_mode for step in steps), "results")


@dataclass
class BenchRun:
    results: list[ProfileResult] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    figure: Path | None = None  # the plot, when a profile has series to draw

    def summary(self) -> str:
        lines = []
        runs = sorted({int(r.extra.get("run", 1)) for r in self.results})
        for profile in sorted({r.profile for r in self.results}):
            for run in runs:
                lines.extend(self._profile_lines(profile, run, len(runs)))
        if self.meta.get("rig") == "host":
            lines.extend(spread_lines(self.results, self.meta))
        return "\n".join(lines)

    def _profile_lines(self, profile: str, run: int, runs: int) -> list[str]:
        lines: list[str] = []
        pair = {
            r.mode: r
            for r in self.results
            if r.profile == profile and int(r.extra.get("run", 1)) == run
        }
        if not pair:
            return lines
        lines.append(f"\n== {profile}" + (f", run {run}" if runs > 1 else ""))
        for mode in MODES:
            if mode in pair:
                r = pair[mode]
                kinds = ", ".join(f"{k} {n}" for k, n in r.failures.items() if n) or "none"
                lines.append(
                    f"  {mode:<5} requests {r.requests:>7}  failed {r.failed:>6} ({kinds})  "
                    f"p50/p95/p99 {r.p50_ms:.0f}/{r.p95_ms:.0f}/{r.p99_ms:.0f} ms  "
                    f"peak conns {r.peak_connections}  generator CPU "
                    f"{r.generator_cpu_percent:.0f}%"
                    + (" (SATURATED)" if r.generator_saturated else "")
                    + "".join(
                        f"  {k} {v}"
                        for k, v in r.extra.items()
                        if k
                        in (
                            "failures_began_at_clients",
                            "all_held",
                            "held_min_during_hold",
                            "probe_p99_ms",
                            "restart_cost_requests",
                            "restart_cpu_s",
                        )
                    )
                )
                lines.extend(f"        {line}" for line in (*sweep_step_lines(r), *hold_line(r)))
                jobs = r.extra.get("guest_jobs") or []
                if jobs:
                    lines.append(
                        "        the guest started "
                        + ", ".join(f"{j['unit']} at {j['started_s']:.0f} s" for j in jobs)
                    )
        if len(pair) == 2:
            ratio = ratios(pair["tuned"], pair["stock"])
            lines.append(
                "  tuned/stock "
                + "  ".join(f"{k} {'n/a' if v is None else v}" for k, v in ratio.items())
            )
        return lines


def spread_lines(results: list[ProfileResult], meta: dict[str, Any]) -> list[str]:
    """The runs read together: medians (min-max), then each target, met or not."""
    lines = [f"\n== medians of {meta.get('runs', 1)} runs (min-max)"]
    for profile, modes in headline(results, meta).items():
        for mode, figures in modes.items():
            lines.append(
                f"  {profile} {mode}: "
                + ", ".join(f"{name} {spread.text()}" for name, spread in figures.items())
            )
    lines.append("\n== targets (met only if every run meets it)")
    for target in targets(results, meta):
        verdict = {True: "MET", False: "MISSED", None: "not run"}[target.met]
        lines.append(f"  {verdict:<7} {target.name}: {target.measured}")
    return lines


def sweep_step_lines(result: ProfileResult) -> list[str]:
    """A sweep's steps, one line each, with where the CPU went when the box was metered."""
    lines = []
    for step in result.extra.get("steps", []) if result.profile == "sweep" else []:
        line = (
            f"{step['multiplier']:g}x: offered {step['offered_rps']:.1f}, served "
            f"{step['served_rps']:.1f}, goodput {step['goodput_rps']:.1f} req/s, p99 "
            f"{step['p99_ms']:.0f} ms, shed {step['shed']}"
        )
        if step.get("not_sent"):
            line += f", not sent {step['not_sent']} (the generator's connection limit)"
        cpu = step.get("cpu")
        if cpu:
            line += "; " + cpu_text(cpu, step["guest_cpu_ms_per_served"])
        lines.append(line)
    return lines


def hold_line(result: ProfileResult) -> list[str]:
    """C10K's hold in one line, with where the CPU went when the box was metered."""
    hold = result.extra.get("hold")
    if not hold:
        return []
    return [
        f"hold from {hold['started_s']:.0f} s: offered {hold['offered_rps']:.1f}, served "
        f"{hold['served_rps']:.1f}, shed {hold['shed_rps']:.1f} req/s; "
        + cpu_text(hold["cpu"], result.extra["hold_guest_cpu_ms_per_served"])
    ]


def cpu_text(cpu: dict[str, Any], guest_ms_per_served: float) -> str:
    """A metered window's CPU (cpu.WindowCpu as stored), in cores. A host rig's box has no QEMU
    threads (both 0): its line names the box's cgroup instead."""
    if cpu["vcpu_thread_cores"] == 0 and cpu["qemu_other_cores"] == 0:
        text = (
            f"box {cpu['guest_busy_cores']:.2f} cores ({guest_ms_per_served:.1f} ms a served "
            f"request), generator {cpu['generator_cores']:.2f}, host {cpu['host_busy_cores']:.2f}"
        )
        daemons = cpu.get("daemon_cores") or {}
        if daemons and cpu["guest_busy_cores"] and not math.isnan(guest_ms_per_served):
            # Each daemon's share of the box's CPU, in ms of a served request.
            per_core = guest_ms_per_served / cpu["guest_busy_cores"]
            text += "; a served request: " + ", ".join(
                f"{name} {cores * per_core:.2f} ms" for name, cores in sorted(daemons.items())
            )
        return text
    return (
        f"guest {cpu['guest_busy_cores']:.2f} cores ({guest_ms_per_served:.1f} ms a served "
        f"request), host: vCPU threads {cpu['vcpu_thread_cores']:.2f}, QEMU's other threads "
        f"{cpu['qemu_other_cores']:.2f}, generator {cpu['generator_cores']:.2f}, "
        f"all {cpu['host_busy_cores']:.2f}"
    )


def result_line(result: ProfileResult) -> str:
    """A profile run in one line, as its step ends (the full table comes at the end)."""
    if "restart_cost_requests" in result.extra:  # closed loop, no latencies: its one figure
        return (
            f"{result.requests} requests; a worker restart costs "
            f"{result.extra['restart_cost_requests']:g} requests' work "
            f"({result.extra['restart_cpu_s']:g} s of guest CPU)"
        )
    return (
        f"{result.requests} requests, {result.failed} failed, "
        f"p50/p99 {result.p50_ms:.0f}/{result.p99_ms:.0f} ms"
    )


def header_lines(secrets: Secrets) -> str:
    """The sample app's write token as raw HTTP header lines, for the asyncio clients."""
    return "".join(f"{k}: {v}\r\n" for k, v in hits_headers(secrets).items())


def run_suffix(run: int, runs: int) -> str:
    """What tells a repeated step's runs apart ("tuned sweep 2/3"); nothing for a single run."""
    return "" if runs == 1 else f" {run}/{runs}"


def capacity_measured(
    seed: SeedProfile | None, sweep: SweepProfile | None, c10k: C10kProfile | None = None
) -> bool:
    """Whether the run measures the stock box's capacity first: the sweep steps from it unless
    given one, the seed's think time and C10K's request interval follow it unless fixed."""
    return bool(
        (sweep and sweep.capacity_rps is None)
        or (seed and seed.load_fraction is not None)
        or (c10k and c10k.load_fraction is not None)
    )


def sized_for_load(
    settings: Settings, seed: SeedProfile | None, c10k: C10kProfile | None
) -> Settings:
    """The stack told about the benchmark's peak, as its owner would before such traffic:
    `workload.peakConnections` raised to the largest profile's connections (C10K's probe
    included). The stock box ignores it; the tuned box sizes HAProxy and the kernel from it."""
    peak = max(
        [settings.workload.peak_connections]
        + ([seed.clients] if seed else [])
        + ([c10k.connections + 1] if c10k else [])
    )
    workload = settings.workload.model_copy(update={"peak_connections": peak})
    return settings.model_copy(update={"workload": workload})


def told_the_measured_capacity(settings: Settings, capacity_rps: float) -> Settings:
    """The stack told the app's response time this box measured, as its owner would declare
    theirs: with every worker busy a request takes concurrency / capacity. The queue limit is
    that many seconds of work (`queueWaitMs`), so sized from a response time the guest does not
    have it would hold several times the wait it is meant to (staging's 50 ms is a real
    g6-standard-2's, not an emulated guest's)."""
    concurrency = size(settings).gunicorn.concurrency
    ms = min(MAX_TYPICAL_RESPONSE_MS, math.ceil(concurrency * 1000 / capacity_rps))
    workload = settings.workload.model_copy(update={"typical_response_ms": ms})
    return settings.model_copy(update={"workload": workload})


def _profile_step(
    progress: Progress,
    name: str,
    detail: str,
    expected_s: float,
    box: BoxUnderLoad,
    load: Callable[[], ProfileResult],
    results: list[ProfileResult],
) -> None:
    """One profile run against one box, as a step; the box's connections sampled meanwhile."""
    with progress.step(name, detail, expected_s=expected_s) as outcome:
        result = recorded_run(box, load)
        results.append(result)
        outcome.summary = result_line(result)


@dataclass
class ProfileRuns:
    """The profiles of one run, and what the first box measured for the others."""

    seed: SeedProfile | None
    c10k: C10kProfile | None
    sweep: SweepProfile | None
    restarts: RestartsProfile | None
    out: Path
    capacity: float | None = None
    suffix: str = ""  # after each step's name: which run of several (run_suffix)
    remeasure: bool = False  # measure the capacity again on this run's first box (its spread)

    @classmethod
    def of(
        cls,
        seed: SeedProfile | None,
        c10k: C10kProfile | None,
        sweep: SweepProfile | None,
        restarts: RestartsProfile | None,
        out: Path,
    ) -> ProfileRuns:
        capacity = sweep.capacity_rps if sweep else None
        return cls(seed, c10k, sweep, restarts, out, capacity)

    def settings_for(
        self, base: Settings, mode: str, progress: Progress, meta: dict[str, Any]
    ) -> Settings:
        """The mode's settings; a box after the first told the capacity the first measured."""
        settings = base.model_copy(update={"tuning": mode})
        if mode != MODES[0] and self.capacity is not None:
            settings = told_the_measured_capacity(settings, self.capacity)
            ms = settings.workload.typical_response_ms
            progress.note(
                f"sizing the {mode} box for a {ms} ms response time, from "
                f"{self.capacity:.1f} req/s (the stack says {base.workload.typical_response_ms} "
                "ms)"
            )
            meta[f"{mode}_typical_response_ms"] = ms
        return settings

    def run(
        self,
        box: BoxUnderLoad,
        mode: str,
        secrets: Secrets,
        progress: Progress,
        results: list[ProfileResult],
        meta: dict[str, Any],
        vm: Vm | None = None,
    ) -> None:
        """Each profile against this box, in the order `bench_steps` names them."""
        target = box.target
        headers = header_lines(secrets)
        seed, c10k, sweep, restarts = self.seed, self.c10k, self.sweep, self.restarts
        first_box = self.capacity is None
        again = self.remeasure and mode == MODES[0]
        if capacity_measured(seed, sweep, c10k) and (first_box or again):
            probe = sweep or SweepProfile()
            with progress.step(
                f"capacity{self.suffix}",
                f"{probe.capacity_clients} clients back to back on {probe.path}",
            ) as measured:
                rps = served_capacity(capacity_of(target, 80, probe, headers), mode, probe)
                measured.summary = f"{rps:.1f} req/s, on the {mode} box"
            meta.setdefault("capacity_runs_rps", []).append(round(rps, 1))
            if first_box:
                self.capacity = rps
                meta["sweep_capacity_rps"] = round(rps, 1)
                meta["sweep_capacity_measured_on"] = mode
        capacity = self.capacity
        if seed is not None and capacity is not None:
            seed = seed.at_capacity(capacity)
            meta["seed_think_time_s"] = round(seed.think_time_s, 3)
            meta["seed_offered_at_peak_rps"] = round(seed.clients / seed.think_time_s, 1)
        if c10k is not None and capacity is not None:
            c10k = c10k.at_capacity(capacity)
            meta["c10k_request_interval_s"] = c10k.request_interval_s
            meta["c10k_offered_rps"] = round(c10k.connections / c10k.request_interval_s, 1)
        if seed is not None:
            _profile_step(
                progress,
                f"{mode} seed{self.suffix}",
                f"{seed.clients} clients, {seed.ramp_s:.0f} s ramp, {seed.hold_s:.0f} s hold, "
                f"{seed.think_time_s:.1f} s think time",
                seed.duration_s,
                box,
                partial(
                    run_seed,
                    seed,
                    f"http://{target}",
                    mode,
                    self.out / "raw",
                    hits_token=secrets.hits_token,
                ),
                results,
            )
        if c10k is not None:
            _profile_step(
                progress,
                f"{mode} C10K{self.suffix}",
                f"{c10k.connections} connections, {c10k.hold_s:.0f} s hold",
                c10k.duration_s,
                box,
                partial(metered, box, partial(run_c10k, c10k, target, 80, mode, 0)),
                results,
            )
        if sweep is not None and capacity is not None:
            _profile_step(
                progress,
                f"{mode} sweep{self.suffix}",
                f"{len(sweep.multipliers)} steps of {sweep.step_s:.0f} s, "
                f"{sweep.multipliers[0]:g}x to {sweep.multipliers[-1]:g}x {capacity:.0f} req/s",
                sweep.duration_s,
                box,
                partial(
                    metered, box, partial(run_sweep, sweep, target, 80, mode, capacity, headers)
                ),
                results,
            )
        if restarts is not None:
            if vm is None:
                raise RuntimeError("the restarts profile runs on the VM rig only")
            # Last: it restarts the app between windows (and puts its config back).
            _profile_step(
                progress,
                f"{mode} restarts{self.suffix}",
                f"{restarts.rounds} x 2 windows of {restarts.window_s:.0f} s, recycling off "
                f"and every {restarts.forced_max_requests} requests",
                restarts.duration_s,
                box,
                partial(run_restarts, restarts, vm, target, 80, mode, headers),
                results,
            )


def measure(
    root: Path,
    stack: str,
    base: Settings,
    image: BaseImage,
    accel: Accel,
    seed: SeedProfile | None,
    c10k: C10kProfile | None,
    out: Path,
    progress: Progress,
    sweep: SweepProfile | None = None,
    restarts: RestartsProfile | None = None,
) -> tuple[list[ProfileResult], dict[str, Any]]:
    """Each mode in turn: boot its box with the load link, run the profiles over the link."""
    results: list[ProfileResult] = []
    vms: dict[str, Any] = {}
    runs = ProfileRuns.of(seed, c10k, sweep, restarts, out)
    target = LOAD_LINK.guest_ip
    for mode in MODES:
        settings = runs.settings_for(base, mode, progress, vms)
        rehearsal = Rehearsal(root, stack, progress=progress, override=settings)
        folder = rehearsal.run_folder()
        vm: Vm | None = None
        try:
            with progress.step(
                f"{mode} box", "first boot and rollout", f"{accel} bench {mode} box"
            ):
                rendered = rehearsal.render(settings, rehearsal.sizing)
                document = rehearsal.document()
                volume = rehearsal.new_volume(folder)
                vm = rehearsal.boot(image, accel, folder, 1, document, volume, rendered, LOAD_LINK)
                vms[f"{mode}_vm"] = {"memory_mb": vm.memory_mb, "vcpus": vm.vcpus}
                status, body = http_json(f"http://{target}/healthz")
                if status != 200:
                    raise RuntimeError(f"the {mode} box is not healthy over the load link: {body}")
            runs.run(VmUnderLoad(vm, target), mode, rehearsal.secrets, progress, results, vms, vm)
        finally:
            if vm is not None:
                vm.stop()
            shutil.rmtree(folder, ignore_errors=True)
    return results, vms


MIN_CAPACITY_RPS = 1.0


def served_capacity(rps: float, mode: str, sweep: SweepProfile) -> float:
    """The measured capacity, or an error: steps offered at a fraction of nothing measure
    nothing, and a box that serves under one request a second is broken, not slow."""
    if rps < MIN_CAPACITY_RPS:
        raise RuntimeError(
            f"the {mode} box served {rps:.1f} requests/s on {sweep.path} to "
            f"{sweep.capacity_clients} clients over {sweep.capacity_s:.0f} s (at least "
            f"{MIN_CAPACITY_RPS:.0f} needed to step a sweep or pace the seed from): see its "
            "serial log and journal, or give a rate with --capacity"
        )
    return rps


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through `measure`, which stops its VM


def _measure_in_private_network(
    queue: Queue[Any],
    parent: int,
    enter: Callable[[], None],
    measure_rig: Callable[..., tuple[list[ProfileResult], dict[str, Any]]],
    *args: Any,
) -> None:
    """The child process: its own network namespace (`enter`), then the rig's measure. A
    parent killed outright sends it SIGTERM, which stops its boxes on the way out."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal_when_parent_dies(signal.SIGTERM, parent)
    try:
        enter()
        queue.put(("ok", measure_rig(*args)))
    except BaseException:  # the parent reports it; a child must not die silently
        queue.put(("error", traceback.format_exc()))


def _in_child(
    enter: Callable[[], None],
    measure_rig: Callable[..., tuple[list[ProfileResult], dict[str, Any]]],
    args: tuple[Any, ...],
) -> tuple[list[ProfileResult], dict[str, Any]]:
    # fork, not spawn: the child is this process's single thread, so unshare() moves all of it.
    context = multiprocessing.get_context("fork")
    queue: Queue[Any] = context.Queue()
    child = context.Process(
        target=_measure_in_private_network, args=(queue, os.getpid(), enter, measure_rig, *args)
    )
    child.start()
    try:
        while True:
            try:
                outcome, payload = queue.get(timeout=5)
                break
            except Empty:
                if not child.is_alive():
                    raise RuntimeError(
                        f"the benchmark process died (exit {child.exitcode})"
                    ) from None
    finally:
        # The child still flushes its queue after the put: give it time to exit by itself.
        child.join(timeout=60)
        if child.is_alive():
            child.terminate()  # SIGTERM: the child stops its boxes on the way out
            child.join(timeout=120)
    if outcome != "ok":
        raise RuntimeError(f"the benchmark failed:\n{payload}")
    results, meta = payload
    return results, meta


RIGS = ("vm", "host")


def bench(
    root: Path,
    stack: str,
    seed: SeedProfile | None,
    c10k: C10kProfile | None,
    out: Path,
    progress: Progress | None = None,
    sweep: SweepProfile | None = None,
    restarts: RestartsProfile | None = None,
    rig: str = "vm",
    runs: int = 1,
) -> BenchRun:
    if rig not in RIGS:
        raise ValueError(f"rig {rig!r}: expected one of {', '.join(RIGS)}")
    if runs < 1 or (rig == "vm" and runs != 1):
        raise ValueError(f"runs {runs}: the host rig repeats 1 or more; the VM rig runs once")
    if rig == "host" and restarts is not None:
        raise ValueError("the restarts profile runs on the VM rig only (it restarts systemd units)")
    out.mkdir(parents=True, exist_ok=True)
    stack_settings = load_stack_file(root / "stacks", stack)
    asked_connections = c10k.connections if c10k else None
    if rig == "host" and c10k is not None:
        # host_rig builds on this module's profile runs: imported here, not at the top.
        from components.tools.bench.host_rig import c10k_within_file_limit

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        c10k = c10k_within_file_limit(stack_settings, seed, c10k, hard)
    base = sized_for_load(stack_settings, seed, c10k)
    shown = progress or progress_for(
        bench_steps(seed, c10k, sweep, restarts, rig, runs), timings(cache_root())
    )
    if c10k is not None and c10k.connections != asked_connections:
        shown.note(
            f"C10K with {c10k.connections} connections, not {asked_connections}: the tuned "
            f"HAProxy sized for more needs more open files than this rig's hard limit "
            f"({resource.getrlimit(resource.RLIMIT_NOFILE)[1]}), which takes CAP_SYS_RESOURCE "
            "to raise"
        )
    if base.workload.peak_connections != stack_settings.workload.peak_connections:
        shown.note(
            f"sizing the tuned box for {base.workload.peak_connections} peak connections "
            f"(the stack says {stack_settings.workload.peak_connections})"
        )
    run = BenchRun(
        meta={
            "stack": stack,
            "plan": base.plan,
            "host": platform.node(),
            "host_cpus": os.cpu_count(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seed_profile": asdict(seed) if seed else None,
            "c10k_profile": asdict(c10k) if c10k else None,
            "sweep_profile": asdict(sweep) if sweep else None,
            "restarts_profile": asdict(restarts) if restarts else None,
            "peak_connections_sized_for": base.workload.peak_connections,
            "c10k_connections_asked": asked_connections,
        }
    )
    if rig == "host":
        # host_rig builds on this module's profile runs: imported here, not at the top.
        from components.tools.bench.host_rig import enter_generator_side, measure_host

        results, meta = _in_child(
            enter_generator_side,
            measure_host,
            (root, stack, base, seed, c10k, out, shown, sweep, runs),
        )
    else:
        run.meta["rig"] = "vm"
        run.meta["load_path"] = (
            f"tap link {LOAD_LINK.host_ip} -> {LOAD_LINK.guest_ip}:80 in a private network "
            "namespace"
        )
        # Host packages, the image and the KVM probe first: the private namespace has no way out.
        image, accel, reason, folder = Rehearsal(root, stack, progress=shown).prepare()
        shutil.rmtree(folder, ignore_errors=True)
        run.meta["accelerator"], run.meta["accelerator_reason"] = accel, reason
        results, meta = _in_child(
            partial(enter_private_network, LOAD_LINK),
            measure,
            (root, stack, base, image, accel, seed, c10k, out, shown, sweep, restarts),
        )
    run.results.extend(results)
    run.meta.update(meta)
    with shown.step("results", f"{out / 'results.json'} and {out / 'bench.png'}"):
        read_together = as_json(headline(run.results, run.meta), targets(run.results, run.meta))
        write_results(out / "results.json", run.meta, run.results, read_together)
        figure = out / "bench.png"
        if plot(
            run.results,
            figure,
            f"tunedstack bench: {stack} ({base.plan}), "
            + (run.meta["accelerator"].upper() if rig == "vm" else "host rig"),
        ):
            run.figure = figure
    return run
