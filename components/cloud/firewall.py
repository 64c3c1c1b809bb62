"""The Linode Cloud Firewall: drop by default; HTTP(S) and ICMP from anywhere, SSH from admins."""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_linode as linode

from components.model.layout import PORTS, firewall_label

ANYWHERE_V4 = ["0.0.0.0/0"]
ANYWHERE_V6 = ["::/0"]


def _split(cidrs: list[str]) -> tuple[list[str], list[str]]:
    v4 = [c for c in cidrs if ipaddress.ip_network(c).version == 4]
    return v4, [c for c in cidrs if c not in v4]


def _from_anywhere(label: str, protocol: str, port: int | None) -> linode.FirewallInboundArgs:
    return linode.FirewallInboundArgs(
        label=label,
        action="ACCEPT",
        protocol=protocol,
        ports=None if port is None else str(port),
        ipv4s=ANYWHERE_V4,
        ipv6s=ANYWHERE_V6,
    )


def inbound_rules(admin_cidrs: list[str]) -> list[linode.FirewallInboundArgs]:
    rules = [
        _from_anywhere("http", "TCP", PORTS.http),
        _from_anywhere("https", "TCP", PORTS.https),
        _from_anywhere("icmp", "ICMP", None),
    ]
    if admin_cidrs:
        v4, v6 = _split(admin_cidrs)
        rules.append(
            linode.FirewallInboundArgs(
                label="ssh-admins",
                action="ACCEPT",
                protocol="TCP",
                ports=str(PORTS.ssh),
                ipv4s=v4 or None,
                ipv6s=v6 or None,
            )
        )
    return rules


class BoxFirewall(pulumi.ComponentResource):
    """Attached through the instance's `firewall_id`, so the box is covered from its first boot."""

    firewall_id: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        label: str,
        admin_cidrs: list[str],
        tags: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tunedstack:firewall:BoxFirewall", name, None, opts)
        firewall = linode.Firewall(
            f"{name}-firewall",
            label=firewall_label(label),
            inbound_policy="DROP",
            outbound_policy="ACCEPT",
            inbounds=inbound_rules(admin_cidrs),
            tags=tags,
            # Labels are unique per account: a create-first replacement would be refused.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        # Linode hands ids out as strings; the instance takes an int.
        self.firewall_id = firewall.id.apply(int)
        self.register_outputs({"firewall_id": self.firewall_id})
