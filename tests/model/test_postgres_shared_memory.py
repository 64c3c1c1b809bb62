"""vm.nr_hugepages against PostgreSQL's own answer: `postgres -C shared_memory_size_in_huge_pages`
on each configuration sizing writes, so the reserved pages hold all of its shared memory (a
shortfall makes `huge_pages = try` fall back and leaves the reservation unused) and waste
next to nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.model.plans import PLANS
from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file, validate
from components.model.sizing import size
from components.model.sizing.postgres import size_postgres
from tests import daemons

REPO = Path(__file__).resolve().parents[2]
VERSION = 15  # Debian 12's, installed here by bin/test
pytestmark = pytest.mark.skipif(
    shutil.which("runuser") is None or not (daemons.POSTGRES_BIN / str(VERSION)).is_dir(),
    reason="bin/test installs PostgreSQL",
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Path]:
    with daemons.stopped_cluster(VERSION) as data:
        yield data


def _pages(cluster: Path, conf: dict[str, str]) -> int:
    return int(daemons.computed_setting(VERSION, cluster, "shared_memory_size_in_huge_pages", conf))


def test_prods_reservation_holds_its_shared_memory(cluster: Path) -> None:
    settings = load_stack_file(REPO / "stacks", "prod")
    sz = size(settings)
    assert sz.postgres.huge_pages == "try" and sz.postgres.huge_pages_reserved > 0
    rendered = render_files("prod", settings, sz, Secrets.placeholders())
    sysctl = rendered.by_path()["/etc/sysctl.d/60-tunedstack.conf"].content
    assert f"\nvm.nr_hugepages = {sz.postgres.huge_pages_reserved}\n" in sysctl
    needed = _pages(cluster, sz.postgres.conf())
    assert needed <= sz.postgres.huge_pages_reserved <= needed * 1.01


@pytest.mark.parametrize("plan", sorted(p for p in PLANS if PLANS[p].memory_mb >= 16384))
def test_every_plan_with_huge_pages_reserves_what_postgres_needs(cluster: Path, plan: str) -> None:
    settings = validate({"region": "us-east", "plan": plan, "volumeSizeGb": 10_240}, "t")
    pg = size(settings).postgres
    if pg.huge_pages == "off":
        pytest.skip("shared_buffers under 2 GB")
    needed = _pages(cluster, pg.conf())
    assert needed <= pg.huge_pages_reserved <= needed * 1.01


@pytest.mark.parametrize("connections", [40, 1000, 5000])
def test_the_estimate_holds_for_many_connections(cluster: Path, connections: int) -> None:
    pg = size_postgres(65536, 16, connections, VERSION, 102400)
    needed = _pages(cluster, pg.conf())
    assert needed <= pg.huge_pages_reserved <= needed * 1.01


def test_no_pages_are_reserved_without_huge_pages() -> None:
    staging = size(load_stack_file(REPO / "stacks", "staging"))
    assert staging.postgres.huge_pages == "off" and staging.postgres.huge_pages_reserved == 0
    assert "vm.nr_hugepages" not in {s.key for s in staging.kernel.sysctls}
