from __future__ import annotations

import re

from components.model.layout import PATHS, volume_device, volume_label


def test_volume_label_fits_linode_rules() -> None:
    for stack in ("prod", "a-very-long-stack-name-for-testing"):
        label = volume_label(stack)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", label)


def test_volume_device_is_linodes_by_id_path() -> None:
    assert volume_device("prod") == "/dev/disk/by-id/scsi-0Linode_Volume_tunedstack-prod-data"
    assert PATHS.app_socket.startswith("/run/")
