"""The Pulumi program: settings -> sizing -> render -> Linode resources. Logic is in components/."""

import os
from typing import Any

import pulumi
import pulumi_linode as linode

from components.cloud.backups import BackupBucket
from components.cloud.config import app_deploy_key, load_pulumi_config
from components.cloud.firewall import BoxFirewall
from components.cloud.instance import Box
from components.cloud.keys import BoxKeys
from components.cloud.passwords import ServicePasswords
from components.cloud.preflight import DataVolumeNow, LiveAccount, LivePlan, RunningBox, preflight
from components.cloud.rollout import Rollout
from components.cloud.volume import DataVolume
from components.model.backups import BackupKeys, BackupRepository
from components.model.errors import StackError
from components.model.render import Secrets, render_files
from components.model.userdata import cloud_config


def live_plan(plan: str) -> LivePlan:
    found = linode.get_instance_type(id=plan)
    return LivePlan(memory_mb=int(found.memory), vcpus=int(found.vcpus))


def _by_label(token: str, label: str, listed: str) -> list[dict[str, Any]]:
    # The untyped invoke: only the fields read below need to be there.
    found = pulumi.runtime.invoke(token, {"filters": [{"name": "label", "values": [label]}]})
    return list((found.value or {}).get(listed) or [])


def running_box(label: str) -> RunningBox | None:
    for box in _by_label("linode:index/getInstances:getInstances", label, "instances"):
        return RunningBox(label, str(box["type"]), int(box["specs"][0]["disk"]))
    return None


def data_volume_now(label: str) -> DataVolumeNow | None:
    for volume in _by_label("linode:index/getVolumes:getVolumes", label, "volumes"):
        attached = volume.get("linodeId")
        return DataVolumeNow(
            label,
            str(volume["region"]),
            int(volume["size"]),
            int(attached) if attached is not None else None,
            tuple(str(t) for t in volume.get("tags") or ()),
        )
    return None


stack = pulumi.get_stack()
try:
    settings = load_pulumi_config(stack)
    deploy_key = app_deploy_key(settings, stack)
    sizing = preflight(
        stack,
        settings,
        LiveAccount(live_plan, running_box, data_volume_now),
        os.environ,
        pulumi.runtime.is_dry_run(),
        pulumi.get_project(),
        pulumi.log.warn,
    )
except StackError as e:
    raise pulumi.RunError(str(e)) from None

label = settings.instance_label(stack)
tags = sorted({"tunedstack", stack, *settings.tags})
passwords = ServicePasswords(stack)
keys = BoxKeys(stack)
backups = BackupBucket(stack, stack, settings) if settings.backups_enabled else None
no_repository: pulumi.Output[BackupRepository | None] = pulumi.Output.from_input(None)
no_keys: pulumi.Output[BackupKeys | None] = pulumi.Output.from_input(None)
rendered = pulumi.Output.all(
    passwords.postgres,
    passwords.redis,
    keys.deploy_public_key,
    deploy_key or "",
    backups.repository if backups else no_repository,
    backups.keys if backups else no_keys,
).apply(
    lambda v: render_files(
        stack, settings, sizing, Secrets(v[0], v[1], v[2], v[3], v[5]), repository=v[4]
    )
)
document = keys.first_boot().apply(lambda k: cloud_config(k, stack))

firewall = BoxFirewall(stack, label, settings.admin_cidrs, tags)
box = Box(stack, label, settings, document, passwords.root, firewall.firewall_id, tags)
volume = DataVolume(stack, stack, settings, box.instance_id, tags)
Rollout(
    stack,
    box.ipv4,
    keys.host_public_key,
    keys.deploy_private_key,
    box.instance_id,
    rendered,
    opts=pulumi.ResourceOptions(depends_on=[volume]),
)

pulumi.export("ipv4", box.ipv4)
pulumi.export("ipv6", box.ipv6)
pulumi.export("url", box.ipv4.apply(lambda ip: f"http://{ip}/"))
pulumi.export("ssh", box.ipv4.apply(lambda ip: f"ssh root@{ip}"))
pulumi.export("hostKey", keys.host_public_key)
pulumi.export("volumeId", volume.volume_id)
pulumi.export("volumeDevice", volume.device)
if backups is not None:
    pulumi.export("backupBucket", backups.bucket)
    # Without these keys the backups are unreadable: keep a copy outside Pulumi's state
    # (`pulumi stack output backupKeys --show-secrets`).
    pulumi.export(
        "backupKeys",
        backups.keys.apply(
            lambda k: {"postgresCipherPass": k.postgres_cipher, "resticPassword": k.redis_password}
        ),
    )
pulumi.export("contentHash", pulumi.Output.unsecret(rendered.apply(lambda r: r.content_hash)))
pulumi.export("sizing", {line.name: line.mb for line in sizing.budget.lines()})
pulumi.export(
    "tunables",
    {
        "gunicornWorkers": sizing.gunicorn.workers,
        "haproxyMaxconn": sizing.haproxy.maxconn,
        "postgresMaxConnections": sizing.postgres.max_connections,
        "redisMaxmemoryMb": sizing.redis.maxmemory_mb,
    },
)
