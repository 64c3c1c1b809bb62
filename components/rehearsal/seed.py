"""The NoCloud seed: the stack's document as user-data, plus what Linode's platform provides
itself (instance id, hostname, root's SSH key, DHCP networking) as meta-data."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

GUEST_MAC = "52:54:00:12:34:01"


def meta_data(instance_id: str, hostname: str, public_key: str) -> str:
    return yaml.safe_dump(
        {"instance-id": instance_id, "local-hostname": hostname, "public-keys": [public_key]},
        sort_keys=False,
    )


def network_config() -> str:
    return yaml.safe_dump(
        {
            "version": 2,
            "ethernets": {
                "eth0": {"match": {"macaddress": GUEST_MAC}, "set-name": "eth0", "dhcp4": True}
            },
        },
        sort_keys=False,
    )


def write_seed(
    folder: Path, document: str, instance_id: str, hostname: str, public_key: str
) -> Path:
    """An ISO labelled `cidata` holding user-data (the document, byte for byte) and meta-data."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "user-data").write_text(document)
    (folder / "meta-data").write_text(meta_data(instance_id, hostname, public_key))
    (folder / "network-config").write_text(network_config())
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
