"""The Pulumi program: settings -> sizing -> render -> Linode resources. Logic is in components/."""

import pulumi
import pulumi_linode as linode

from components.cloud.config import load_pulumi_config
from components.cloud.firewall import BoxFirewall
from components.cloud.instance import Box
from components.cloud.passwords import ServicePasswords
from components.cloud.preflight import LivePlan, preflight, rollout_key
from components.cloud.rollout import Rollout
from components.cloud.volume import DataVolume
from components.model.errors import StackError
from components.model.render import Secrets, render_files
from components.model.userdata import cloud_config


def live_plan(plan: str) -> LivePlan:
    found = linode.get_instance_type(id=plan)
    return LivePlan(memory_mb=int(found.memory), vcpus=int(found.vcpus))


stack = pulumi.get_stack()
try:
    settings = load_pulumi_config(stack)
    sizing = preflight(stack, settings, live_plan)
    ssh_key = rollout_key(stack, settings)
except StackError as e:
    raise pulumi.RunError(str(e)) from None

label = settings.instance_label(stack)
tags = sorted({"tunedstack", stack, *settings.tags})
passwords = ServicePasswords(stack)
rendered = pulumi.Output.all(passwords.postgres, passwords.redis).apply(
    lambda pw: render_files(stack, settings, sizing, Secrets(pw[0], pw[1]))
)
document = rendered.apply(lambda r: cloud_config(r, label, settings.ssh_keys))

firewall = BoxFirewall(stack, label, settings.admin_cidrs, tags)
box = Box(stack, label, settings, document, passwords.root, firewall.firewall_id, tags)
volume = DataVolume(stack, stack, settings, box.instance_id, tags)
if ssh_key is not None:
    Rollout(stack, box.ipv4, ssh_key, rendered, opts=pulumi.ResourceOptions(depends_on=[volume]))

pulumi.export("ipv4", box.ipv4)
pulumi.export("ipv6", box.ipv6)
pulumi.export("url", box.ipv4.apply(lambda ip: f"http://{ip}/"))
pulumi.export("ssh", box.ipv4.apply(lambda ip: f"ssh root@{ip}"))
pulumi.export("volumeId", volume.volume_id)
pulumi.export("volumeDevice", volume.device)
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
