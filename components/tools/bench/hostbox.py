"""The host rig's box: the rendered files of one stack and mode, served by the real Debian
daemons (PostgreSQL, Redis, gunicorn with the app, HAProxy) as processes of the rig, in private
mount, network and PID namespaces inside a cgroup with the plan's memory and a fixed set of the
host's cores (hostbox.sh does the inside). A veth link joins it to the generator's own private
network namespace; nothing is installed, and no setting of the host changes."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from components.model.layout import NAMES
from components.model.render import Rendered
from components.model.sizing import Sizing
from components.tools.bench.cgroup import PREFIX, BoxCgroup
from components.tools.bench.cpu import USER_HZ, CpuReading, QemuTicks, busy_ticks, daemon_ticks
from components.tools.bench.underload import NoJobs
from components.tools.rehearsal.checks import http_json
from components.tools.rehearsal.host import HostError
from components.tools.rehearsal.vm import dies_with_this_process

SCRIPT = Path(__file__).with_name("hostbox.sh")
# Only these reach the box: the daemons' files. The rest of the rendered set (SSH, apt, the
# apply and first-boot scripts, root's keys) belongs to a real machine's life, not to a load.
PLACED_UNDER = ("/etc/", "/opt/")
# Folders the box mounts its own over (hostbox.sh): the rig's folder must be elsewhere.
REPLACED_IN_BOX = (
    "/run",
    "/dev",
    "/etc",
    "/opt",
    "/var/lib/postgresql",
    "/var/lib/redis",
    "/var/lib/haproxy",
    "/var/log/postgresql",
    "/var/log/redis",
)
APP_USER = "nobody"  # the unit's DynamicUser: an unprivileged user that owns nothing
READY_WAIT_S = 120.0
MEBIBYTE = 1024 * 1024


@dataclass(frozen=True)
class HostLink:
    """The veth pair between the generator's namespace and the box's."""

    generator_nic: str = "tsrig0"
    box_nic: str = "eth1"
    generator_ip: str = "10.77.0.1"
    box_ip: str = "10.77.0.2"
    prefix: int = 24

    def setup_commands(self) -> list[list[str]]:
        """The generator's namespace needs only loopback: the box adds the veth when it starts."""
        return [["ip", "link", "set", "lo", "up"]]


@dataclass(frozen=True)
class SysctlRecord:
    """Which of the rendered sysctls the box ran with: a network namespace has its own copy of
    most `net.*` keys; the others would change the host's kernel, so the rig leaves them out."""

    in_force: dict[str, str]
    not_applied: dict[str, str]


def parse_sysctl_record(text: str) -> SysctlRecord:
    in_force: dict[str, str] = {}
    not_applied: dict[str, str] = {}
    for line in text.splitlines():
        kind, key, value = line.split(" ", 2)
        (in_force if kind == "in_force" else not_applied)[key] = value
    return SysctlRecord(in_force, not_applied)


def place_files(rendered: Rendered, files: Path) -> None:
    """The daemons' rendered files as a tree from /, with their modes and owners."""
    for f in rendered.files:
        if not f.path.startswith(PLACED_UNDER):
            continue
        target = files / f.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.content)
        target.chmod(int(f.mode, 8))
        user, group = f.owner.split(":")
        os.chown(target, pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)


class HostCpuMeter:
    """Readings for a sweep's steps and C10K's hold: the box's CPU from its cgroup (in the
    place of a guest's /proc/stat; no QEMU threads here)."""

    def __init__(self, cgroup: BoxCgroup, proc: Path = Path("/proc")) -> None:
        self.cgroup = cgroup
        self.proc = proc

    def read(self) -> CpuReading:
        return CpuReading(
            at_s=time.monotonic(),
            guest_busy=round(self.cgroup.cpu_seconds() * USER_HZ),
            qemu=QemuTicks(0, 0),
            host_busy=busy_ticks((self.proc / "stat").read_text()),
            generator_s=time.process_time(),
            daemons=daemon_ticks(self.cgroup.pids(), self.proc),
        )

    def close(self) -> None:
        """Nothing to close: the readings are files of the cgroup."""


