"""`tunedstack:backups`: off-box backups of the data, on in production and required there;
`tunedstack:linodeBackups`: Linode's backups of the root disk, a separate setting."""

from __future__ import annotations

from typing import Any

import pytest

from components.model.errors import SettingsError
from components.model.settings import validate


@pytest.fixture
def raw() -> dict[str, Any]:
    return {"region": "us-east", "plan": "g6-standard-2"}


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as err:
        validate(raw, "stacks/Pulumi.test.yaml")
    return str(err.value)


def test_backups_are_off_in_staging_and_on_in_production_by_default(raw: dict[str, Any]) -> None:
    assert not validate(raw, "t").backups_enabled
    prod = validate({**raw, "environment": "production", "adminCidrs": ["10.1.0.0/16"]}, "t")
    assert prod.backups_enabled and prod.linode_backups_enabled


def test_staging_can_turn_them_on(raw: dict[str, Any]) -> None:
    assert validate({**raw, "backups": {"enabled": True}}, "t").backups_enabled


def test_production_may_not_turn_them_off(raw: dict[str, Any]) -> None:
    prod = {**raw, "environment": "production", "adminCidrs": ["10.1.0.0/16"]}
    text = _error({**prod, "backups": {"enabled": False}})
    assert "tunedstack:backups.enabled = False" in text
    assert "production stacks keep their data backed up off the box" in text


@pytest.mark.parametrize("old", [True, False, "auto"])
def test_the_old_yes_no_backups_setting_says_where_it_went(raw: dict[str, Any], old: Any) -> None:
    text = _error({**raw, "backups": old})
    assert "tunedstack:backups" in text and "`linodeBackups:" in text


@pytest.mark.parametrize(
    "schedule",
    [
        "hourly",
        "daily",
        "weekly",
        "03:00",
        "Sun 03:00",
        "Mon..Sat 23:59",
        "Mon,Wed,Fri 00:00",
        "Sat..Sun,Wed 12:30",
    ],
)
def test_schedules_systemd_can_read(raw: dict[str, Any], schedule: str) -> None:
    s = validate({**raw, "backups": {"fullSchedule": schedule}}, "t")
    assert s.backups.full_schedule == schedule


@pytest.mark.parametrize(
    "schedule",
    ["3:00", "24:00", "sunday 03:00", "*-*-* 03:00", "Sun", "Sun 03:00; rm -rf /", "monthly", ""],
)
def test_a_bad_schedule_names_its_key_and_the_forms_it_takes(
    raw: dict[str, Any], schedule: str
) -> None:
    text = _error({**raw, "backups": {"redisSchedule": schedule}})
    assert "tunedstack:backups.redisSchedule" in text and "`Mon..Sat 03:00`" in text


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://us-east-1.linodeobjects.com",
        "a b.com",
        "host/path",
        "localhost",
        "x.com:99999999",
        "-x.com",
    ],
)
def test_a_bad_endpoint_is_refused(raw: dict[str, Any], endpoint: str) -> None:
    text = _error({**raw, "backups": {"endpoint": endpoint}})
    assert "tunedstack:backups.endpoint" in text and "no scheme or path" in text


def test_an_endpoint_may_carry_a_port(raw: dict[str, Any]) -> None:
    s = validate({**raw, "backups": {"endpoint": "s3.rehearsal.test:9443"}}, "t")
    assert s.backups.endpoint == "s3.rehearsal.test:9443"


def test_retention_is_by_count_or_by_days_not_both(raw: dict[str, Any]) -> None:
    assert validate({**raw, "backups": {"pitrDays": 14}}, "t").backups.pitr_days == 14
    text = _error({**raw, "backups": {"pitrDays": 14, "keepFull": 3}})
    assert "tunedstack:backups" in text and "either `keepFull` or `pitrDays`" in text
    assert "tunedstack:backups.keepFull" in _error({**raw, "backups": {"keepFull": 0}})


def test_an_unknown_backup_key_gets_the_valid_ones(raw: dict[str, Any]) -> None:
    text = _error({**raw, "backups": {"enable": True}})
    assert "did you mean `enabled`?" in text
