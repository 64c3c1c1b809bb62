"""`tunedstack bench --rig host`: the stock and the tuned box of a stack as processes on the
host's own cores (hostbox.py), each in turn, the load generator on the other cores in a private
network namespace of its own. No emulation between the load and the daemons: the figures are
what the rendered files do on real cores, with the kernel settings a network namespace can hold.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from components.model.render import Secrets, render_files
from components.model.settings import Settings
from components.model.sizing import size
from components.tools.bench.bench import MODES, ProfileRuns
from components.tools.bench.cgroup import box_cores, generator_cores
from components.tools.bench.hostbox import REPLACED_IN_BOX, HostBox, HostLink
from components.tools.bench.profiles import C10kProfile, SeedProfile, SweepProfile
from components.tools.bench.results import ProfileResult
from components.tools.progress import Progress
from components.tools.rehearsal.host import HostError, cache_root

CLONE_NEWNET = 0x40000000
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
    if os.geteuid() != 0:
        raise HostError("the host rig needs root (namespaces and a cgroup)")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise HostError(f"cannot create a network namespace: {os.strerror(ctypes.get_errno())}")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.sched_setaffinity(0, generator_cores(os.cpu_count() or 1))


def rig_folder(mode: str) -> Path:
    folder = cache_root() / "bench-host" / f"{os.getpid()}-{mode}"
    if str(folder).startswith(tuple(f"{d}/" for d in REPLACED_IN_BOX)):
        raise HostError(
            f"the host rig's folder {folder} is under a folder the box replaces "
            f"({', '.join(REPLACED_IN_BOX)}): set TUNEDSTACK_CACHE elsewhere"
        )
    return folder


def measure_host(
    root: Path,
    stack: str,
    base: Settings,
    seed: SeedProfile | None,
    c10k: C10kProfile | None,
    out: Path,
    progress: Progress,
    sweep: SweepProfile | None = None,
) -> tuple[list[ProfileResult], dict[str, Any]]:
    """Each mode in turn: start its box on the host's cores, run the profiles over the veth."""
    results: list[ProfileResult] = []
    meta: dict[str, Any] = host_rig_meta(os.cpu_count() or 1)
    runs = ProfileRuns.of(seed, c10k, sweep, None, out)
    cores = box_cores(os.cpu_count() or 1)
    for mode in MODES:
        settings = runs.settings_for(base, mode, progress, meta)
        sizing = size(settings)
        secrets = Secrets.generate()
        rendered = render_files(stack, settings, sizing, secrets, root)
        box = HostBox(rendered, sizing, rig_folder(mode), mode, cores, HOST_LINK)
        cpus = ",".join(str(c) for c in cores)
        with progress.step(
            f"{mode} box",
            f"the daemons on core {cpus}, {sizing.plan.memory_mb} MB",
            f"host bench {mode} box",
        ):
            box.start()
        try:
            sysctls = box.sysctls()
            meta[f"{mode}_box"] = {
                "cores": list(cores),
                "memory_limit_mb": sizing.plan.memory_mb,
                "sysctls": asdict(sysctls),
                "nofile": box.limits(),
            }
            runs.run(box, mode, secrets, progress, results, meta)
            meta[f"{mode}_box"]["peak_memory_mb"] = round(
                box.cgroup.peak_memory_bytes() / 1024 / 1024
            )
        finally:
            box.stop()
    return results, meta
