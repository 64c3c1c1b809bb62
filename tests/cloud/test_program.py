"""The real Pulumi program (__main__.py) under Pulumi's mocks, with each stack's config as the
CLI hands it over; the engine's and Linode's rules that mocks do not apply are applied here."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cloud.backups import SUFFIX_BYTES, bucket_label
from components.cloud.instance import REPLACING_INPUTS
from components.model.backups import BackupKeys, BackupRepository
from components.model.delivery import bundle
from components.model.layout import PATHS
from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.model.userdata import FirstBootKeys, cloud_config
from tests.pulumi_program import (
    OBJECT_STORAGE_ENDPOINT,
    PUBLIC_IPV4,
    REPO,
    AccountNow,
    ProgramFailed,
    ProgramRun,
    mock_access_key,
    mock_key_pair,
    mock_password,
    run_program,
    stack_config,
)

INSTANCE = "linode:index/instance:Instance"
VOLUME = "linode:index/volume:Volume"
FIREWALL = "linode:index/firewall:Firewall"
COMMAND = "command:remote:Command"
PASSWORD = "random:index/randomPassword:RandomPassword"
KEY = "tls:index/privateKey:PrivateKey"
# Linode labels are unique per account for these (the API answers "[400] [label] Label must be
# unique"), so a create-first replacement of any of them is refused.
UNIQUE_LABELS = (INSTANCE, FIREWALL, VOLUME)

_runs: dict[str, ProgramRun] = {}


@pytest.fixture
def run(stack_name: str) -> ProgramRun:
    if stack_name not in _runs:
        _runs[stack_name] = run_program(stack_name, stack_config(stack_name))
    return _runs[stack_name]


def _keys(stack: str) -> FirstBootKeys:
    host_private, host_public = mock_key_pair(f"{stack}-host")
    _, deploy_public = mock_key_pair(f"{stack}-deploy")
    return FirstBootKeys(
        host_private, host_public.strip(), f"{deploy_public.strip()} tunedstack-deploy"
    )


def _secrets(stack: str) -> list[str]:
    passwords = [mock_password(f"{stack}-{role}") for role in ("postgres", "redis", "root")]
    keys = [mock_key_pair(f"{stack}-{role}")[0].splitlines()[1] for role in ("host", "deploy")]
    backups = _backup_keys(stack)
    return passwords + keys + (list(backups.values()) if backups else [])


def _backup_keys(stack: str) -> BackupKeys | None:
    """What the mocked bucket key and encryption passwords are, for a stack with backups."""
    if not load_stack_file(REPO / "stacks", stack).backups_enabled:
        return None
    return BackupKeys(
        mock_access_key(f"{stack}-key"),
        mock_password(f"{stack}-key"),
        mock_password(f"{stack}-postgres-encryption"),
        mock_password(f"{stack}-redis-encryption"),
    )


def _backup_repository(stack: str) -> BackupRepository | None:
    if not load_stack_file(REPO / "stacks", stack).backups_enabled:
        return None
    suffix = hashlib.sha256(f"{stack}-bucket-suffix".encode()).hexdigest()[: 2 * SUFFIX_BYTES]
    return BackupRepository(bucket_label(stack, suffix), OBJECT_STORAGE_ENDPOINT)


def _bundled(run: ProgramRun) -> list[str]:
    raw = base64.b64decode(run.one(COMMAND).inputs["stdin"])
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return tar.getnames()


def _document(run: ProgramRun) -> str:
    return base64.b64decode(run.one(INSTANCE).inputs["metadatas"][0]["userData"]).decode()


# A stack with backups (prod) adds its bucket, the bucket's key, a random suffix for the
# bucket's name and two encryption keys.
BACKUP_RESOURCES = [
    "tunedstack:backups:BackupBucket",
    "linode:index/objectStorageBucket:ObjectStorageBucket",
    "linode:index/objectStorageKey:ObjectStorageKey",
    "random:index/randomId:RandomId",
    PASSWORD,
    PASSWORD,
]


def test_the_resources_and_their_types(run: ProgramRun, stack_name: str) -> None:
    backups = BACKUP_RESOURCES if _backup_keys(stack_name) else []
    assert sorted(r.type for r in run.resources) == sorted(
        [
            *backups,
            "pulumi:pulumi:Stack",
            "tunedstack:passwords:ServicePasswords",
            PASSWORD,
            PASSWORD,
            PASSWORD,
            "tunedstack:keys:BoxKeys",
            KEY,
            KEY,
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
        (KEY, "tunedstack:keys:BoxKeys"),
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
        # The backups' encryption keys belong to the bucket they encrypt for.
        backup_key = child == PASSWORD and registration.name.endswith("-encryption")
        owner = "tunedstack:backups:BackupBucket" if backup_key else component
        assert registration.parent.endswith(f"${owner}::{stack_name}"), registration.parent


def test_keys_are_ed25519(run: ProgramRun) -> None:
    assert [k.inputs["algorithm"] for k in run.of_type(KEY)] == ["ED25519", "ED25519"]


def test_firewall_rules(run: ProgramRun) -> None:
    fw = run.one(FIREWALL).inputs
    assert (fw["inboundPolicy"], fw["outboundPolicy"]) == ("DROP", "ACCEPT")
    rules = {r["label"]: r for r in fw["inbounds"]}
    assert set(rules) == {"http", "https", "icmp", "ssh-admins"}
    for label, port in (("http", "80"), ("https", "443")):
        assert rules[label]["ports"] == port and rules[label]["protocol"] == "TCP"
        assert rules[label]["ipv4s"] == ["0.0.0.0/0"] and rules[label]["ipv6s"] == ["::/0"]
    admins = json.loads(stack_config("staging")["tunedstack:adminCidrs"])
    assert rules["ssh-admins"]["ports"] == "22" and rules["ssh-admins"]["ipv4s"] == admins
    assert rules["icmp"]["protocol"] == "ICMP"
    # Linode: firewall and rule labels are 3-32 characters.
    assert all(3 <= len(label) <= 32 for label in [fw["label"], *rules])


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
    # ForceNew in the provider: admin keys are a file the rollout keeps instead.
    assert "authorizedKeys" not in inst and "authorizedUsers" not in inst


def test_user_data_is_the_first_boot_document_with_the_stacks_keys(
    run: ProgramRun, stack_name: str
) -> None:
    document = _document(run)
    keys = _keys(stack_name)
    assert document == cloud_config(keys, stack_name)
    parsed = yaml.safe_load(document)
    assert parsed["ssh_keys"]["ed25519_public"] == keys.host_public_key
    assert parsed["ssh_authorized_keys"] == [keys.deploy_public_key]
    assert "write_files" not in parsed and "packages" not in parsed


def test_the_rollout_delivers_exactly_what_render_produces(
    run: ProgramRun, stack_name: str
) -> None:
    settings = load_stack_file(REPO / "stacks", stack_name)
    settings = settings.model_copy(
        update={"admin_cidrs": json.loads(stack_config(stack_name)["tunedstack:adminCidrs"])}
    )
    secrets = Secrets(
        mock_password(f"{stack_name}-postgres"),
        mock_password(f"{stack_name}-redis"),
        _keys(stack_name).deploy_public_key,
        backup_keys=_backup_keys(stack_name),
    )
    rendered = render_files(
        stack_name, settings, size(settings), secrets, repository=_backup_repository(stack_name)
    )
    assert run.one(COMMAND).inputs["stdin"] == bundle(rendered)
    keys_file = rendered.by_path()[PATHS.root_authorized_keys].content
    assert _keys(stack_name).deploy_public_key in keys_file


def test_the_rollout_pins_the_host_key_and_logs_in_with_the_deploy_key(
    run: ProgramRun, stack_name: str
) -> None:
    connection = run.one(COMMAND).inputs["connection"]
    keys = _keys(stack_name)
    # The public halves the document installs are those of the keys the rollout uses.
    assert connection["hostKey"] == keys.host_public_key
    assert connection["privateKey"] == mock_key_pair(f"{stack_name}-deploy")[0]
    assert (connection["host"], connection["user"]) == (PUBLIC_IPV4, "root")
    assert run.outputs["hostKey"] == keys.host_public_key


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
        if registration.type in (PASSWORD, KEY):
            continue  # the providers hand their results out as secrets themselves
        for text in plain(registration.inputs, "", registration.secret_paths):
            assert not any(s in text for s in secrets), (registration.name, text[:80])
    # The backups' encryption keys are exported for a copy outside Pulumi, as a secret.
    kept_secret = {"backupKeys"} if _backup_keys(stack_name) else set()
    assert run.secret_outputs == kept_secret
    exported = json.dumps({k: v for k, v in run.outputs.items() if k not in kept_secret})
    assert not any(s in exported for s in secrets)


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


# ---------------------------------------------------------------- the engine's replacement rules
@pytest.mark.parametrize("typ", UNIQUE_LABELS)
def test_resources_with_unique_labels_are_replaced_delete_first(run: ProgramRun, typ: str) -> None:
    """The engine creates a replacement before deleting the old resource unless the resource is
    registered deleteBeforeReplace (pulumi/pulumi step_generator.go); pulumi-linode asks for
    neither. With a unique label, create-first is refused by the API."""
    assert run.one(typ).delete_before_replace


def goal_inputs_on_replacement(
    old: dict[str, Any], new: dict[str, Any], ignore_changes: list[str]
) -> dict[str, Any]:
    """The engine's processIgnoreChanges: an ignored input keeps its old value in the goal
    state, and a replacement is created from that goal (top-level paths suffice here)."""
    return {**new, **{path: old[path] for path in ignore_changes if path in old}}


def _staging_with(**overrides: Any) -> ProgramRun:
    return run_program(
        "staging", stack_config("staging", {f"tunedstack:{k}": v for k, v in overrides.items()})
    )


def test_a_replaced_box_boots_a_document_that_is_still_right() -> None:
    """Debian 12 -> Ubuntu 24.04 (PostgreSQL 15 -> 16 paths), other tunables and admin keys: the
    image forces a replacement, whose user data is the *old* document (ignored input). That
    document must be exactly what the new stack would send: it holds only the keys."""
    old = _staging_with()
    new = _staging_with(
        image="linode/ubuntu24.04",
        workload={"peakConnections": 2000, "redisPolicy": "allkeys-lfu"},
        sshKeys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminKey000000000000000000000000000 me"],
    )
    before, after = old.one(INSTANCE), new.one(INSTANCE)
    assert before.inputs["image"] != after.inputs["image"]  # ForceNew: a replacement
    goal = goal_inputs_on_replacement(before.inputs, after.inputs, after.ignore_changes)
    assert goal["metadatas"] == after.inputs["metadatas"]
    # ...and the files it then receives are the new stack's, for the new image.
    assert any(p.startswith("etc/postgresql/16/main/") for p in _bundled(new))
    assert not any(p.startswith("etc/postgresql/15/") for p in _bundled(new))


def test_rollout_update_changes_when_and_only_when_a_rendered_file_changes() -> None:
    base = _staging_with()
    tunable = _staging_with(workload={"peakConnections": 4000, "redisPolicy": "allkeys-lfu"})
    # (volumeSizeGb is rendered: max_wal_size is a tenth of the volume.)
    not_rendered = _staging_with(tags=["staging", "team-a"])
    update = {
        name: r.one(COMMAND).inputs["update"]
        for name, r in (("base", base), ("tunable", tunable), ("other", not_rendered))
    }
    assert update["tunable"] != update["base"]
    assert update["other"] == update["base"]
    assert base.one(COMMAND).inputs["create"] == update["base"]


@pytest.mark.parametrize(
    "change",
    [
        {"services": {"haproxy": {"queueTimeoutSeconds": 20}}},
        {"sshKeys": ["ssh-rsa " + "A" * 716 + " admin@laptop"] * 3},
        {"label": "tunedstack-staging-renamed"},
    ],
    ids=["tunable", "ssh keys", "label"],
)
def test_a_change_that_should_not_replace_the_box_does_not(change: dict[str, Any]) -> None:
    base = _staging_with()
    changed = _staging_with(**change)
    before, after = base.one(INSTANCE).inputs, changed.one(INSTANCE).inputs
    for key in REPLACING_INPUTS:
        assert before.get(key) == after.get(key), key


def test_an_ssh_key_change_reaches_the_box_through_the_rollout() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminKey000000000000000000000000000 me"
    base, changed = _staging_with(), _staging_with(sshKeys=[key])
    assert changed.one(COMMAND).inputs["update"] != base.one(COMMAND).inputs["update"]
    assert _document(changed) == _document(base)


def test_preview_registers_everything_without_values() -> None:
    run = run_program("staging", stack_config("staging"), preview=True)
    assert len(run.of_type(INSTANCE)) == 1 and len(run.of_type(COMMAND)) == 1


# ---------------------------------------------------------------- bad stacks, refused at preview
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
        ("staging", {"tunedstack:adminCidrs": []}, "the rollout delivers every file over SSH"),
        (
            "staging",
            {"tunedstack:adminCidrs": ["198.51.100.0/24"]},
            "198.51.100.0/24 is reserved for documentation",
        ),
    ],
)
def test_bad_stack_fails_with_a_message_naming_the_key(
    stack: str, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProgramFailed, match="problem") as err:
        run_program(stack, stack_config(stack, overrides))
    assert message in str(err.value)
    assert f"stacks/Pulumi.{stack}.yaml" in str(err.value)
    assert [r.type for r in err.value.registrations] == ["pulumi:pulumi:Stack"]


def test_the_stack_files_as_shipped_are_refused_until_adminCidrs_is_set() -> None:
    doc = yaml.safe_load((REPO / "stacks" / "Pulumi.staging.yaml").read_text())
    shipped = {"tunedstack:adminCidrs": doc["config"]["tunedstack:adminCidrs"]}
    with pytest.raises(ProgramFailed, match="reserved for documentation"):
        run_program("staging", stack_config("staging", shipped), preview=True)


def test_budget_error_carries_the_table() -> None:
    with pytest.raises(ProgramFailed) as err:
        run_program(
            "staging",
            stack_config("staging", {"tunedstack:services": {"redis": {"maxmemoryMb": 3000}}}),
        )
    assert "Budget:" in str(err.value) and "plan total" in str(err.value)


def test_catalog_drift_from_linode_is_reported() -> None:
    with pytest.raises(ProgramFailed) as err:
        run_program("staging", stack_config("staging"), live_plans={"g6-standard-2": (8192, 4)})
    assert "Linode reports 4 vCPU / 8192 MB" in str(err.value)


# ---------------------------------------------------------------- the deploy's path to the box
def test_a_github_hosted_runner_fails_fast_on_up_but_may_preview() -> None:
    hosted = {"RUNNER_ENVIRONMENT": "github-hosted"}
    with pytest.raises(ProgramFailed) as err:
        run_program("staging", stack_config("staging"), env=hosted)
    assert "RUNNER_ENVIRONMENT = 'github-hosted'" in str(err.value)
    assert "self-hosted runner" in str(err.value) and "TUNEDSTACK_DEPLOY_FROM" in str(err.value)
    assert [r.type for r in err.value.registrations] == ["pulumi:pulumi:Stack"]
    assert run_program("staging", stack_config("staging"), preview=True, env=hosted)


def test_a_deploy_address_outside_adminCidrs_is_refused() -> None:
    with pytest.raises(ProgramFailed) as err:
        run_program("staging", stack_config("staging"), env={"TUNEDSTACK_DEPLOY_FROM": "1.2.3.4"})
    assert "tunedstack:adminCidrs" in str(err.value) and "add '1.2.3.4/32'" in str(err.value)
    inside = {"TUNEDSTACK_DEPLOY_FROM": "93.184.216.34", "RUNNER_ENVIRONMENT": "github-hosted"}
    assert run_program("staging", stack_config("staging"), env=inside)


# ---------------------------------------------------------------- what the running box allows
RUNNING = AccountNow(
    box={"label": "tunedstack-staging", "type": "g6-standard-2", "specs": [{"disk": 81920}]},
    volume={"label": "tunedstack-staging-data", "region": "us-east", "size": 20},
)


def test_a_running_box_may_grow() -> None:
    run = run_program(
        "staging", stack_config("staging", {"tunedstack:plan": "g6-standard-4"}), account=RUNNING
    )
    assert run.one(INSTANCE).inputs["type"] == "g6-standard-4"
    tokens = [token for token, _ in run.invokes]
    assert "linode:index/getInstances:getInstances" in tokens
    assert "linode:index/getVolumes:getVolumes" in tokens


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"tunedstack:plan": "g6-standard-1"},
            "tunedstack:plan = 'g6-standard-1': the running box tunedstack-staging (g6-standard-2) "
            "has a 81920 MB disk and g6-standard-1 allows 51200 MB",
        ),
        (
            {"tunedstack:region": "us-west"},
            "tunedstack:region = 'us-west': the data volume tunedstack-staging-data is in us-east",
        ),
        (
            {"tunedstack:volumeSizeGb": 10},
            "tunedstack:volumeSizeGb = 10: the data volume tunedstack-staging-data already "
            "has 20 GB",
        ),
    ],
    ids=["downsize", "region", "volume shrink"],
)
def test_a_change_linode_cannot_make_is_refused_at_preview(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProgramFailed) as err:
        run_program("staging", stack_config("staging", overrides), preview=True, account=RUNNING)
    assert message in str(err.value)
    assert [r.type for r in err.value.registrations] == ["pulumi:pulumi:Stack"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_replacement_preflight_suggests_is_of_the_instance_alone(stack: str) -> None:
    """`pulumi up --replace URN` names the URN the engine gives the instance (checked against
    the engine's own, from a run); a protected instance (prod) is unprotected first, since the
    engine refuses to replace a protected resource; never `pulumi destroy --target`, which the
    engine refuses while the volume depends on the instance (or destroys it with
    --target-dependents)."""
    urn = run_program(stack, stack_config(stack)).one(INSTANCE).urn
    bigger = {"type": "g6-dedicated-56", "specs": [{"disk": 10_000_000}]}
    running = AccountNow(box={"label": f"tunedstack-{stack}", **bigger})
    with pytest.raises(ProgramFailed) as err:
        run_program(stack, stack_config(stack), preview=True, account=running)
    message = str(err.value)
    assert f"`pulumi up --replace '{urn}'`" in message
    unprotect = f"`pulumi state unprotect '{urn}'` (the instance is protected), then"
    assert (unprotect in message) is (stack == "prod")
    assert "destroy" not in message


PRIVATE_REPO = {
    "tunedstack:app": json.dumps(
        {"git": {"url": "git@github.com:acme/shop.git", "ref": "v1.2.0", "deployKey": True}}
    )
}
APP_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAppDeployKey\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


def test_a_private_repository_is_cloned_with_the_deploy_key_secret() -> None:
    config = {**stack_config("staging"), **PRIVATE_REPO, "tunedstack:appDeployKey": APP_KEY}
    run = run_program("staging", config, secret_keys=["tunedstack:appDeployKey"])
    command = run.one(COMMAND)
    assert "stdin" in command.secret_paths
    raw = base64.b64decode(command.inputs["stdin"])
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        key_file = tar.extractfile(PATHS.app_deploy_key.lstrip("/"))
        assert key_file is not None and key_file.read().decode() == APP_KEY + "\n"
        assert tar.getmember(PATHS.app_deploy_key.lstrip("/")).mode == 0o600
    exported = json.dumps(run.outputs)
    assert "AppDeployKey" not in exported
    for registration in run.resources:
        for path, value in _flatten(registration.inputs):
            if path not in registration.secret_paths:
                assert "AppDeployKey" not in str(value), (registration.name, path)


def _flatten(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _flatten(v, f"{path}.{k}" if path else k)]
    return [(path, value)]


@pytest.mark.parametrize("stored", ["plain", "absent"])
def test_a_deploy_key_that_is_no_secret_is_refused_without_showing_it(stored: str) -> None:
    config = {**stack_config("staging"), **PRIVATE_REPO}
    if stored == "plain":
        config["tunedstack:appDeployKey"] = APP_KEY
    with pytest.raises(ProgramFailed) as e:
        run_program("staging", config)
    message = str(e.value)
    assert "tunedstack:appDeployKey" in message
    assert ("is in plain text" if stored == "plain" else "is required by") in message
    assert "AppDeployKey" not in message and "b3Bl" not in message


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("tunedstack:sshPrivateKey", "generated by the program"),
        ("tunedstack:volumeSize", "unknown setting; did you mean `volumeSizeGb`? valid keys:"),
    ],
)
def test_a_setting_the_program_does_not_read_is_refused(key: str, says: str) -> None:
    config = {**stack_config("staging"), key: APP_KEY}
    with pytest.raises(ProgramFailed) as e:
        run_program("staging", config)
    assert f"{key} = (missing): " in str(e.value) and says in str(e.value)
    assert "b3Bl" not in str(e.value)
