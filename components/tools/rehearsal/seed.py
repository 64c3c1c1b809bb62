"""The NoCloud seed: the stack's document as user-data, plus what Linode's platform provides
itself (instance id, hostname, DHCP networking) as meta-data. No SSH key comes from the
platform: the program sets no `authorized_keys`, the document carries the rollout's key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from components.tools.rehearsal.loadlink import LoadLink

GUEST_MAC = "52:54:00:12:34:01"


def meta_data(instance_id: str, hostname: str) -> str:
    return yaml.safe_dump({"instance-id": instance_id, "local-hostname": hostname}, sort_keys=False)


def network_config(load_link: LoadLink | None = None) -> str:
    ethernets: dict[str, object] = {
        "eth0": {"match": {"macaddress": GUEST_MAC}, "set-name": "eth0", "dhcp4": True}
    }
    if load_link is not None:
        # No gateway: the default route stays on eth0; the link only carries the load.
        ethernets[load_link.guest_nic] = {
            "match": {"macaddress": load_link.guest_mac},
            "set-name": load_link.guest_nic,
            "addresses": [load_link.guest_address],
        }
    return yaml.safe_dump({"version": 2, "ethernets": ethernets}, sort_keys=False)


def vendor_data(names: dict[str, str], trusted_ca: str) -> str:
    """What the platform's network and image provide where the rehearsal stands in for them:
    the stand-ins' names in /etc/hosts (DNS, on Linode) and their CA in the system's trust
    store (a public CA, on Linode). Vendor data, so the stack's document stays byte for byte
    what Pulumi sends."""
    hosts = "".join(f"{address} {name}\n" for name, address in names.items())
    config = {
        "ca_certs": {"trusted": [trusted_ca]},
        # Every boot, like a resolver: idempotent.
        "bootcmd": [
            ["sh", "-c", f"grep -qF '{line}' /etc/hosts || echo '{line}' >> /etc/hosts"]
            for line in hosts.splitlines()
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False)


def write_seed(
    folder: Path,
    document: str,
    instance_id: str,
    hostname: str,
    load_link: LoadLink | None = None,
    vendor: str | None = None,
) -> Path:
    """An ISO labelled `cidata` holding user-data (the document, byte for byte), meta-data and
    the network config, and vendor-data when the rehearsal stands in for a service."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "user-data").write_text(document)
    (folder / "meta-data").write_text(meta_data(instance_id, hostname))
    (folder / "network-config").write_text(network_config(load_link))
    extra = []
    if vendor is not None:
        (folder / "vendor-data").write_text(vendor)
        extra.append(str(folder / "vendor-data"))
    iso = folder / "seed.iso"
    subprocess.run(
        [
            "genisoimage",
            "-quiet",
            "-output",
            str(iso),
            "-volid",
            "cidata",
            "-joliet",
            "-rock",
            str(folder / "user-data"),
            str(folder / "meta-data"),
            str(folder / "network-config"),
            *extra,
        ],
        check=True,
    )
    return iso
