"""`tunedstack bench`: the stock and the tuned box for the same plan, in turn, in the same VM
size and image; each profile against each; results.json, a plot, and tuned/stock ratios."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.bench.c10k import run_c10k
from components.bench.plot import plot
from components.bench.profiles import C10kProfile, SeedProfile
from components.bench.results import ProfileResult, ratios, write_results
from components.bench.seed_load import run_seed
from components.rehearsal.checks import http_json
from components.rehearsal.rehearse import Rehearsal
from components.rehearsal.vm import Vm
from components.settings import load_stack_file

MODES = ("stock", "tuned")
Log = Callable[[str], None]


class ConnectionSampler:
    """Established connections on the guest's port 80, sampled every 2 s over one SSH session."""

    def __init__(self, vm: Vm) -> None:
        script = "while true; do ss -Htn state established '( sport = :80 )' | wc -l; sleep 2; done"
        self.process = subprocess.Popen(
            [*vm.ssh_base(), script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
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


@dataclass
class BenchRun:
    results: list[ProfileResult] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        lines = []
        for profile in sorted({r.profile for r in self.results}):
            pair = {r.mode: r for r in self.results if r.profile == profile}
            lines.append(f"\n== {profile}")
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
                            )
                        )
                    )
            if len(pair) == 2:
                ratio = ratios(pair["tuned"], pair["stock"])
                lines.append(
                    "  tuned/stock "
                    + "  ".join(f"{k} {'n/a' if v is None else v}" for k, v in ratio.items())
                )
        return "\n".join(lines)


def bench(
    root: Path,
    stack: str,
    seed: SeedProfile | None,
    c10k: C10kProfile | None,
    out: Path,
    log: Log = print,
) -> BenchRun:
    out.mkdir(parents=True, exist_ok=True)
    base = load_stack_file(root / "stacks", stack)
    run = BenchRun(
        meta={
            "stack": stack,
            "plan": base.plan,
            "host": platform.node(),
            "host_cpus": os.cpu_count(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seed_profile": asdict(seed) if seed else None,
            "c10k_profile": asdict(c10k) if c10k else None,
        }
    )
    for mode in MODES:
        settings = base.model_copy(update={"tuning": mode})
        rehearsal = Rehearsal(root, stack, log=log, override=settings)
        image, accel, reason, folder = rehearsal.prepare()
        run.meta["accelerator"], run.meta["accelerator_reason"] = accel, reason
        vm: Vm | None = None
        try:
            rendered = rehearsal.render(settings, rehearsal.sizing)
            vm = rehearsal.boot(
                image, accel, folder, 1, rehearsal.document(rendered), rehearsal.new_volume(folder)
            )
            run.meta[f"{mode}_vm"] = {"memory_mb": vm.memory_mb, "vcpus": vm.vcpus}
            status, body = http_json(f"http://127.0.0.1:{vm.http_port}/healthz")
            if status != 200:
                raise RuntimeError(f"the {mode} box is not healthy: {status} {body}")
            if seed is not None:
                log(f"{mode}: seed scenario, {seed.clients} clients over {seed.ramp_s:.0f}s")
                sampler = ConnectionSampler(vm)
                result = run_seed(seed, f"http://127.0.0.1:{vm.http_port}", mode, out / "raw")
                result.peak_connections = sampler.stop()
                run.results.append(result)
            if c10k is not None:
                log(f"{mode}: C10K, {c10k.connections} connections")
                sampler = ConnectionSampler(vm)
                result = run_c10k(c10k, "127.0.0.1", vm.http_port, mode)
                result.peak_connections = sampler.stop()
                run.results.append(result)
        finally:
            if vm is not None:
                vm.stop()
            shutil.rmtree(folder, ignore_errors=True)
    write_results(out / "results.json", run.meta, run.results)
    plot(
        run.results,
        out / "bench.png",
        f"tunedstack bench: {stack} ({base.plan}), {run.meta['accelerator'].upper()}",
    )
    return run
