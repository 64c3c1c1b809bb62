from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from components.tools.rehearsal.image import BaseImage
from components.tools.rehearsal.loadlink import LoadLink
from components.tools.rehearsal.seed import GUEST_MAC
from components.tools.rehearsal.vm import Vm, accel_args


def _vm(tmp_path: Path) -> Vm:
    return Vm(
        "i-1",
        BaseImage(tmp_path),
        tmp_path,
        tmp_path / "root.qcow2",
        tmp_path / "vol.qcow2",
        tmp_path / "seed.iso",
        4096,
        2,
        "tcg",
        "tunedstack-staging-data",
        tmp_path / "id",
        tmp_path / "known_hosts",
        http_port=18080,
        ssh_port=2222,
    )


def test_command_line_stands_in_for_the_linode(tmp_path: Path) -> None:
    command = " ".join(_vm(tmp_path).command())
    assert "-m 4096 -smp 2" in command
    # The whole label, like Linode's by-id name (a SCSI serial would be cut at 20 characters).
    assert "vendor=Linode,product=Volume,device_id=tunedstack-staging-data" in command
    assert "hostfwd=tcp:127.0.0.1:18080-:80,hostfwd=tcp:127.0.0.1:2222-:22" in command
    assert "-daemonize" not in command
    # Threads named by their job: the benchmark reads its vCPU threads' CPU by these names.
    assert "debug-threads=on" in command


def test_a_load_link_adds_a_second_nic_on_its_tap(tmp_path: Path) -> None:
    assert "tap" not in " ".join(_vm(tmp_path).command())
    link = LoadLink()
    command = " ".join(replace(_vm(tmp_path), load_link=link).command())
    assert f"tap,id=load,ifname={link.tap},script=no,downscript=no" in command
    assert f"netdev=load,mac={link.guest_mac}" in command
    # The management NIC (SSH, the rehearsal's checks) is still the first one.
    assert command.index(GUEST_MAC) < command.index(link.guest_mac)


def test_accelerators() -> None:
    assert accel_args("tcg") == ["-accel", "tcg,thread=multi", "-cpu", "max"]
    assert accel_args("kvm")[:2] == ["-accel", "kvm"]


def test_ssh_only_ever_targets_loopback(tmp_path: Path) -> None:
    base = _vm(tmp_path).ssh_base()
    assert base[-1] == "root@127.0.0.1" and "BatchMode=yes" in base


def test_ssh_is_pinned_to_the_stacks_host_key(tmp_path: Path) -> None:
    base = " ".join(_vm(tmp_path).ssh_base())
    assert "StrictHostKeyChecking=yes" in base
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in base
    assert "HostKeyAlias=tunedstack-box" in base
