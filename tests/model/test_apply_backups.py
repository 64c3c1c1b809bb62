"""The apply with backups on, run for real in a private namespace (tests/namespace.py): the
staged pgbackrest.conf is checked by pgBackRest itself before anything is installed, the
timers are enabled and started, the first backups start in the background once, and turning
backups off stops and disables the timers."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.model.layout import PATHS
from components.model.render import BACKUP_TIMERS, Rendered, Secrets, render_files
from components.model.settings import Settings, load_stack_file
from components.model.sizing import size
from tests.namespace import apply_steps, first_boot, needs_namespace, stage

REPO = Path(__file__).resolve().parents[2]

pytestmark = needs_namespace


@pytest.fixture
def with_backups() -> Settings:
    staging = load_stack_file(REPO / "stacks", "staging")
    return staging.model_copy(
        update={"backups": staging.backups.model_copy(update={"enabled": True})}
    )


def _render(settings: Settings) -> Rendered:
    return render_files("staging", settings, size(settings), Secrets.placeholders())


def _stage(rendered: Rendered, folder: Path) -> Path:
    stage({f.path: (f.content, f.mode) for f in rendered.files}, folder)
    return folder


def test_first_boot_enables_the_timers_and_starts_the_first_backups(
    tmp_path: Path, with_backups: Settings
) -> None:
    first, again = apply_steps(
        tmp_path,
        [first_boot(_stage(_render(with_backups), tmp_path / "v1")), PATHS.apply_script],
    )
    assert first.output.endswith("rc=0\n"), first.output
    for timer in BACKUP_TIMERS:
        assert f"systemctl enable {timer}" in first.changes
        assert f"systemctl restart {timer}" in first.changes
    started = [c for c in first.changes if c.startswith("systemctl start --no-block")]
    assert started == [
        "systemctl start --no-block tunedstack-backup@postgres-full.service",
        "systemctl start --no-block tunedstack-backup@redis.service",
    ]
    assert again.changes == []


def test_a_pgbackrest_conf_pgbackrest_refuses_is_never_installed(
    tmp_path: Path, with_backups: Settings
) -> None:
    rendered = _render(with_backups)
    first = _stage(rendered, tmp_path / "v1")
    bad = _stage(rendered, tmp_path / "v2")
    conf = bad / PATHS.pgbackrest_conf.lstrip("/")
    conf.write_text(conf.read_text().replace("repo1-retention-full=2", "repo1-retention-full=two"))
    _, rollout, after = apply_steps(
        tmp_path,
        [
            first_boot(first),
            f"{PATHS.apply_script} --from {bad}",
            f"cmp {first}{PATHS.pgbackrest_conf} {PATHS.pgbackrest_conf}",
        ],
    )
    assert rollout.output.endswith("rc=1\n"), rollout.output
    assert "'two' is not valid for 'repo1-retention-full' option" in rollout.output
    assert "refused before anything was installed" in rollout.output
    assert rollout.changes == []
    assert after.ok, after.output


def test_turning_backups_off_stops_and_disables_the_timers(
    tmp_path: Path, with_backups: Settings
) -> None:
    on = _stage(_render(with_backups), tmp_path / "v1")
    off_settings = with_backups.model_copy(
        update={"backups": with_backups.backups.model_copy(update={"enabled": False})}
    )
    off = _stage(_render(off_settings), tmp_path / "v2")
    _, rollout = apply_steps(tmp_path, [first_boot(on), f"{PATHS.apply_script} --from {off}"])
    assert rollout.output.endswith("rc=0\n"), rollout.output
    for timer in BACKUP_TIMERS:
        assert f"systemctl disable --now {timer}" in rollout.changes
    assert not any("start --no-block" in c for c in rollout.changes)
    assert f"retired {PATHS.pgbackrest_conf}" in rollout.output
