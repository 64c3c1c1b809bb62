from __future__ import annotations

import base64

import pulumi
import pytest

from components.cloud.instance import Box, public_ipv4
from components.model.settings import validate
from tests.pulumi_program import run_body


def test_public_ipv4_skips_linode_private_addresses() -> None:
    assert public_ipv4(["192.168.130.4", "172.105.1.2"]) == "172.105.1.2"
    with pytest.raises(ValueError, match="no public IPv4"):
        public_ipv4(["192.168.200.1"])


def test_instance_options_follow_the_environment() -> None:
    settings = validate(
        {
            "region": "us-east",
            "plan": "g6-nanode-1",
            "environment": "production",
            "adminCidrs": ["198.51.100.0/24"],
        },
        "t",
    )

    def body() -> None:
        Box(
            "t",
            "box",
            settings,
            pulumi.Output.from_input("#cloud-config\n"),
            pulumi.Output.secret("rootPassword0123"),
            pulumi.Output.from_input(5),
            ["x"],
        )

    inst = run_body("t", {}, body).one("linode:index/instance:Instance")
    assert inst.protect and inst.ignore_changes == ["metadatas"]
    assert inst.inputs["backupsEnabled"] is True
    assert base64.b64decode(inst.inputs["metadatas"][0]["userData"]) == b"#cloud-config\n"
    assert "metadatas[0].userData" in inst.secret_paths
