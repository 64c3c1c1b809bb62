"""Every plan in the catalog at 100, 4000 and 50,000 peak connections: either a box whose
memory, file limits, backlogs and volume are consistent, or a refusal that names the key."""

from __future__ import annotations

import re

import pytest

from components.model.errors import SizingError
from components.model.plans import PLANS
from components.model.settings import validate
from components.model.sizing import size
from components.model.sizing.kernel import NR_OPEN
from components.tools.explain import explain_text

PEAKS = (100, 4000, 50_000)


@pytest.mark.parametrize("peak", PEAKS)
@pytest.mark.parametrize("plan", sorted(PLANS))
def test_each_plan_sizes_a_consistent_box_or_names_the_key(plan: str, peak: int) -> None:
    raw = {"region": "us-east", "plan": plan, "workload": {"peakConnections": peak}}
    settings = validate(raw, "stacks/Pulumi.catalog.yaml")
    try:
        sz = size(settings, source="stacks/Pulumi.catalog.yaml")
    except SizingError as e:
        text = str(e)
        assert re.search(r"tunedstack:[\w.]+ = ", text), text
        assert "Budget:" in text or "budget:" in text  # with the table that shows why
        return
    b, k, h = sz.budget, sz.kernel, sz.haproxy
    assert b.fits and b.allocated_mb <= sz.plan.memory_mb
    assert sz.volume.fits
    limits = k.file_limits
    assert limits.haproxy >= 2 * h.maxconn and limits.redis >= sz.redis.maxclients + 32
    assert max(limits.per_service().values()) <= NR_OPEN
    somaxconn = int(k.value("net.core.somaxconn"))
    assert max(h.backlog, sz.gunicorn.backlog, sz.redis.tcp_backlog) <= somaxconn
    assert h.maxconn >= peak
    assert sz.postgres.max_connections >= 2 * sz.gunicorn.workers * settings.app.db_pool_size
    assert f"plan  {sz.plan.label}" in explain_text("catalog", settings, sz)
