"""One QEMU virtual machine standing in for the Linode: the plan's RAM, a root disk, the data
volume under Linode's by-id name, QEMU user networking forwarded to 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from components.tools.rehearsal.host import free_port
from components.tools.rehearsal.image import BaseImage
from components.tools.rehearsal.loadlink import LoadLink
from components.tools.rehearsal.seed import GUEST_MAC

Accel = Literal["kvm", "tcg"]
KERNEL_ARGS = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
KVM_PROBE_SECONDS = 30
# The name the pinned host key is filed under in known_hosts (the port changes every boot).
HOST_KEY_ALIAS = "tunedstack-box"


PR_SET_PDEATHSIG = 1


class VmError(RuntimeError):
    pass


def signal_when_parent_dies(sig: int, parent: int) -> None:
    """This process gets `sig` when the thread that started it dies, however it dies (SIGKILL
    included); it exits now if that already happened."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:
        os._exit(1)


def dies_with_this_process() -> Callable[[], None]:
    """A preexec_fn: the child gets SIGKILL when the thread that started it dies, so a killed
    `rehearse` or `bench` leaves no guest running."""
    parent = os.getpid()
    return lambda: signal_when_parent_dies(signal.SIGKILL, parent)


def kvm_works(image: BaseImage, work: Path) -> tuple[bool, str]:
    """Boot the image's kernel under KVM until its first panic (rdinit=/bin/true, -no-reboot).

    Some hosts expose /dev/kvm but crash guests ("failed to set MSR", "KVM internal error"):
    only a kernel that really runs to its panic and exits cleanly counts.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is not available"
    work.mkdir(parents=True, exist_ok=True)
    serial = work / "kvm-probe.serial"
    try:
        result = subprocess.run(
            [
                "qemu-system-x86_64",
                "-accel",
                "kvm",
                "-cpu",
                "host",
                "-m",
                "256",
                "-no-reboot",
                "-display",
                "none",
                "-nodefaults",
                "-serial",
                f"file:{serial}",
                "-kernel",
                str(image.kernel),
                "-initrd",
                str(image.initrd),
                "-append",
                "console=ttyS0 rdinit=/bin/true panic=-1",
            ],
            capture_output=True,
            text=True,
            timeout=KVM_PROBE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"a KVM guest did not finish a {KVM_PROBE_SECONDS}s probe boot"
    panicked = serial.is_file() and "Kernel panic" in serial.read_text(errors="replace")
    if result.returncode == 0 and panicked:
        return True, "KVM guest booted"
    reason = (result.stderr.strip().splitlines() or ["no output"])[0]
    return False, f"KVM guest failed: {reason}"


def accel_args(accel: Accel) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


@dataclass
class Vm:
    name: str
    image: BaseImage
    run_dir: Path
    root_disk: Path
    data_disk: Path
    seed_iso: Path
    memory_mb: int
    vcpus: int
    accel: Accel
    volume_label: str
    ssh_key: Path
    known_hosts: Path
    load_link: LoadLink | None = None
    http_port: int = field(default_factory=free_port)
    ssh_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def serial_log(self) -> Path:
        return self.run_dir / f"{self.name}.serial.log"

    def command(self) -> list[str]:
        forwards = (
            f"hostfwd=tcp:127.0.0.1:{self.http_port}-:80,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22"
        )
        return [
            "qemu-system-x86_64",
            # Threads named by their job ("CPU 0/TCG", ...): the benchmark reads the vCPUs' CPU.
            "-name",
            f"{self.name},debug-threads=on",
            *accel_args(self.accel),
            "-m",
            str(self.memory_mb),
            "-smp",
            str(self.vcpus),
            "-kernel",
            str(self.image.kernel),
            "-initrd",
            str(self.image.initrd),
            "-append",
            KERNEL_ARGS,
            "-drive",
            f"file={self.root_disk},if=virtio,format=qcow2,discard=unmap",
            "-drive",
            f"file={self.seed_iso},if=virtio,format=raw,media=cdrom,readonly=on",
            # Linode attaches volumes as SCSI disks: /dev/disk/by-id/scsi-0Linode_Volume_<label>.
            "-device",
            "virtio-scsi-pci,id=scsi0",
            "-drive",
            f"file={self.data_disk},if=none,id=volume,format=qcow2,discard=unmap",
            "-device",
            f"scsi-hd,drive=volume,vendor=Linode,product=Volume,device_id={self.volume_label}",
            "-netdev",
            f"user,id=n0,{forwards}",
            "-device",
            f"virtio-net-pci,netdev=n0,mac={GUEST_MAC}",
            *(self.load_link.qemu_args() if self.load_link else []),
            "-display",
            "none",
            "-serial",
            f"file:{self.serial_log}",
        ]

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        err = (self.run_dir / f"{self.name}.qemu.log").open("wb")
        # Not -daemonize: it swallows QEMU's errors.
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=dies_with_this_process(),
        )
        time.sleep(1)
        if self.process.poll() is not None:
            raise VmError(f"qemu exited at start: {self._qemu_log()}")

    def _qemu_log(self) -> str:
        return (self.run_dir / f"{self.name}.qemu.log").read_text(errors="replace").strip()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ssh_base(self) -> list[str]:
        return [
            "ssh",
            "-i",
            str(self.ssh_key),
            "-p",
            str(self.ssh_port),
            # Pinned, as the rollout's connection is: only the box with the stack's host key.
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            f"HostKeyAlias={HOST_KEY_ALIAS}",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "BatchMode=yes",
            "-o",
            "ServerAliveInterval=15",
            "root@127.0.0.1",
        ]

    def ssh(
        self, script: str, stdin: str | None = None, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.ssh_base(), script],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise VmError(
                f"`{script[:60]}` failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def wait_ssh(self, timeout: float) -> None:
        """The guest accepts connections late: retry until a login works."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise VmError(f"qemu exited: {self._qemu_log()}")
            if self._port_open(self.ssh_port):
                try:
                    if self.ssh("true", timeout=30, check=False).returncode == 0:
                        return
                except subprocess.TimeoutExpired:
                    pass
            time.sleep(3)
        raise VmError(f"no SSH login after {timeout:.0f}s; serial log: {self.serial_log}")

    @staticmethod
    def _port_open(port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def wait_first_boot(self, timeout: float) -> int:
        """cloud-init's exit: 0 done, 2 recoverable errors (cloud-init >= 23.4), 1 error."""
        self.wait_ssh(timeout)
        return self.ssh(
            "cloud-init status --wait > /dev/null", timeout=timeout, check=False
        ).returncode

    def reboot(self, timeout: float) -> None:
        self.ssh("systemctl reboot", check=False, timeout=30)
        time.sleep(10)
        self.wait_ssh(timeout)
        self.ssh("systemctl is-system-running --wait > /dev/null || true", timeout=timeout)

    def power_cut(self) -> None:
        """The plug pulled: QEMU killed, nothing flushed that the guest had not flushed."""
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def power_on(self, timeout: float) -> None:
        """The same disks booted again, as Linode does after a host's power loss."""
        self.start()
        self.wait_ssh(timeout)
        self.ssh("systemctl is-system-running --wait > /dev/null || true", timeout=timeout)

    def stop(self) -> None:
        """Power off cleanly (services flush their data), then make sure QEMU is gone."""
        if not self.alive or self.process is None:
            return
        if self._port_open(self.ssh_port):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.ssh("systemctl poweroff", check=False, timeout=20)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def how_to_reach(self) -> str:
        return (
            f"ssh: {shlex.join(self.ssh_base())}\n"
            f"http: http://127.0.0.1:{self.http_port}/\n"
            f"stop: kill {self.process.pid if self.process else '?'}"
        )
