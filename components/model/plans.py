"""Offline catalog of Linode plans and regions, so sizing needs no API token.

Figures are Linode's published `memory` (MB), `vcpus` and `disk` (MB) for each type id, as the
API's `/linode/types` returns them. The Pulumi program cross-checks the live API when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PlanClass = Literal["nanode", "standard", "dedicated", "highmem"]


@dataclass(frozen=True)
class Plan:
    id: str
    plan_class: PlanClass
    vcpus: int
    memory_mb: int
    disk_mb: int

    @property
    def label(self) -> str:
        return f"{self.id} ({self.vcpus} vCPU, {self.memory_mb // 1024} GB RAM, {self.plan_class})"


def _plan(id: str, plan_class: PlanClass, vcpus: int, memory_gb: int, disk_gb: int) -> Plan:
    return Plan(id, plan_class, vcpus, memory_gb * 1024, disk_gb * 1024)


PLANS: dict[str, Plan] = {
    p.id: p
    for p in (
        _plan("g6-nanode-1", "nanode", 1, 1, 25),
        _plan("g6-standard-1", "standard", 1, 2, 50),
        _plan("g6-standard-2", "standard", 2, 4, 80),
        _plan("g6-standard-4", "standard", 4, 8, 160),
        _plan("g6-standard-6", "standard", 6, 16, 320),
        _plan("g6-standard-8", "standard", 8, 32, 640),
        _plan("g6-standard-16", "standard", 16, 64, 1280),
        _plan("g6-standard-20", "standard", 20, 96, 1920),
        _plan("g6-standard-24", "standard", 24, 128, 2560),
        _plan("g6-standard-32", "standard", 32, 192, 3840),
        _plan("g6-dedicated-2", "dedicated", 2, 4, 80),
        _plan("g6-dedicated-4", "dedicated", 4, 8, 160),
        _plan("g6-dedicated-8", "dedicated", 8, 16, 320),
        _plan("g6-dedicated-16", "dedicated", 16, 32, 640),
        _plan("g6-dedicated-32", "dedicated", 32, 64, 1280),
        _plan("g6-dedicated-48", "dedicated", 48, 96, 1920),
        _plan("g6-dedicated-50", "dedicated", 50, 128, 2560),
        _plan("g6-dedicated-56", "dedicated", 56, 256, 5120),
        _plan("g6-dedicated-64", "dedicated", 64, 512, 7200),
        _plan("g7-highmem-1", "highmem", 2, 24, 20),
        _plan("g7-highmem-2", "highmem", 2, 48, 40),
        _plan("g7-highmem-4", "highmem", 4, 90, 90),
        _plan("g7-highmem-8", "highmem", 8, 150, 200),
        _plan("g7-highmem-16", "highmem", 16, 300, 340),
    )
}

# Core compute regions with Block Storage (the data volume needs it).
REGIONS: frozenset[str] = frozenset(
    {
        "ap-northeast",
        "ap-south",
        "ap-southeast",
        "ap-west",
        "au-mel",
        "br-gru",
        "ca-central",
        "de-fra-2",
        "es-mad",
        "eu-central",
        "eu-west",
        "fr-par",
        "gb-lon",
        "id-cgk",
        "in-bom-2",
        "in-maa",
        "it-mil",
        "jp-osa",
        "jp-tyo-3",
        "nl-ams",
        "se-sto",
        "sg-sin-2",
        "us-central",
        "us-east",
        "us-iad",
        "us-lax",
        "us-mia",
        "us-ord",
        "us-sea",
        "us-southeast",
        "us-west",
    }
)


def find_plan(plan_id: str) -> Plan | None:
    return PLANS.get(plan_id)
