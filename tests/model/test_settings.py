"""Settings: the model, both loaders, and an error message for each kind of bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.model.errors import SettingsError
from components.model.settings import (
    Settings,
    load_stack_file,
    raw_from_stack_text,
    validate,
)


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as err:
        validate(raw, "stacks/Pulumi.test.yaml")
    return str(err.value)


def test_minimal_stack_gets_defaults(minimal: Settings) -> None:
    assert minimal.image == "linode/debian12"
    assert minimal.workload.peak_connections == 1000
    assert minimal.app.wsgi == "tunedstack_app:app"
    assert minimal.instance_label("staging") == "tunedstack-staging"
    assert not minimal.protected and not minimal.backups_enabled


def test_unknown_plan_names_the_key_the_value_and_valid_plans(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "plan": "g6-standard-3"})
    assert "stacks/Pulumi.test.yaml" in text
    assert "tunedstack:plan = 'g6-standard-3': unknown Linode plan; valid: g6-nanode-1" in text


def test_unknown_region(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "region": "mars-1"})
    assert "tunedstack:region = 'mars-1': unknown Linode region; valid:" in text
    assert "us-east" in text


@pytest.mark.parametrize(
    ("cidr", "hint"),
    [("203.0.113.5/24", "has host bits set"), ("10.0.0.0/33", "not a network"), ("ssh", "CIDR")],
)
def test_malformed_cidr(minimal_raw: dict[str, Any], cidr: str, hint: str) -> None:
    text = _error({**minimal_raw, "adminCidrs": ["198.51.100.0/24", cidr]})
    assert "tunedstack:adminCidrs = " in text
    assert hint in text
    assert "e.g. `203.0.113.0/24`" in text


def test_nested_key_is_named_with_its_path(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "workload": {"peakConnections": -5}})
    assert (
        "tunedstack:workload.peakConnections = -5: Input should be greater than or equal to 10"
        in text
    )


def test_unknown_key_lists_the_valid_ones(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "workload": {"peakConnection": 5}})
    assert (
        "tunedstack:workload.peakConnection = 5: unknown setting; did you mean "
        "`peakConnections`? valid keys: peakConnections" in text
    )


def test_production_requires_admin_cidrs(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "environment": "production"})
    assert "production stacks must set `adminCidrs`" in text


@pytest.mark.parametrize("given", [False, True])
def test_an_explicit_yes_or_no_wins_over_the_environment(
    minimal_raw: dict[str, Any], given: bool
) -> None:
    for environment in ("staging", "production"):
        raw = {**minimal_raw, "environment": environment, "adminCidrs": ["203.0.113.0/24"]}
        s = validate({**raw, "linodeBackups": given, "protect": given}, "t")
        assert (s.linode_backups_enabled, s.protected) == (given, given)


def test_auto_is_the_only_word_a_yes_or_no_setting_takes(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "linodeBackups": "sometimes"})
    assert "tunedstack:linodeBackups = 'sometimes'" in text


def test_production_defaults_to_protection_and_backups(minimal_raw: dict[str, Any]) -> None:
    s = validate({**minimal_raw, "environment": "production", "adminCidrs": ["10.1.0.0/16"]}, "t")
    assert s.protected and s.backups_enabled and s.linode_backups_enabled


def test_threads_need_gthread(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "services": {"gunicorn": {"threads": 4}}})
    assert "tunedstack:services.gunicorn" in text and "needs `workerClass: gthread`" in text


def test_sysctl_override_forms(minimal_raw: dict[str, Any]) -> None:
    s = validate(
        {
            **minimal_raw,
            "sysctl": {
                "vm.swappiness": 1,
                "net.ipv4.tcp_syncookies": {"value": 0, "reason": "SYN proxy upstream"},
            },
        },
        "t",
    )
    assert s.sysctl["vm.swappiness"].value == "1" and s.sysctl["vm.swappiness"].reason is None
    assert s.sysctl["net.ipv4.tcp_syncookies"].reason == "SYN proxy upstream"


def test_malformed_sysctl_key(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "sysctl": {"somaxconn": 1}})
    assert "tunedstack:sysctl" in text and "is not a sysctl key" in text


def test_bad_wsgi_target(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "app": {"wsgi": "myapp"}})
    assert "tunedstack:app.wsgi = 'myapp': must be `module:callable`" in text


def test_stack_file_ignores_other_namespaces() -> None:
    raw = raw_from_stack_text(
        "config:\n  linode:token: {secure: abc}\n  tunedstack:plan: g6-nanode-1\n", "f"
    )
    assert raw == {"plan": "g6-nanode-1"}


def test_a_key_the_model_does_not_know_is_an_error(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "volumeSize": 20})
    assert "tunedstack:volumeSize" in text and "unknown setting; did you mean" in text


def test_a_retired_setting_says_what_became_of_it(minimal_raw: dict[str, Any]) -> None:
    text = _error({**minimal_raw, "sshPrivateKey": {"secure": "def"}})
    assert "tunedstack:sshPrivateKey" in text and "generated by the program" in text


def test_missing_stack_file_lists_the_stacks(repo: Path) -> None:
    with pytest.raises(SettingsError, match=r"no such stack file; stacks: prod, staging"):
        load_stack_file(repo / "stacks", "qa")


def test_both_project_stacks_load(stack_settings: Settings) -> None:
    assert stack_settings.region and stack_settings.plan


def test_prod_is_production_and_staging_is_not(repo: Path) -> None:
    assert load_stack_file(repo / "stacks", "prod").is_production
    assert not load_stack_file(repo / "stacks", "staging").is_production
