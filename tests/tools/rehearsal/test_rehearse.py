"""The full rehearsal of the staging stack in a local VM: first boot, reboot, replacement and
day-2 re-apply, every box check passing. Several minutes under TCG; it is the proof that the
rendered cloud-config really makes the tuned box."""

from __future__ import annotations

import os
import shutil

import pytest

from components.model.layout import PATHS
from components.model.project import PACKAGE_ROOT
from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.tools.rehearsal.checks import Check
from components.tools.rehearsal.rehearse import (
    BAD_CHANGES,
    Phase,
    Report,
    day2_settings,
    rehearse,
    replacement_settings,
    with_content,
)


def test_the_replacement_follows_a_change_to_the_stack() -> None:
    settings = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    before, after = size(settings).kernel, size(replacement_settings(settings)).kernel
    assert "net.ipv4.tcp_fin_timeout" not in {s.key for s in before.sysctls}
    assert after.value("net.ipv4.tcp_fin_timeout") == "20"


def test_each_bad_change_changes_the_rendered_redis_conf() -> None:
    settings = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    rendered = render_files("staging", settings, size(settings), Secrets.placeholders())
    for bad in BAD_CHANGES:
        pushed = with_content(rendered, PATHS.redis_conf, bad.rewrite)
        assert pushed.by_path()[PATHS.redis_conf] != rendered.by_path()[PATHS.redis_conf]
        assert pushed.content_hash != rendered.content_hash
        others = [f for f in pushed.files if f.path != PATHS.redis_conf]
        assert others == [f for f in rendered.files if f.path != PATHS.redis_conf]


def test_day2_changes_a_restarted_and_a_reloaded_tunable() -> None:
    settings = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    changed = day2_settings(settings)
    assert changed.workload.redis_policy != settings.workload.redis_policy
    before, after = size(settings).kernel, size(changed).kernel
    assert before.value("vm.swappiness") != after.value("vm.swappiness")


@pytest.fixture(scope="module")
def report() -> Report:
    if os.geteuid() != 0 and shutil.which("qemu-system-x86_64") is None:
        pytest.skip("the rehearsal installs QEMU and debootstrap as root")
    return rehearse(PACKAGE_ROOT, "staging", log=print)


@pytest.mark.vm
def test_rehearsal_passes_every_check(report: Report) -> None:
    assert report.ok, report.text()


@pytest.mark.vm
def test_rehearsal_went_through_every_phase(report: Report) -> None:
    names = [p.name for p in report.phases]
    assert names[:4] == [
        "base image",
        "first boot",
        "after reboot",
        "replaced instance, previous document, changed stack",
    ]
    assert names[4].startswith("day-2: changes Redis rejects rolled back, then a re-apply")
    replaced = {c.name: c for c in report.phases[3].checks}
    assert replaced["flaky blkid on the data volume: rollout stops, formats nothing"].ok
    assert replaced["sysctl net.ipv4.tcp_fin_timeout"].measured == "20"
    day2 = {c.name: c for c in report.phases[4].checks}
    assert day2["no reboot"].ok and day2["data written before is still there"].ok
    for bad in BAD_CHANGES:
        assert day2[f"{bad.name}: rollout fails, box keeps serving"].ok
    assert day2["redis maxmemory-policy"].measured == "allkeys-lfu"
    assert day2["sysctl vm.swappiness"].measured == "5"
    for phase in report.phases[2:]:
        assert any(c.name == "data written before is still there" and c.ok for c in phase.checks)
    for phase in report.phases[1:]:
        checks = {c.name: c for c in phase.checks}
        assert checks["every managed file is the current render"].ok, phase.name
        assert checks["ssh host key is the pinned one"].ok, phase.name
        assert checks["sysctl keys are the ones overrides are checked against"].ok, phase.name


def test_the_report_shows_measured_and_expected_side_by_side() -> None:
    report = Report("staging", "tcg", "probe")
    report.phases.append(
        Phase(
            "first boot",
            12.0,
            [Check("gunicorn workers", True, "5", "5"), Check("redis maxmemory", False, "1", "2")],
        )
    )
    lines = report.text().splitlines()
    header = next(line for line in lines if "expected" in line and "check" in line)
    passed = next(line for line in lines if line.startswith("  PASS"))
    failed = next(line for line in lines if line.startswith("  FAIL"))
    assert passed.split() == ["PASS", "gunicorn", "workers", "5", "5"]
    assert failed.split() == ["FAIL", "redis", "maxmemory", "1", "2"]
    assert header.index("expected") == passed.rindex("5") == failed.rindex("2")
