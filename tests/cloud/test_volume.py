from __future__ import annotations

import pulumi
import pytest

from components.cloud.volume import DataVolume
from components.model.settings import validate
from tests.pulumi_program import run_body


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_volume_is_kept_in_production(environment: str) -> None:
    settings = validate(
        {
            "region": "us-east",
            "plan": "g6-nanode-1",
            "environment": environment,
            "adminCidrs": ["198.51.100.0/24"],
            "volumeSizeGb": 30,
        },
        "t",
    )
    run = run_body(
        "t", {}, lambda: DataVolume("t", "qa", settings, pulumi.Output.from_input(42), [])
    )
    volume = run.one("linode:index/volume:Volume")
    assert volume.inputs["linodeId"] == 42 and volume.inputs["size"] == 30
    assert volume.inputs["label"] == "tunedstack-qa-data"
    assert volume.protect is (environment == "production")
    assert volume.retain_on_delete is (environment == "production")
