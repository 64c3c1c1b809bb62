"""The backups' files: there exactly when the stack has backups, each read by its program
(pgBackRest, PostgreSQL, systemd's calendar parser), secrets only where the tools need them."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from components.model.backups import (
    BackupKeys,
    BackupRepository,
    interval_s,
    max_age_s,
    on_calendar,
)
from components.model.layout import PATHS
from components.model.render import BACKUP_TIMERS, Rendered, Secrets, render_files, running_units
from components.model.settings import Settings, validate
from components.model.sizing import size
from tests.daemons import postgres, world_readable_tmpdir

ARCHIVE_CONF = "/etc/postgresql/15/main/conf.d/70-tunedstack-backups.conf"
RAW: dict[str, Any] = {"region": "us-east", "plan": "g6-standard-2"}
KEYS = BackupKeys("AKIAEXAMPLE0001", "s3cret/Key+Example0000", "P" * 40, "R" * 40)
REPOSITORY = BackupRepository("tunedstack-qa-0a1b2c", "us-east-1.linodeobjects.com")


def _render(settings: Settings) -> Rendered:
    secrets = Secrets("a" * 20, "b" * 20, backup_keys=KEYS)
    return render_files("qa", settings, size(settings), secrets, repository=REPOSITORY)


@pytest.fixture(scope="module")
def on() -> tuple[Settings, Rendered]:
    settings = validate({**RAW, "backups": {"enabled": True}}, "t")
    return settings, _render(settings)


def test_a_stack_without_backups_has_none_of_their_files() -> None:
    settings = validate(RAW, "t")
    paths = set(_render(settings).by_path())
    assert not {PATHS.pgbackrest_conf, PATHS.backup_env, PATHS.restore_script} & paths
    assert not any("tunedstack-backup" in p or "70-tunedstack" in p for p in paths)
    assert not set(BACKUP_TIMERS) & set(running_units(settings, size(settings)))


def test_a_stack_with_backups_runs_every_timer(on: tuple[Settings, Rendered]) -> None:
    settings, rendered = on
    for timer in BACKUP_TIMERS:
        assert f"/etc/systemd/system/{timer}" in rendered.by_path()
    assert set(BACKUP_TIMERS) <= set(running_units(settings, size(settings)))


def test_the_stock_box_keeps_its_backups() -> None:
    settings = validate({**RAW, "tuning": "stock", "backups": {"enabled": True}}, "t")
    assert PATHS.pgbackrest_conf in _render(settings).by_path()


def test_keys_are_only_in_the_files_the_tools_read_and_those_are_private(
    on: tuple[Settings, Rendered],
) -> None:
    _, rendered = on
    holders = {
        f.path: (f.mode, f.owner)
        for f in rendered.files
        if any(v in f.content for v in KEYS.values())
    }
    assert holders == {
        PATHS.pgbackrest_conf: ("0640", "postgres:postgres"),
        PATHS.backup_env: ("0600", "root:root"),
    }


@pytest.mark.skipif(shutil.which("pgbackrest") is None, reason="installed by bin/test")
def test_pgbackrest_reads_the_rendered_configuration(on: tuple[Settings, Rendered]) -> None:
    _, rendered = on
    with world_readable_tmpdir() as tmp:
        conf = tmp / "pgbackrest.conf"
        conf.write_text(rendered.by_path()[PATHS.pgbackrest_conf].content)
        conf.chmod(0o644)
        result = subprocess.run(
            ["pgbackrest", f"--config={conf}", "--stanza=main", "help", "backup"],
            capture_output=True,
            text=True,
            check=False,
        )
        # An unknown option is only a warning to pgBackRest; the apply refuses it too.
        assert (result.returncode, result.stderr) == (0, "")
        assert "[current=2]" in result.stdout  # the retention it read
        conf.write_text(conf.read_text() + "repo1-retention-ful=3\n")
        bad = subprocess.run(
            ["pgbackrest", f"--config={conf}", "--stanza=main", "help", "backup"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "invalid option 'repo1-retention-ful'" in bad.stderr


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("hourly", "hourly UTC"),
        ("03:00", "*-*-* 03:00:00 UTC"),
        ("Sun 03:00", "Sun *-*-* 03:00:00 UTC"),
        ("Mon..Sat 23:59", "Mon..Sat *-*-* 23:59:00 UTC"),
        ("Mon,Wed,Fri 00:00", "Mon,Wed,Fri *-*-* 00:00:00 UTC"),
    ],
)
def test_systemd_reads_each_schedule(schedule: str, expected: str) -> None:
    assert on_calendar(schedule) == expected
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is installed by bin/test")
    result = subprocess.run(
        ["systemd-analyze", "calendar", on_calendar(schedule)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Next elapse:" in result.stdout


@pytest.mark.daemon
def test_postgresql_archives_through_pgbackrest_with_the_rendered_settings(
    on: tuple[Settings, Rendered],
) -> None:
    _, rendered = on
    files = rendered.by_path()
    conf_d = files["/etc/postgresql/15/main/conf.d/60-tunedstack.conf"].content
    conf_d += files[ARCHIVE_CONF].content
    pg_hba = files["/etc/postgresql/15/main/pg_hba.conf"].content
    with postgres(15, conf_d, pg_hba) as pg:
        shown = pg.psql(
            "SELECT name || '=' || setting FROM pg_settings WHERE name IN "
            "('archive_mode', 'archive_command', 'archive_timeout', 'wal_level') ORDER BY name"
        ).splitlines()
    assert shown == [
        "archive_command=pgbackrest --stanza=main archive-push %p",
        "archive_mode=on",
        f"archive_timeout={size(on[0]).backups.archive_timeout_s}",
        "wal_level=replica",
    ]


def test_the_repository_names_the_bucket_and_region() -> None:
    repo = BackupRepository("tunedstack-qa-0a1b2c", "s3.rehearsal.test:9443")
    assert (repo.host, repo.port, repo.region) == ("s3.rehearsal.test", 9443, "s3")
    assert repo.restic_url == "s3:https://s3.rehearsal.test:9443/tunedstack-qa-0a1b2c/redis"
    assert REPOSITORY.port == 443 and REPOSITORY.region == "us-east-1"
    with pytest.raises(ValueError, match="not an S3 bucket name"):
        BackupRepository("Bad_Bucket", "x.example.com")


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32-128 letters and digits"):
        BackupKeys("AKIAEXAMPLE0001", "s3cret/Key+Example0000", "short", "R" * 40)


@pytest.mark.parametrize(
    ("schedules", "days"),
    [
        (("daily",), 1),
        (("03:00",), 1),
        (("weekly",), 7),
        (("Sun 03:00",), 7),
        (("Mon..Sat 03:00",), 2),
        (("Sun 03:00", "Mon..Sat 03:00"), 1),
        (("Mon,Thu 01:00",), 4),
        (("Sat..Mon 01:00",), 5),
    ],
)
def test_the_longest_wait_between_runs(schedules: tuple[str, ...], days: int) -> None:
    assert interval_s(*schedules) == days * 86_400
    assert max_age_s(*schedules) == 2 * days * 86_400


def test_an_hourly_schedule_waits_an_hour() -> None:
    assert interval_s("hourly") == 3600 and interval_s("Sun 03:00", "hourly") == 3600


def test_status_allows_twice_each_wait(on: tuple[Settings, Rendered]) -> None:
    script = on[1].by_path()[PATHS.backup_script].content
    week, two_days, two_hours = 14 * 86_400, 2 * 86_400, 2 * 3600
    assert f"MAX_AGE=([postgres-full]={week} [postgres]={two_days} [redis]={two_hours} )" in script
