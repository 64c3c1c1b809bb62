from __future__ import annotations

import re

from components.model.layout import PATHS, firewall_label, volume_device, volume_label


def test_volume_label_fits_linode_rules() -> None:
    for stack in ("prod", "a-very-long-stack-name-for-testing"):
        label = volume_label(stack)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", label)


def test_volume_device_is_linodes_by_id_path() -> None:
    assert volume_device("prod") == "/dev/disk/by-id/scsi-0Linode_Volume_tunedstack-prod-data"
    assert PATHS.app_socket.startswith("/run/")


def test_firewall_labels_fit_linode_and_stay_distinct() -> None:
    assert firewall_label("tunedstack-staging") == "tunedstack-staging"
    long_a = "tunedstack-" + "a" * 40 + "-one"
    long_b = "tunedstack-" + "a" * 40 + "-two"
    for label in (long_a, long_b):
        assert 3 <= len(firewall_label(label)) <= 32
        assert firewall_label(label)[-1].isalnum()
    assert firewall_label(long_a) != firewall_label(long_b)
