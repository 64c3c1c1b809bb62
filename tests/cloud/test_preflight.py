from __future__ import annotations

from typing import Any

import pytest

from components.cloud.preflight import LivePlan, check_live_plan, preflight
from components.model.errors import SizingError
from components.model.settings import validate
from components.model.userdata import UserDataTooLarge


def test_live_plan_matching_the_catalog_passes(minimal_raw: dict[str, Any]) -> None:
    check_live_plan(validate(minimal_raw, "t"), LivePlan(4096, 2), "t")


def test_live_plan_drift_names_the_key(minimal_raw: dict[str, Any]) -> None:
    with pytest.raises(SizingError, match=r"tunedstack:plan = 'g6-standard-2': Linode reports"):
        check_live_plan(validate(minimal_raw, "t"), LivePlan(4096, 4), "t")


def test_preflight_sizes_and_checks_the_document(minimal_raw: dict[str, Any]) -> None:
    sizing = preflight("t", validate(minimal_raw, "t"), lambda plan: LivePlan(4096, 2))
    assert sizing.plan.id == "g6-standard-2"
    too_many_keys = {**minimal_raw, "sshKeys": ["ssh-ed25519 " + "A" * 68 + " k"] * 200}
    with pytest.raises(UserDataTooLarge):
        preflight("t", validate(too_many_keys, "t"))
