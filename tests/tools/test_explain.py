from __future__ import annotations

import json

from components.model.settings import Settings
from components.model.sizing import size
from components.tools.explain import explain_json, explain_text


def test_text_has_plan_budget_and_reasons(stack_name: str, stack_settings: Settings) -> None:
    sz = size(stack_settings)
    text = explain_text(stack_name, stack_settings, sz)
    assert sz.plan.id in text
    assert "memory budget" in text and "plan total" in text
    assert "gunicorn.workers" in text and "by CPU" in text
    assert "net.core.somaxconn" in text


def test_json_has_shares_and_every_rendered_tunable(
    stack_name: str, stack_settings: Settings
) -> None:
    sz = size(stack_settings)
    data = json.loads(explain_json(stack_name, stack_settings, sz))
    assert data["memory_mb"]["postgresql"] == sz.budget.postgres_mb
    assert data["memory_mb"]["redis maxmemory"] == sz.redis.maxmemory_mb
    assert sum(v for k, v in data["memory_mb"].items()) == sz.plan.memory_mb
    assert data["sizing"]["postgres"]["conf"] == sz.postgres.conf()
    assert data["sysctl"]["net.ipv4.tcp_syncookies"] == "1"


def test_backups_are_explained_from_the_settings_and_sizing(
    stack_name: str, stack_settings: Settings
) -> None:
    sz = size(stack_settings)
    text = explain_text(stack_name, stack_settings, sz)
    data = json.loads(explain_json(stack_name, stack_settings, sz))
    if not stack_settings.backups_enabled:
        assert "backups: off (`tunedstack:backups.enabled: true`" in text
        assert data["backups"] == []
        return
    assert "backups (off the box, encrypted" in text
    plan = {line["name"]: line["value"] for line in data["backups"]}
    assert plan["postgres full"] == "Sun *-*-* 03:00:00 UTC"
    assert plan["postgres WAL"] == f"<= {sz.backups.archive_timeout_s}s"
    assert plan["pgbackrest process-max"] == str(sz.backups.process_max)
