from __future__ import annotations

import multiprocessing
import os
import subprocess
from multiprocessing.queues import Queue

import pytest

from components.tools.rehearsal.loadlink import LoadLink, enter_private_network


def _links() -> str:
    return subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout


def _names(links: str) -> set[str]:
    return {line.split()[1] for line in links.splitlines()}


def _inside(queue: Queue[str], link: LoadLink) -> None:
    try:
        enter_private_network(link)
        queue.put(_links())
    except Exception as e:  # reported to the test, not lost with the child
        queue.put(f"error: {e}")


def test_qemu_and_host_sides_name_the_same_tap() -> None:
    link = LoadLink(tap="tstest0")
    assert "ifname=tstest0" in " ".join(link.qemu_args())
    commands = [" ".join(c) for c in link.setup_commands()]
    assert "ip tuntap add dev tstest0 mode tap" in commands
    assert f"ip addr add {link.host_ip}/24 dev tstest0" in commands
    assert link.guest_address == f"{link.guest_ip}/24"


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")
def test_the_link_lives_in_a_private_namespace_and_leaves_the_host_alone() -> None:
    link = LoadLink(tap="tstest0", host_ip="10.78.0.1")
    before = _links()
    context = multiprocessing.get_context("fork")
    queue: Queue[str] = context.Queue()
    child = context.Process(target=_inside, args=(queue, link))
    child.start()
    inside = queue.get(timeout=30)
    child.join(timeout=30)
    assert "tstest0" in inside and "inet 10.78.0.1/24" in inside, inside
    assert "inet 127.0.0.1/8" in inside  # loopback is up in there
    # Only loopback and the tap: none of the host's interfaces.
    assert _names(inside) == {"lo", "tstest0"}
    # Names, not whole lines: a host's DHCP lease lifetimes count down between the two reads.
    assert _names(_links()) == _names(before) and "tstest0" not in _names(before)
