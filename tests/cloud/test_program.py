"""The real Pulumi program (__main__.py) under Pulumi's mocks, with each stack's real config."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from components.cloud.instance import REPLACING_INPUTS
from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.model.userdata import cloud_config, decode_files
from tests.pulumi_program import (
    PUBLIC_IPV4,
    REPO,
    TEST_PRIVATE_KEY,
    ProgramFailed,
    ProgramRun,
    mock_password,
    run_program,
    stack_config,
)

INSTANCE = "linode:index/instance:Instance"
VOLUME = "linode:index/volume:Volume"
FIREWALL = "linode:index/firewall:Firewall"
COMMAND = "command:remote:Command"
PASSWORD = "random:index/randomPassword:RandomPassword"

_runs: dict[str, ProgramRun] = {}


@pytest.fixture
def run(stack_name: str) -> ProgramRun:
    if stack_name not in _runs:
        _runs[stack_name] = run_program(stack_name, stack_config(stack_name))
    return _runs[stack_name]


def _secrets(stack: str) -> list[str]:
    return [mock_password(f"{stack}-{role}") for role in ("postgres", "redis", "root")] + [
        TEST_PRIVATE_KEY
    ]


def test_the_resources_and_their_types(run: ProgramRun, stack_name: str) -> None:
    assert sorted(r.type for r in run.resources) == sorted(
        [
            "pulumi:pulumi:Stack",
            "tunedstack:passwords:ServicePasswords",
            PASSWORD,
            PASSWORD,
            PASSWORD,
            "tunedstack:firewall:BoxFirewall",
            FIREWALL,
            "tunedstack:instance:Box",
            INSTANCE,
            "tunedstack:volume:DataVolume",
            VOLUME,
            "tunedstack:rollout:Rollout",
            COMMAND,
        ]
    )


@pytest.mark.parametrize(
    ("child", "component"),
    [
        (PASSWORD, "tunedstack:passwords:ServicePasswords"),
        (FIREWALL, "tunedstack:firewall:BoxFirewall"),
        (INSTANCE, "tunedstack:instance:Box"),
        (VOLUME, "tunedstack:volume:DataVolume"),
        (COMMAND, "tunedstack:rollout:Rollout"),
    ],
)
def test_children_are_parented_to_their_component(
    run: ProgramRun, stack_name: str, child: str, component: str
) -> None:
    for registration in run.of_type(child):
        assert registration.parent.endswith(f"${component}::{stack_name}"), registration.parent


def test_firewall_rules(run: ProgramRun, stack_name: str) -> None:
    fw = run.one(FIREWALL).inputs
    assert (fw["inboundPolicy"], fw["outboundPolicy"]) == ("DROP", "ACCEPT")
    rules = {r["label"]: r for r in fw["inbounds"]}
    assert set(rules) == {"http", "https", "icmp", "ssh-admins"}
    for label, port in (("http", "80"), ("https", "443")):
        assert rules[label]["ports"] == port and rules[label]["protocol"] == "TCP"
        assert rules[label]["ipv4s"] == ["0.0.0.0/0"] and rules[label]["ipv6s"] == ["::/0"]
    admins = load_stack_file(REPO / "stacks", stack_name).admin_cidrs
    assert rules["ssh-admins"]["ports"] == "22" and rules["ssh-admins"]["ipv4s"] == admins
    assert rules["icmp"]["protocol"] == "ICMP"


def test_firewall_is_attached_once_through_the_instance(run: ProgramRun) -> None:
    assert run.one(INSTANCE).inputs["firewallId"] == 5151
    assert "linodes" not in run.one(FIREWALL).inputs


def test_volume_is_attached_to_the_instance(run: ProgramRun, stack_name: str) -> None:
    settings = load_stack_file(REPO / "stacks", stack_name)
    volume = run.one(VOLUME).inputs
    assert volume["linodeId"] == 4242
    assert volume["label"] == f"tunedstack-{stack_name}-data"
    assert (volume["region"], volume["size"]) == (settings.region, settings.volume_size_gb)
    assert run.outputs["volumeDevice"] == (
        f"/dev/disk/by-id/scsi-0Linode_Volume_tunedstack-{stack_name}-data"
    )


def test_instance_inputs(run: ProgramRun, stack_name: str) -> None:
    settings = load_stack_file(REPO / "stacks", stack_name)
    inst = run.one(INSTANCE).inputs
    assert inst["type"] == settings.plan
    assert inst["region"] == settings.region
    assert inst["image"] == settings.image
    assert inst["label"] == f"tunedstack-{stack_name}"
    assert inst["backupsEnabled"] is settings.is_production
    assert inst["privateIp"] is settings.private_ip
    assert set(inst["tags"]) == {"tunedstack", stack_name, *settings.tags}


def test_user_data_decodes_to_exactly_what_render_produces(
    run: ProgramRun, stack_name: str
) -> None:
    settings = load_stack_file(REPO / "stacks", stack_name)
    secrets = Secrets(mock_password(f"{stack_name}-postgres"), mock_password(f"{stack_name}-redis"))
    rendered = render_files(stack_name, settings, size(settings), secrets)
    b64 = run.one(INSTANCE).inputs["metadatas"][0]["userData"]
    document = base64.b64decode(b64).decode()
    assert document == cloud_config(rendered, f"tunedstack-{stack_name}", settings.ssh_keys)
    assert decode_files(document) == {f.path: f.content for f in rendered.files}


def test_secrets_are_secret(run: ProgramRun) -> None:
    assert {"metadatas[0].userData", "rootPass"} <= run.one(INSTANCE).secret_paths
    command = run.one(COMMAND)
    assert {"stdin", "connection"} <= command.secret_paths


def test_no_secret_in_any_plain_input_or_output(run: ProgramRun, stack_name: str) -> None:
    secrets = _secrets(stack_name)

    def plain(value: Any, path: str, secret_paths: set[str]) -> list[str]:
        if path in secret_paths:
            return []
        if isinstance(value, dict):
            return [
                s
                for k, v in value.items()
                for s in plain(v, f"{path}.{k}" if path else k, secret_paths)
            ]
        if isinstance(value, list):
            return [s for i, v in enumerate(value) for s in plain(v, f"{path}[{i}]", secret_paths)]
        return [json.dumps(value)]

    for registration in run.resources:
        for text in plain(registration.inputs, "", registration.secret_paths):
            assert not any(s in text for s in secrets), (registration.name, text[:80])
    exported = json.dumps(run.outputs)
    assert not any(s in exported for s in secrets)
    assert run.secret_outputs == set()


def test_rendered_files_written_by_render_hold_no_secret(tmp_path: Path, stack_name: str) -> None:
    from components.tools.cli import main

    assert main(["render", "--stack", stack_name, "--out", str(tmp_path)]) == 0
    text = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert not any(s in text for s in _secrets(stack_name))
    assert "SECRETpostgresPassword" in text


def test_protection(run: ProgramRun, stack_name: str) -> None:
    production = stack_name == "prod"
    assert run.one(INSTANCE).protect is production
    assert run.one(VOLUME).protect is production
    assert run.one(VOLUME).retain_on_delete is production


def test_instance_ignores_user_data_changes(run: ProgramRun) -> None:
    assert run.one(INSTANCE).ignore_changes == ["metadatas"]


def test_outputs(run: ProgramRun) -> None:
    assert run.outputs["ipv4"] == PUBLIC_IPV4
    assert run.outputs["url"] == f"http://{PUBLIC_IPV4}/"
    assert run.outputs["ssh"] == f"ssh root@{PUBLIC_IPV4}"
    assert run.outputs["volumeId"] == "7373"
    assert run.outputs["sizing"]["postgresql"] > 0
    assert run.outputs["contentHash"] in run.one(COMMAND).inputs["update"]


def test_plan_is_checked_against_linode(run: ProgramRun, stack_name: str) -> None:
    plan = load_stack_file(REPO / "stacks", stack_name).plan
    assert ("linode:index/getInstanceType:getInstanceType", {"id": plan}) in run.invokes


# ---------------------------------------------------------------- day-2 changes
def _staging_with(**overrides: Any) -> ProgramRun:
    return run_program(
        "staging", stack_config("staging", {f"tunedstack:{k}": v for k, v in overrides.items()})
    )


def test_rollout_update_changes_when_and_only_when_a_rendered_file_changes() -> None:
    base = _staging_with()
    tunable = _staging_with(workload={"peakConnections": 4000, "redisPolicy": "allkeys-lfu"})
    not_rendered = _staging_with(volumeSizeGb=40, tags=["staging", "team-a"])
    update = {
        name: r.one(COMMAND).inputs["update"]
        for name, r in (("base", base), ("tunable", tunable), ("other", not_rendered))
    }
    assert update["tunable"] != update["base"]
    assert update["other"] == update["base"]
    assert base.one(COMMAND).inputs["create"] == update["base"]


def test_a_tunable_change_replaces_nothing() -> None:
    base = _staging_with()
    changed = _staging_with(services={"haproxy": {"queueTimeoutSeconds": 20}})
    assert changed.outputs["contentHash"] != base.outputs["contentHash"]
    before, after = base.one(INSTANCE).inputs, changed.one(INSTANCE).inputs
    for key in REPLACING_INPUTS:
        assert before.get(key) == after.get(key), key
    # The new user data differs, and the instance is told to ignore exactly that.
    assert before["metadatas"] != after["metadatas"]
    assert changed.one(INSTANCE).ignore_changes == ["metadatas"]


def test_rollout_can_be_turned_off() -> None:
    config = stack_config("staging", {"tunedstack:rollout": False}, with_key=False)
    run = run_program("staging", config)
    assert run.of_type(COMMAND) == []


def test_preview_registers_everything_without_values() -> None:
    run = run_program("staging", stack_config("staging"), preview=True)
    assert len(run.of_type(INSTANCE)) == 1 and len(run.of_type(COMMAND)) == 1


# ---------------------------------------------------------------- bad stacks
@pytest.mark.parametrize(
    ("stack", "overrides", "message"),
    [
        (
            "staging",
            {"tunedstack:plan": "g6-standard-99"},
            "tunedstack:plan = 'g6-standard-99': unknown Linode plan; valid:",
        ),
        ("staging", {"tunedstack:services": {"redis": {"maxmemoryMb": 3000}}}, "the services need"),
        ("prod", {"tunedstack:adminCidrs": []}, "production stacks must set `adminCidrs`"),
    ],
)
def test_bad_stack_fails_with_the_sizing_message(
    stack: str, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match="problem") as err:
        run_program(stack, stack_config(stack, overrides))
    assert message in str(err.value)
    assert f"stacks/Pulumi.{stack}.yaml" in str(err.value)


def test_budget_error_carries_the_table() -> None:
    with pytest.raises(Exception) as err:
        run_program(
            "staging",
            stack_config("staging", {"tunedstack:services": {"redis": {"maxmemoryMb": 3000}}}),
        )
    assert "Budget:" in str(err.value) and "plan total" in str(err.value)


def test_rollout_without_a_key_says_how_to_fix_it() -> None:
    with pytest.raises(Exception) as err:
        run_program("staging", stack_config("staging", with_key=False))
    assert "tunedstack:sshPrivateKey = (missing)" in str(err.value)
    assert "tunedstack:rollout: false" in str(err.value)


def test_catalog_drift_from_linode_is_reported() -> None:
    with pytest.raises(Exception) as err:
        run_program("staging", stack_config("staging"), live_plans={"g6-standard-2": (8192, 4)})
    assert "Linode reports 4 vCPU / 8192 MB" in str(err.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"tunedstack:plan": "nope"},
        {"tunedstack:services": {"redis": {"maxmemoryMb": 3000}}},
        {"tunedstack:sshKeys": ["ssh-ed25519 " + "A" * 68 + " k"] * 200},  # user data too large
    ],
)
def test_nothing_is_created_when_preflight_fails(overrides: dict[str, Any]) -> None:
    with pytest.raises(ProgramFailed) as err:
        run_program("staging", stack_config("staging", overrides))
    assert [r.type for r in err.value.registrations] == ["pulumi:pulumi:Stack"]
