from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.tools.rehearsal.loadlink import LoadLink
from components.tools.rehearsal.seed import (
    GUEST_MAC,
    meta_data,
    network_config,
    vendor_data,
    write_seed,
)


def test_meta_data_carries_what_linode_provides_and_no_key() -> None:
    meta = yaml.safe_load(meta_data("i-2", "box"))
    assert meta == {"instance-id": "i-2", "local-hostname": "box"}


def test_network_is_dhcp_on_the_guest_nic() -> None:
    eth0 = yaml.safe_load(network_config())["ethernets"]["eth0"]
    assert eth0["match"]["macaddress"] == GUEST_MAC and eth0["dhcp4"] is True


def test_a_load_link_gets_a_static_address_and_no_route() -> None:
    link = LoadLink()
    ethernets = yaml.safe_load(network_config(link))["ethernets"]
    assert ethernets["eth0"]["dhcp4"] is True
    eth1 = ethernets[link.guest_nic]
    assert eth1["match"]["macaddress"] == link.guest_mac
    assert eth1["addresses"] == [f"{link.guest_ip}/{link.prefix}"]
    # The default route stays with the management NIC.
    assert "gateway4" not in eth1 and "routes" not in eth1 and "dhcp4" not in eth1


@pytest.mark.skipif(shutil.which("genisoimage") is None, reason="installed by the rehearsal")
def test_seed_iso_holds_the_document_byte_for_byte(tmp_path: Path) -> None:
    document = "#cloud-config\nhostname: x\n"
    iso = write_seed(tmp_path, document, "i-1", "x")
    listing = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True)
    assert "Volume id: cidata" in listing.stdout
    extracted = subprocess.run(
        ["isoinfo", "-R", "-x", "/user-data", "-i", str(iso)], capture_output=True, text=True
    ).stdout
    assert extracted == document


CA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"


def test_vendor_data_names_the_stand_ins_and_trusts_their_ca() -> None:
    text = vendor_data({"objects.rehearsal.test": "10.0.2.2"}, CA)
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert config["ca_certs"] == {"trusted": [CA]}
    (command,) = config["bootcmd"]
    line = "10.0.2.2 objects.rehearsal.test"
    assert command == ["sh", "-c", f"grep -qF '{line}' /etc/hosts || echo '{line}' >> /etc/hosts"]


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="installed by bin/test")
def test_cloud_init_accepts_the_vendor_data(tmp_path: Path) -> None:
    path = tmp_path / "vendor-data"
    path.write_text(vendor_data({"objects.rehearsal.test": "10.0.2.2"}, CA))
    result = subprocess.run(
        ["cloud-init", "schema", "-c", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("genisoimage") is None, reason="installed by the rehearsal")
def test_the_seed_carries_vendor_data_only_when_given(tmp_path: Path) -> None:
    def files(iso: Path) -> str:
        return subprocess.run(
            ["isoinfo", "-R", "-f", "-i", str(iso)], capture_output=True, text=True
        ).stdout

    assert "/vendor-data" not in files(write_seed(tmp_path / "a", "#cloud-config\n", "i", "x"))
    with_vendor = write_seed(tmp_path / "b", "#cloud-config\n", "i", "x", vendor="#cloud-config\n")
    assert "/vendor-data" in files(with_vendor)
