from __future__ import annotations

from components.model.plans import PLANS, REGIONS, find_plan


def test_catalog_has_each_class_and_sane_figures() -> None:
    assert {p.plan_class for p in PLANS.values()} == {"nanode", "standard", "dedicated", "highmem"}
    for plan in PLANS.values():
        assert plan.vcpus >= 1 and plan.memory_mb >= 1024 and plan.disk_mb > 0


def test_lookup() -> None:
    plan = find_plan("g6-standard-2")
    assert plan is not None and (plan.vcpus, plan.memory_mb) == (2, 4096)
    assert find_plan("nope") is None
    assert "us-east" in REGIONS