class HostBox:
    """One box; `start()` returns once it answers its health check over the link."""

    def __init__(
        self,
        rendered: Rendered,
        sizing: Sizing,
        folder: Path,
        mode: str,
        cores: tuple[int, ...],
        link: HostLink = HostLink(),
        health_path: str = "/healthz",
    ) -> None:
        self.rendered = rendered
        self.sizing = sizing
        self.folder = folder
        self.link = link
        self.health_path = health_path
        self.cgroup = BoxCgroup(
            f"{PREFIX}{os.getpid()}-{mode}", sizing.plan.memory_mb * MEBIBYTE, cores
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return self.link.box_ip

    @property
    def out(self) -> Path:
        return self.folder / "out"

    def start(self) -> HostBox:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        place_files(self.rendered, self.folder / "files")
        self.cgroup.create()
        procs = [str(p) for p in self.cgroup.procs_files()]
        # The shell joins the cgroup, then becomes unshare: every process of the box is born
        # inside it. unshare's child is PID 1 of the box: when unshare dies (it dies with this
        # process), the kernel kills the whole box.
        command = [
            "sh",
            "-c",
            'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1"; shift; n=$((n - 1)); done; '
            'exec "$@"',
            "sh",
            str(len(procs)),
            *procs,
            "unshare",
            "--mount",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "bash",
            str(SCRIPT),
            str(self.folder),
            str(self.sizing.postgres.version),
            self.link.box_nic,
            f"{self.link.box_ip}/{self.link.prefix}",
            APP_USER,
            NAMES.db_user,
            NAMES.db_name,
        ]
        log = (self.folder / "box.log").open("wb")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=dies_with_this_process(),
        )
        self._link()
        self._wait_healthy()

    def _box_netns(self) -> str:
        assert self.process is not None
        ours = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                theirs = os.readlink(f"/proc/{self.process.pid}/ns/net")
            except FileNotFoundError:
                theirs = ours
            if theirs != ours:
                return str(self.process.pid)
            time.sleep(0.05)
        raise HostError("the host rig's box never entered its own network namespace")

    def _link(self) -> None:
        pid = self._box_netns()
        link = self.link
        veth = ["ip", "link", "add", link.generator_nic, "type", "veth", "peer", "name"]
        for command in (
            [*veth, link.box_nic, "netns", pid],
            ["ip", "addr", "add", f"{link.generator_ip}/{link.prefix}", "dev", link.generator_nic],
            ["ip", "link", "set", link.generator_nic, "up"],
        ):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise HostError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise HostError(
                f"the host rig's box exited ({self.process.returncode}) while starting:\n"
                + self.logs()
            )

    def _wait_healthy(self) -> None:
        url = f"http://{self.target}{self.health_path}"
        deadline = time.monotonic() + READY_WAIT_S
        body: object = "no answer"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                status, body = http_json(url)
                if status == 200:
                    return
            except (OSError, ValueError) as e:  # not up yet, or HAProxy's own 503 page
                body = str(e)
            time.sleep(0.5)
        raise HostError(f"the host rig's box did not answer {url} with 200: {body}\n" + self.logs())

    def logs(self) -> str:
        """The tail of each log of the box, for an error message."""
        parts = []
        for log in [self.folder / "box.log", *sorted(self.out.glob("*.log"))]:
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-20:]
                parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def sysctls(self) -> SysctlRecord:
        return parse_sysctl_record((self.out / "sysctls").read_text())

    def host_path(self, box_path: str) -> Path:
        """Where a file under the box's /run is on the host (the app's Unix socket, say)."""
        if not box_path.startswith("/run/"):
            raise ValueError(f"{box_path}: only the box's /run is mapped")
        return self.folder / "state" / "empty_run" / box_path.removeprefix("/run/")

    def limits(self) -> dict[str, dict[str, str]]:
        """Each daemon's open-file limit: what its unit asks, what it got (soft:hard)."""
        limits = {}
        for line in (self.out / "limits").read_text().splitlines():
            daemon, asked, got = line.split()
            limits[daemon] = {"unit": asked, "in_force": got}
        return limits

    def shell_base(self) -> list[str]:
        """A command line that runs its last argument, a shell script, inside the box."""
        assert self.process is not None
        return ["nsenter", "-t", str(self.process.pid), "--net", "--mount", "bash", "-c"]

    def meter(self) -> HostCpuMeter:
        return HostCpuMeter(self.cgroup)

    def journal(self) -> NoJobs:
        return NoJobs()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        # The kernel removes the box's namespace, and the veth pair with it, some time after its
        # last process: removed now, so the next box can make its own.
        subprocess.run(
            ["ip", "link", "del", self.link.generator_nic], capture_output=True, check=False
        )
        self.cgroup.remove()
        shutil.rmtree(self.folder, ignore_errors=True)
