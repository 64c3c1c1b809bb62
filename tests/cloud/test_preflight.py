from __future__ import annotations

from typing import Any

import pytest

from components.cloud.preflight import (
    DataVolumeNow,
    LiveAccount,
    LivePlan,
    RunningBox,
    check_live_plan,
    deploy_path_problems,
    label_problems,
    preflight,
    running_box_problems,
    volume_problems,
    volume_warnings,
)
from components.model.errors import SettingsError, SizingError
from components.model.plans import PLANS
from components.model.settings import validate


def test_live_plan_matching_the_catalog_passes(minimal_raw: dict[str, Any]) -> None:
    check_live_plan(validate(minimal_raw, "t"), LivePlan(4096, 2), "t")


def test_live_plan_drift_names_the_key(minimal_raw: dict[str, Any]) -> None:
    with pytest.raises(SizingError, match=r"tunedstack:plan = 'g6-standard-2': Linode reports"):
        check_live_plan(validate(minimal_raw, "t"), LivePlan(4096, 4), "t")


def _account() -> LiveAccount:
    return LiveAccount(lambda _: LivePlan(4096, 2), lambda _: None, lambda _: None)


def test_preflight_sizes_and_checks_the_document(minimal_raw: dict[str, Any]) -> None:
    sizing = preflight("t", validate(minimal_raw, "t"), _account())
    assert sizing.plan.id == "g6-standard-2"


def test_admin_keys_never_reach_the_document(minimal_raw: dict[str, Any]) -> None:
    """200 keys overflowed the old document; they are a rendered file now."""
    many_keys = {**minimal_raw, "sshKeys": ["ssh-ed25519 " + "A" * 68 + " k"] * 200}
    assert preflight("t", validate(many_keys, "t"), _account())


@pytest.mark.parametrize(
    ("cidrs", "env", "dry_run", "fragment"),
    [
        ([], {}, True, "add the address `pulumi up` runs from"),
        (["192.0.2.0/24"], {}, True, "192.0.2.0/24 is reserved for documentation"),
        (["2001:db8::/48"], {}, True, "2001:db8::/48 is reserved for documentation"),
        (["93.184.216.0/24"], {"RUNNER_ENVIRONMENT": "github-hosted"}, False, "self-hosted"),
        (["93.184.216.0/24"], {"TUNEDSTACK_DEPLOY_FROM": "10.0.0.1"}, True, "add '10.0.0.1/32'"),
        (["93.184.216.0/24"], {"TUNEDSTACK_DEPLOY_FROM": "nope"}, True, "must be the IP address"),
    ],
)
def test_deploy_path_problems(
    minimal_raw: dict[str, Any], cidrs: list[str], env: dict[str, str], dry_run: bool, fragment: str
) -> None:
    settings = validate({**minimal_raw, "adminCidrs": cidrs}, "t")
    problems = deploy_path_problems(settings, env, dry_run)
    assert any(fragment in str(p) for p in problems), problems


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"RUNNER_ENVIRONMENT": "self-hosted"},
        {"RUNNER_ENVIRONMENT": "github-hosted", "TUNEDSTACK_DEPLOY_FROM": "93.184.216.34"},
    ],
)
def test_a_reachable_deploy_passes(minimal_raw: dict[str, Any], env: dict[str, str]) -> None:
    settings = validate({**minimal_raw, "adminCidrs": ["93.184.216.0/24"]}, "t")
    assert deploy_path_problems(settings, env, dry_run=False) == []


def test_a_same_plan_or_bigger_disk_is_no_problem(minimal_raw: dict[str, Any]) -> None:
    settings = validate(minimal_raw, "t")  # g6-standard-2: 81920 MB
    assert running_box_problems(settings, None) == []
    assert running_box_problems(settings, RunningBox("b", "g6-standard-2", 81920)) == []
    assert running_box_problems(settings, RunningBox("b", "g6-standard-1", 51200)) == []
    assert running_box_problems(settings, RunningBox("b", "g6-standard-4", 163840)) != []


def test_volume_changes_that_would_lose_the_data(minimal_raw: dict[str, Any]) -> None:
    settings = validate({**minimal_raw, "volumeSizeGb": 20}, "t")
    region = settings.region
    assert volume_problems(settings, DataVolumeNow("v", region, 20)) == []
    assert volume_problems(settings, DataVolumeNow("v", region, 10)) == []  # it grows
    moved, shrunk = DataVolumeNow("v", "eu-west", 20), DataVolumeNow("v", region, 40)
    assert "cannot move between regions" in str(volume_problems(settings, moved)[0])
    assert "only grow" in str(volume_problems(settings, shrunk)[0])


def test_a_detached_volume_gets_the_recovery_printed_and_stops_nothing(
    minimal_raw: dict[str, Any],
) -> None:
    settings = validate(minimal_raw, "t")
    attached = DataVolumeNow("tunedstack-t-data", settings.region, 20, attached_to=4242)
    detached = DataVolumeNow("tunedstack-t-data", settings.region, 20, attached_to=None)
    assert volume_warnings(None) == [] and volume_warnings(attached) == []
    (warning,) = volume_warnings(detached)
    assert "run `pulumi refresh`, then `pulumi up`" in warning
    said: list[str] = []
    live = LiveAccount(
        lambda plan: LivePlan(PLANS[plan].memory_mb, PLANS[plan].vcpus),
        lambda label: None,
        lambda label: detached,
    )
    preflight("t", settings, live, warn=said.append)  # a warning, not an error
    assert said == [warning]


@pytest.mark.parametrize(
    ("stack", "label", "says"),
    [
        ("a" * 40, "", "the instance label 'tunedstack-aaaa"),
        ("stage", "box--one", "may not hold a doubled"),
        ("q__a", "box-one", "the volume label 'tunedstack-q__a-data' (from the stack's name)"),
        ("qa..b", "", "may not hold a doubled"),
    ],
)
def test_labels_built_from_the_stack_are_checked_as_linode_does(
    minimal_raw: dict[str, Any], stack: str, label: str, says: str
) -> None:
    raw = {**minimal_raw, "label": label} if label else minimal_raw
    try:
        settings = validate(raw, stack)
    except SettingsError as e:  # a label the setting itself refuses
        assert says in str(e) and "tunedstack:label" in str(e)
        return
    problems = label_problems(settings, stack)
    assert problems and says in str(problems[0]), problems


def test_the_stack_labels_linode_takes_pass(minimal_raw: dict[str, Any]) -> None:
    for stack in ("staging", "prod", "eu-west-2.canary"):
        assert label_problems(validate(minimal_raw, stack), stack) == []


def test_a_volume_of_another_stack_under_the_same_cut_label_is_refused(
    minimal_raw: dict[str, Any],
) -> None:
    settings = validate(minimal_raw, "t")
    theirs = DataVolumeNow("v", settings.region, 20, tags=("customer-a-staging", "tunedstack"))
    ours = DataVolumeNow("v", settings.region, 20, tags=("customer-a-staging-eu", "tunedstack"))
    (problem,) = volume_problems(settings, theirs, "customer-a-staging-eu")
    assert "already another stack's volume (tagged customer-a-staging)" in str(problem)
    assert volume_problems(settings, ours, "customer-a-staging-eu") == []
