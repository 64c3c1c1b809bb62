"""`tunedstack bench --rig host`: the stock and the tuned box of a stack as processes on the
host's own cores (hostbox.py), each in turn, the load generator on the other cores in a private
network namespace of its own. No emulation between the load and the daemons: the figures are
what the rendered files do on real cores, with the kernel settings a network namespace can hold.
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from components.model.layout import PATHS
from components.model.render import Secrets, render_files
from components.model.settings import Settings
from components.model.sizing import Sizing, size
from components.tools.bench.bench import (
    MODES,
    ProfileRuns,
    header_lines,
    run_suffix,
    sized_for_load,
)
from components.tools.bench.cgroup import box_cores, generator_cores
from components.tools.bench.hostbox import MEBIBYTE, REPLACED_IN_BOX, HostBox, HostLink
from components.tools.bench.profiles import C10kProfile, SeedProfile, SweepProfile
from components.tools.bench.raw import RawThroughput, concurrencies_for, raw_throughput
from components.tools.bench.results import ProfileResult
from components.tools.progress import Progress
from components.tools.rehearsal.host import HostError, cache_root
from components.tools.rehearsal.loadlink import enter_private_network

HOST_LINK = HostLink()


def host_rig_meta(host_cores: int) -> dict[str, Any]:
    return {
        "rig": "host",
        "box_cores": list(box_cores(host_cores)),
        "generator_cores": list(generator_cores(host_cores)),
        "load_path": f"veth {HOST_LINK.generator_ip} -> {HOST_LINK.box_ip}:80 between two "
        "private network namespaces",
    }


def enter_generator_side() -> None:
    """The calling process (and all it starts) in a new network namespace with only loopback,
    on the cores the box does not get."""
    enter_private_network(HOST_LINK)
    os.sched_setaffinity(0, generator_cores(os.cpu_count() or 1))


def rig_folder(mode: str) -> Path:
    folder = cache_root() / "bench-host" / f"{os.getpid()}-{mode}"
    if str(folder).startswith(tuple(f"{d}/" for d in REPLACED_IN_BOX)):
        raise HostError(
            f"the host rig's folder {folder} is under a folder the box replaces "
            f"({', '.join(REPLACED_IN_BOX)}): set TUNEDSTACK_CACHE elsewhere"
        )
    return folder


RAW_SECONDS = 5.0
CONNECTIONS_STEP = 500


def c10k_within_file_limit(
    base: Settings, seed: SeedProfile | None, c10k: C10kProfile, hard_limit: int
) -> C10kProfile:
    """C10K with as many connections as the tuned HAProxy, sized for them, can open under the
    rig's own file limit (HAProxy refuses to start below what its maxconn needs, and the rig
    cannot raise its hard limit without CAP_SYS_RESOURCE): all of them where the limit allows."""
    connections = c10k.connections
    while connections > CONNECTIONS_STEP:
        sized = size(sized_for_load(base, seed, replace(c10k, connections=connections)))
        if sized.kernel.file_limits.haproxy <= hard_limit:
            break
        connections -= CONNECTIONS_STEP
    return replace(c10k, connections=connections)


def measure_host(
    root: Path,
    stack: str,
    base: Settings,
    seed: SeedProfile | None,
    c10k: C10kProfile | None,
    out: Path,
    progress: Progress,
    sweep: SweepProfile | None = None,
    runs: int = 1,
) -> tuple[list[ProfileResult], dict[str, Any]]:
    """`runs` rounds of both modes in turn, a fresh box each time; the capacity measured once,
    on the first stock box, so every round offers the same; the seed (its ramp alone is long)
    in the first round only; the app's raw throughput on each tuned box before its profiles."""
    results: list[ProfileResult] = []
    meta: dict[str, Any] = {**host_rig_meta(os.cpu_count() or 1), "runs": runs}
    profile_runs = ProfileRuns.of(seed, c10k, sweep, None, out)
    cores = box_cores(os.cpu_count() or 1)
    boxes: list[dict[str, Any]] = []
    for run in range(1, runs + 1):
        profile_runs = replace(
            profile_runs,
            seed=seed if run == 1 else None,
            suffix=run_suffix(run, runs),
            remeasure=run > 1,
        )
        for mode in MODES:
            settings = profile_runs.settings_for(base, mode, progress, meta)
            sizing = size(settings)
            secrets = Secrets.generate()
            rendered = render_files(stack, settings, sizing, secrets, root)
            box = HostBox(rendered, sizing, rig_folder(mode), mode, cores, HOST_LINK)
            cpus = ",".join(str(c) for c in cores)
            with progress.step(
                f"{mode} box{run_suffix(run, runs)}",
                f"the daemons on core {cpus}, {sizing.plan.memory_mb} MB",
                f"host bench {mode} box",
            ):
                box.start()
            try:
                record: dict[str, Any] = {
                    "run": run,
                    "mode": mode,
                    "cores": list(cores),
                    "memory_limit_mb": sizing.plan.memory_mb,
                    "sysctls": asdict(box.sysctls()),
                    "nofile": box.limits(),
                }
                if mode == "tuned":
                    record["raw"] = asdict(raw_step(box, sizing, secrets, progress, run, runs))
                first = len(results)
                profile_runs.run(box, mode, secrets, progress, results, meta)
                for result in results[first:]:
                    result.extra["run"] = run
                record["peak_memory_mb"] = round(box.cgroup.peak_memory_bytes() / MEBIBYTE)
                boxes.append(record)
            finally:
                box.stop()
    meta["boxes"] = boxes
    return results, meta


def raw_step(
    box: HostBox, sizing: Sizing, secrets: Secrets, progress: Progress, run: int, runs: int
) -> RawThroughput:
    """The app alone on the tuned box: gunicorn on its Unix socket, no HAProxy."""
    concurrencies = concurrencies_for(sizing.gunicorn.concurrency)
    headers = header_lines(secrets)
    with progress.step(
        f"raw app{run_suffix(run, runs)}",
        f"gunicorn alone on its socket, {', '.join(map(str, concurrencies))} clients",
        expected_s=len(concurrencies) * (RAW_SECONDS + 1),
    ) as outcome:
        raw = raw_throughput(
            box.host_path(PATHS.app_socket), "/hits", headers, concurrencies, RAW_SECONDS
        )
        best = raw.best
        outcome.summary = f"{best.served_rps:.1f} req/s at {best.concurrency} clients"
    return raw
