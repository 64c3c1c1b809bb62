"""A direct network path for load: a tap link between a private network namespace and the VM.

QEMU's user networking (slirp) runs every forwarded socket through QEMU's main thread; measured
here, 3000 held connections saturate that thread and the box's throughput drops from about 100
to 2 requests/s while its own CPUs idle. Over a tap link the host's and the guest's kernels carry
TCP, as a real network would. The link lives in a namespace this process creates, so the host's
interfaces, routes and sysctls stay untouched, and it disappears with the last process in it.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from dataclasses import dataclass
from typing import Protocol

from components.tools.rehearsal.host import HostError

CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class LoadLink:
    tap: str = "tsload0"
    host_ip: str = "10.77.0.1"
    guest_ip: str = "10.77.0.2"
    prefix: int = 24
    guest_mac: str = "52:54:00:12:34:02"
    guest_nic: str = "eth1"

    @property
    def guest_address(self) -> str:
        return f"{self.guest_ip}/{self.prefix}"

    def qemu_args(self) -> list[str]:
        return [
            "-netdev",
            f"tap,id=load,ifname={self.tap},script=no,downscript=no",
            "-device",
            f"virtio-net-pci,netdev=load,mac={self.guest_mac}",
        ]

    def setup_commands(self) -> list[list[str]]:
        return [
            ["ip", "link", "set", "lo", "up"],
            ["ip", "tuntap", "add", "dev", self.tap, "mode", "tap"],
            ["ip", "addr", "add", f"{self.host_ip}/{self.prefix}", "dev", self.tap],
            ["ip", "link", "set", self.tap, "up"],
        ]


class NetworkSetup(Protocol):
    def setup_commands(self) -> list[list[str]]: ...


def enter_private_network(link: NetworkSetup) -> None:
    """Move the calling thread, and every process it starts from now on, into a new network
    namespace holding only loopback and what the link's commands set up. Call it first thing
    in a fresh process."""
    if os.geteuid() != 0:
        raise HostError("the benchmark's load link needs root (a network namespace and a tap)")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise HostError(f"cannot create a network namespace: {os.strerror(ctypes.get_errno())}")
    for command in link.setup_commands():
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HostError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
