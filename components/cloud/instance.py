"""The Linode instance. Its user data only installs the SSH keys the rollout needs (see
components/model/userdata.py); every file reaches the box through the rollout."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pulumi
import pulumi_linode as linode

from components.model.settings import Settings
from components.model.userdata import user_data_b64

# Inputs whose change replaces the instance (ForceNew in terraform-provider-linode's instance
# schema). rootPass is kept on the list: older provider versions replace for it, the current
# one resets it in place with a reboot; either way it must not change. `authorizedKeys` and
# `authorizedUsers` are never set: admin keys are a file the rollout keeps, so adding one
# replaces nothing.
REPLACING_INPUTS = (
    "image",
    "rootPass",
    "authorizedKeys",
    "authorizedUsers",
    "firewallId",
    "metadatas",
    "backupId",
    "stackscriptId",
    "stackscriptData",
    "networkHelper",
)


# Linode hands out private IPv4 addresses from this block; every other address is public.
LINODE_PRIVATE_V4 = ipaddress.ip_network("192.168.128.0/17")


def public_ipv4(addresses: Sequence[str]) -> str:
    public = [a for a in addresses if ipaddress.ip_address(a) not in LINODE_PRIVATE_V4]
    if not public:
        raise ValueError(f"the instance has no public IPv4 address among {list(addresses)}")
    return public[0]


BOX_TYPE = "tunedstack:instance:Box"
INSTANCE_TYPE = "linode:index/instance:Instance"


def instance_name(name: str) -> str:
    return f"{name}-instance"


def instance_urn(project: str, stack: str) -> str:
    """The URN the engine gives the stack's Linode: its type is qualified by its parent's (the
    Box component, named after the stack), as `pulumi up --replace` and `pulumi state` want it."""
    return f"urn:pulumi:{stack}::{project}::{BOX_TYPE}${INSTANCE_TYPE}::{instance_name(stack)}"


class Box(pulumi.ComponentResource):
    ipv4: pulumi.Output[str]
    ipv6: pulumi.Output[str]
    instance_id: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        label: str,
        settings: Settings,
        document: pulumi.Output[str],
        root_password: pulumi.Output[str],
        firewall_id: pulumi.Output[int],
        tags: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(BOX_TYPE, name, None, opts)
        instance = linode.Instance(
            instance_name(name),
            label=label,
            region=settings.region,
            type=settings.plan,
            image=settings.image,
            root_pass=root_password,
            private_ip=settings.private_ip,
            backups_enabled=settings.linode_backups_enabled,
            firewall_id=firewall_id,
            tags=tags,
            metadatas=[
                linode.InstanceMetadataArgs(
                    # Linode's API does not hide it and it holds the host's private key.
                    user_data=pulumi.Output.secret(document.apply(user_data_b64)),
                )
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=settings.protected,
                # The engine creates a replacement before deleting the old one unless told
                # otherwise; Linode labels are unique per account, so that create would fail.
                delete_before_replace=True,
                # The document never changes for a stack (it holds only the keys), but an older
                # tunedstack may have sent another: it must never replace a running box. A
                # replacement boots with the old document, which is enough to reach it.
                ignore_changes=["metadatas"],
            ),
        )
        self.ipv4 = instance.ipv4s.apply(public_ipv4)
        self.ipv6 = instance.ipv6.apply(lambda v6: v6.split("/")[0])
        self.instance_id = instance.id.apply(int)
        self.register_outputs({"ipv4": self.ipv4, "ipv6": self.ipv6})
