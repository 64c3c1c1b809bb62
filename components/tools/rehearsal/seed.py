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


def write_seed(
    folder: Path,
    document: str,
    instance_id: str,
    hostname: str,
    load_link: LoadLink | None = None,
) -> Path:
    """An ISO labelled `cidata` holding user-data (the document, byte for byte) and meta-data."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "user-data").write_text(document)
    (folder / "meta-data").write_text(meta_data(instance_id, hostname))
    (folder / "network-config").write_text(network_config(load_link))
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
        ],
        check=True,
    )
    return iso
