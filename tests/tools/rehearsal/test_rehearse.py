"""The full rehearsal of the staging stack in a local VM: first boot, a power cut mid-apply,
replacement and day-2 re-apply (its SSH client killed mid-apply), every box check passing.
Several minutes under TCG; it is the proof that the rendered cloud-config really makes the
tuned box."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.model.layout import PATHS
from components.model.project import PACKAGE_ROOT
from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.tools.rehearsal.checks import Check
from components.tools.rehearsal.image import BaseImage
from components.tools.rehearsal.rehearse import (
    BAD_CHANGES,
    MEASURED_S,
    PREPARE_STEPS,
    REHEARSE_STEPS,
    S3_HOST,
    Phase,
    Rehearsal,
    Report,
    day2_settings,
    power_cut_settings,
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


def test_the_change_cut_by_the_power_restarts_redis_and_reloads_haproxy() -> None:
    settings = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    before = render_files("staging", settings, size(settings), Secrets.placeholders())
    changed = power_cut_settings(settings)
    after = render_files("staging", changed, size(changed), Secrets.placeholders())
    differ = sorted(p for p, f in after.by_path().items() if before.by_path()[p] != f)
    assert differ == sorted([PATHS.haproxy_cfg, PATHS.redis_conf])


@dataclass(frozen=True)
class CliRun:
    """`tunedstack rehearse` run as a user runs it, its output a pipe (no terminal)."""

    returncode: int
    lines: list[tuple[float, str]]  # each line of output, with when it arrived (s from start)
    report: Report


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    if os.geteuid() != 0 and shutil.which("qemu-system-x86_64") is None:
        pytest.skip("the rehearsal installs QEMU and debootstrap as root")
    report_file = tmp_path_factory.mktemp("rehearsal") / "report.json"
    command = [
        str(Path(sys.executable).parent / "tunedstack"),
        *("rehearse", "--stack", "staging", "--json", str(report_file)),
    ]
    started = time.monotonic()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(
        command, cwd=PACKAGE_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
            print(line, end="", flush=True)  # the test log shows the run as it went
    assert report_file.is_file(), "\n".join(line for _, line in lines[-40:])
    return CliRun(process.returncode, lines, Report.from_json(report_file.read_text()))


@pytest.fixture(scope="module")
def report(cli_run: CliRun) -> Report:
    return cli_run.report


@pytest.mark.vm
def test_the_cli_exits_zero_and_ends_with_the_result(cli_run: CliRun) -> None:
    assert cli_run.returncode == 0
    assert cli_run.lines[-1][1] == "RESULT: PASS"


@pytest.mark.vm
def test_without_a_terminal_each_step_shows_as_it_starts_and_its_checks_as_it_ends(
    cli_run: CliRun,
) -> None:
    """Plain timestamped lines in a pipe, arriving while the work runs: a step's first line
    comes when it starts, its checks and its end line only when it is done."""
    total = len(REHEARSE_STEPS)
    text = [line for _, line in cli_run.lines]

    def arrival(prefix: str) -> tuple[int, float]:
        found = next(i for i, line in enumerate(text) if re.match(prefix, line))
        return found, cli_run.lines[found][0]

    stamp = r"\[\d\d:\d\d:\d\d\] "
    last_end = -1
    for number, name in enumerate(REHEARSE_STEPS, start=1):
        start, started_at = arrival(f"{stamp}step {number}/{total} {re.escape(name)}(:| \\(|$)")
        end, ended_at = arrival(f"{stamp}step {number}/{total} {re.escape(name)} done in ")
        assert last_end < start < end, name
        last_end = end
        if name in PREPARE_STEPS:
            continue
        # A phase boots or changes a VM: minutes under TCG, never all at once at the end.
        assert ended_at - started_at > 20, (name, started_at, ended_at)
        if cli_run.report.accel == "tcg":  # measured under TCG, so always an estimate there
            assert re.search(r"\(about \d+ (s|min)", text[start]), text[start]
        checks = [line for line in text[start:end] if re.match(f"{stamp} +(PASS|FAIL)  ", line)]
        assert checks, f"no checks shown during {name}"
        assert text[end].endswith(f"{len(checks)}/{len(checks)} checks passed"), text[end]
    # The summary follows the last step, and repeats no passed check.
    assert not any(re.match(r"  PASS  ", line) for line in text[last_end:])


@pytest.mark.vm
def test_rehearsal_passes_every_check(report: Report) -> None:
    assert report.ok, report.text()


@pytest.mark.vm
def test_rehearsal_went_through_every_phase(report: Report) -> None:
    names = [p.name for p in report.phases]
    assert names[:4] == [
        "base image",
        "first boot",
        "after a power cut mid-apply",
        "replaced instance, previous document, changed stack",
    ]
    assert names[4].startswith("day-2: changes Redis rejects rolled back, then a re-apply")
    replaced = {c.name: c for c in report.phases[3].checks}
    assert replaced["flaky blkid on the data volume: rollout stops, formats nothing"].ok
    assert replaced["sysctl net.ipv4.tcp_fin_timeout"].measured == "20"
    cut = {c.name: c for c in report.phases[2].checks}
    recovered = (
        "power cut mid-apply: the next rollout puts the cut-off change back, then applies it"
    )
    assert cut[recovered].ok, cut[recovered]
    day2 = {c.name: c for c in report.phases[4].checks}
    assert day2["no reboot"].ok and day2["data written before is still there"].ok
    assert day2["SSH client killed mid-apply: the apply finishes on its own"].ok
    for bad in BAD_CHANGES:
        assert day2[f"{bad.name}: rollout fails, box keeps serving"].ok
    assert day2["redis maxmemory-policy"].measured == "allkeys-lfu"
    assert day2["sysctl vm.swappiness"].measured == "5"
    for phase in report.phases[2:5]:
        assert any(c.name == "data written before is still there" and c.ok for c in phase.checks)
    for phase in report.phases[1:5]:
        checks = {c.name: c for c in phase.checks}
        assert checks["every managed file is the current render"].ok, phase.name
        assert checks["ssh host key is the pinned one"].ok, phase.name
        assert checks["sysctl keys are the ones overrides are checked against"].ok, phase.name


@pytest.mark.vm
def test_the_restore_drill_brings_back_exactly_the_data_before_the_moment(
    report: Report,
) -> None:
    drill = report.phases[5]
    assert drill.name == "restore drill: a fresh instance and volume, to a moment"
    checks = {c.name: c for c in drill.checks}
    for name in (
        "tunedstack-backup status: every kind backed up, none failed",
        "a restore over live data is refused unasked; nothing changes",
        "tunedstack-restore to T on a fresh instance and volume",
        "PostgreSQL holds exactly the rows written before T",
        "Redis' counter is its snapshot's",
        "the app serves after the restore",
        "the bucket holds only encrypted backups",
    ):
        assert checks[name].ok, checks.get(name)


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


def _two_phases() -> Report:
    report = Report("staging", "tcg", "probe")
    report.phases.append(Phase("base image", 3.0))
    report.phases.append(
        Phase(
            "first boot",
            12.0,
            [Check("gunicorn workers", True, "5", "5"), Check("redis maxmemory", False, "1", "2")],
        )
    )
    return report


def test_the_summary_counts_each_phase_and_repeats_only_the_failed_checks() -> None:
    lines = _two_phases().summary().splitlines()
    assert lines[1:3] == ["== base image: ready in 3s", "== first boot: 1/2 passed in 12s"]
    assert not any("gunicorn workers" in line for line in lines)
    assert any(line.split() == ["FAIL", "redis", "maxmemory", "1", "2"] for line in lines)
    assert lines[-1] == "RESULT: FAIL"


def test_the_report_survives_json() -> None:
    report = _two_phases()
    assert Report.from_json(report.to_json()) == report


def test_the_steps_rehearse_shows_have_a_measured_estimate_under_tcg() -> None:
    for step in REHEARSE_STEPS[3:]:
        assert f"tcg {step}" in MEASURED_S


def test_the_kvm_probe_is_answered_once_per_host_boot_and_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rehearsal = Rehearsal(PACKAGE_ROOT, "staging", cache=tmp_path)
    image = BaseImage(tmp_path / "images" / "abc")
    assert rehearsal.probed_accelerator(image) is None
    rehearsal.remember_accelerator(image, "tcg", "a KVM guest did not finish a 30s probe boot")
    assert rehearsal.probed_accelerator(image) == (
        "tcg",
        "a KVM guest did not finish a 30s probe boot",
    )
    assert rehearsal.probed_accelerator(BaseImage(tmp_path / "images" / "other")) is None
    monkeypatch.setattr(
        "components.tools.rehearsal.rehearse.probe_key", lambda image: "another boot"
    )
    assert rehearsal.probed_accelerator(image) is None  # the host rebooted: probe again


def test_the_rehearsal_backs_up_to_its_stand_in_and_names_it_as_the_real_endpoint(
    tmp_path: Path,
) -> None:
    rehearsal = Rehearsal(PACKAGE_ROOT, "staging", cache=tmp_path, backups=True)
    endpoint = f"{S3_HOST}:{rehearsal.s3_port}"
    assert rehearsal.settings.backups_enabled
    assert rehearsal.settings.backups.endpoint == endpoint
    files = rehearsal.render(rehearsal.settings, rehearsal.sizing).by_path()
    conf = files[PATHS.pgbackrest_conf].content
    assert f"repo1-s3-endpoint={S3_HOST}\n" in conf
    assert f"repo1-storage-port={rehearsal.s3_port}\n" in conf
    assert f"repo1-s3-bucket={rehearsal.bucket}\n" in conf
    # The stand-in is verified like Linode's endpoint: no option turns TLS checks off.
    assert "verify-tls" not in conf
    assert f"s3:https://{endpoint}/{rehearsal.bucket}/redis" in files[PATHS.backup_env].content
    # The benchmark's boxes keep the stack's own setting (staging: off).
    assert not Rehearsal(PACKAGE_ROOT, "staging", cache=tmp_path).settings.backups_enabled
