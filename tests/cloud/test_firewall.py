from __future__ import annotations

from components.cloud.firewall import BoxFirewall, inbound_rules
from tests.pulumi_program import run_body


def test_ssh_rule_splits_v4_and_v6_admin_networks() -> None:
    rules = {r.label: r for r in inbound_rules(["198.51.100.0/24", "2001:db8::/32"])}
    assert rules["ssh-admins"].ipv4s == ["198.51.100.0/24"]
    assert rules["ssh-admins"].ipv6s == ["2001:db8::/32"]


def test_no_admin_networks_means_no_ssh_at_all() -> None:
    assert "ssh-admins" not in {r.label for r in inbound_rules([])}


def test_component_registers_one_dropping_firewall() -> None:
    run = run_body("t", {}, lambda: BoxFirewall("t", "box", ["198.51.100.0/24"], ["x"]))
    fw = run.one("linode:index/firewall:Firewall")
    assert fw.inputs["inboundPolicy"] == "DROP"
    assert fw.parent.endswith("$tunedstack:firewall:BoxFirewall::t")
