"""The host rig: the benchmark's boxes as real daemons on this machine's cores, in private
namespaces and a cgroup. The smoke run here is the default suite's benchmark (the VM rig's load
path is covered against a box the rehearsal boots); around it, proof that the host is left as it
was: its sysctls, interfaces, mounts, cgroups and processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.model.project import PACKAGE_ROOT
from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.tools.bench.bench import MODES, bench, bench_steps, cpu_text, sized_for_load
from components.tools.bench.cgroup import box_cores, generator_cores, leftover_groups
from components.tools.bench.host_rig import c10k_within_file_limit, rig_folder
from components.tools.bench.hostbox import PLACED_UNDER, parse_sysctl_record, place_files
from components.tools.bench.profiles import (
    HOST_C10K,
    SMOKE_C10K,
    SMOKE_RESTARTS,
    SMOKE_SEED,
    SMOKE_SWEEP,
)
from components.tools.rehearsal.host import HostError

needs_rig = pytest.mark.skipif(
    os.geteuid() != 0
    or (os.cpu_count() or 1) < 2
    or not Path("/sys/fs/cgroup/cpuset/cgroup.procs").exists()
    or shutil.which("haproxy") is None,
    reason="the host rig needs root, 2 cores, cgroup v1 and the Debian daemons (bin/test)",
)

# Values the kernel changes by itself (counters, pressure), not settings.
VOLATILE = (
    "fs/dentry-state",
    "fs/file-nr",
    "fs/inode-nr",
    "fs/inode-state",
    "fs/quota/",
    "fs/binfmt_misc/",
    "net/netfilter/nf_conntrack_count",
    "vm/stat_refresh",
    "vm/drop_caches",
    "vm/compact_memory",
)


def host_sysctls() -> dict[str, str]:
    """Every readable setting under /proc/sys/{net,vm,fs}, as this (the host's) namespace sees
    it."""
    values = {}
    for top in ("net", "vm", "fs"):
        for path in Path("/proc/sys", top).rglob("*"):
            key = str(path.relative_to("/proc/sys"))
            if path.is_dir() or key.startswith(VOLATILE):
                continue
            try:
                values[key] = path.read_text()
            except OSError:  # write-only, or refused to read
                continue
    return values


def _run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@dataclass
class HostState:
    sysctls: dict[str, str]
    links: str
    mounts: list[str]
    daemons: str
    cgroups: list[Path]
    netns: str

    @classmethod
    def read(cls) -> HostState:
        mounts = [
            " ".join(line.split()[4:]) for line in _run("cat", "/proc/self/mountinfo").splitlines()
        ]
        daemons = subprocess.run(
            ["pgrep", "-a", "haproxy|gunicorn|redis-server|postgres"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return cls(
            host_sysctls(),
            _run("ip", "-o", "link"),
            sorted(mounts),
            daemons,
            leftover_groups(),
            _run("ip", "netns", "list"),
        )


@dataclass
class SmokeRun:
    out: Path
    before: HostState
    after: HostState

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.out / "results.json").read_text())
        return data


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    out = tmp_path_factory.mktemp("bench-host")
    before = HostState.read()
    bench(PACKAGE_ROOT, "staging", SMOKE_SEED, SMOKE_C10K, out, sweep=SMOKE_SWEEP, rig="host")
    return SmokeRun(out, before, HostState.read())


@needs_rig
def test_host_smoke_writes_results_for_every_profile_and_mode(smoke: SmokeRun) -> None:
    data = smoke.data
    meta = data["meta"]
    assert isinstance(meta, dict)
    assert meta["rig"] == "host"
    assert meta["box_cores"] == list(box_cores(os.cpu_count() or 1))
    assert meta["generator_cores"] == list(generator_cores(os.cpu_count() or 1))
    offered = meta["seed_offered_at_peak_rps"]
    assert offered == pytest.approx(0.5 * meta["sweep_capacity_rps"], rel=0.05)
    profiles = data["profiles"]
    assert isinstance(profiles, dict)
    for profile in ("seed", "c10k", "sweep"):
        for mode in MODES:
            result = profiles[profile][mode]
            assert result["requests"] > 0
            assert set(result["failures"]) == {"refused", "reset", "timeout", "http_5xx", "other"}
            assert result["peak_connections"] > 0
        assert "ratio_tuned_over_stock" in profiles[profile]
    assert (smoke.out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_rig
def test_the_tuned_box_runs_with_the_namespaced_sysctls_and_says_which_it_left_out(
    smoke: SmokeRun,
) -> None:
    meta = smoke.data["meta"]
    assert isinstance(meta, dict)
    boxes = {box["mode"]: box for box in meta["boxes"]}
    assert [box["run"] for box in meta["boxes"]] == [1, 1]
    tuned = boxes["tuned"]["sysctls"]
    assert tuned["in_force"]["net.core.somaxconn"] == "5120"
    assert "net.ipv4.tcp_max_syn_backlog" in tuned["in_force"]
    # Never the host's memory or file settings.
    assert {"vm.swappiness", "vm.overcommit_memory"} <= set(tuned["not_applied"])
    assert not any(key.startswith(("vm.", "fs.")) for key in tuned["in_force"])
    # Stock renders no sysctl file: the namespace's kernel defaults.
    assert boxes["stock"]["sysctls"] == {"in_force": {}, "not_applied": {}}
    # Each daemon's open-file limit, as its unit asks and as it ran.
    assert boxes["tuned"]["nofile"]["haproxy"]["unit"] == "11264"
    assert set(boxes["stock"]["nofile"]) == {"postgresql", "redis", "app", "haproxy"}
    assert 0 < boxes["tuned"]["peak_memory_mb"] <= boxes["tuned"]["memory_limit_mb"]


@needs_rig
def test_the_raw_app_and_the_targets_are_in_the_results(smoke: SmokeRun) -> None:
    data = smoke.data
    meta = data["meta"]
    assert isinstance(meta, dict)
    (tuned,) = [box for box in meta["boxes"] if box["mode"] == "tuned"]
    rates = tuned["raw"]["rates"]
    assert [r["concurrency"] for r in rates] == [5, 10, 20]  # staging's 5 workers
    assert max(r["served_rps"] for r in rates) > 0
    headline = data["headline"]
    assert isinstance(headline, dict)
    assert headline["box"]["tuned"]["raw_app_rps"]["median"] > 0
    assert "2x goodput_rps" in headline["sweep"]["tuned"]
    names = [t["name"] for t in data["targets"]]
    assert any(name.startswith("physical limit") for name in names)


@needs_rig
def test_the_tuned_box_drops_no_connection_at_smoke_size(smoke: SmokeRun) -> None:
    profiles = smoke.data["profiles"]
    assert isinstance(profiles, dict)
    # C10K's 200 connections offer 20 req/s, a few percent of any capacity: nothing fails.
    c10k = profiles["c10k"]["tuned"]
    assert c10k["failed"] == 0, c10k["failures"]
    assert c10k["extra"]["all_held"] is True
    assert c10k["extra"]["probe_requests"] > 0
    # The seed offers half the capacity measured on the stock box: a host slower by then may
    # make the tuned box shed some (a quick 503, by design); it never refuses, resets or
    # leaves a client waiting out its timeout.
    seed = profiles["seed"]["tuned"]["failures"]
    assert seed["refused"] == seed["reset"] == seed["timeout"] == seed["other"] == 0, seed
    for mode in MODES:  # metered from the box's cgroup
        hold = profiles["c10k"][mode]["extra"]["hold"]
        assert hold["cpu"]["guest_busy_cores"] > 0 and hold["cpu"]["vcpu_thread_cores"] == 0
        assert hold["served_rps"] > 0


@needs_rig
def test_the_host_rig_changes_nothing_on_the_host(smoke: SmokeRun) -> None:
    before, after = smoke.before, smoke.after
    changed = {
        key: (before.sysctls.get(key), after.sysctls.get(key))
        for key in before.sysctls.keys() | after.sysctls.keys()
        if before.sysctls.get(key) != after.sysctls.get(key)
    }
    assert changed == {}
    assert len(before.sysctls) > 100  # really read: net, vm and fs
    assert after.links == before.links
    assert after.mounts == before.mounts
    assert after.daemons == before.daemons
    assert after.cgroups == [] and before.cgroups == []
    assert after.netns == before.netns
    assert not any(rig_folder(mode).exists() for mode in MODES)


def test_the_box_gets_half_the_cores_and_the_generator_the_rest() -> None:
    assert box_cores(2) == (1,) and generator_cores(2) == (0,)
    assert box_cores(4) == (2, 3) and generator_cores(4) == (0, 1)
    with pytest.raises(HostError, match="at least 2 cores"):
        box_cores(1)


def test_the_sysctl_record_reads_back() -> None:
    record = parse_sysctl_record(
        "in_force net.core.somaxconn 5120\n"
        "in_force net.ipv4.tcp_rmem 4096 131072 8388608\n"
        "not_applied vm.swappiness 10\n"
    )
    assert record.in_force == {
        "net.core.somaxconn": "5120",
        "net.ipv4.tcp_rmem": "4096 131072 8388608",
    }
    assert record.not_applied == {"vm.swappiness": "10"}


@pytest.mark.skipif(os.geteuid() != 0, reason="owners need root")
def test_only_the_daemons_files_reach_the_box_with_their_modes_and_owners(tmp_path: Path) -> None:
    settings = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    rendered = render_files("staging", settings, size(settings), Secrets.generate())
    place_files(rendered, tmp_path)
    placed = {"/" + str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    expected = {f.path for f in rendered.files if f.path.startswith(PLACED_UNDER)}
    assert placed == expected
    assert "/etc/haproxy/haproxy.cfg" in placed and "/root/.ssh/authorized_keys" not in placed
    env = tmp_path / "etc/tunedstack/app.env"
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    redis = tmp_path / "etc/redis/redis.conf"
    assert redis.owner() == "redis" and redis.group() == "redis"


def test_the_rig_folder_stays_out_of_what_the_box_replaces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUNEDSTACK_CACHE", "/run/tunedstack-cache")
    with pytest.raises(HostError, match="TUNEDSTACK_CACHE"):
        rig_folder("tuned")
    monkeypatch.setenv("TUNEDSTACK_CACHE", "/var/cache/tunedstack")
    assert rig_folder("tuned").parent == Path("/var/cache/tunedstack/bench-host")


def test_the_host_rig_has_no_image_to_prepare_and_no_restarts(tmp_path: Path) -> None:
    assert bench_steps(SMOKE_SEED, None, rig="host") == (
        "stock box",
        "capacity",
        "stock seed",
        "tuned box",
        "raw app",
        "tuned seed",
        "results",
    )
    with pytest.raises(ValueError, match="VM rig only"):
        bench(PACKAGE_ROOT, "staging", None, None, tmp_path, restarts=SMOKE_RESTARTS, rig="host")


def test_a_host_box_window_names_its_cgroup_not_qemu() -> None:
    host = {
        "guest_busy_cores": 0.99,
        "vcpu_thread_cores": 0.0,
        "qemu_other_cores": 0.0,
        "generator_cores": 0.34,
        "host_busy_cores": 1.33,
    }
    assert cpu_text(host, 1.4) == (
        "box 0.99 cores (1.4 ms a served request), generator 0.34, host 1.33"
    )
    vm = {**host, "vcpu_thread_cores": 0.9, "qemu_other_cores": 0.2}
    assert "QEMU's other threads 0.20" in cpu_text(vm, 1.4)


def test_c10k_holds_as_many_connections_as_the_rigs_file_limit_lets_haproxy_open() -> None:
    staging = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    # 10,000 need a tuned HAProxy with 27,648 open files; 7,000 need 19,456.
    assert c10k_within_file_limit(staging, None, HOST_C10K, 20_000).connections == 7_000
    assert c10k_within_file_limit(staging, None, HOST_C10K, 1 << 20).connections == 10_000
    assert size(sized_for_load(staging, None, HOST_C10K)).kernel.file_limits.haproxy == 27_648
