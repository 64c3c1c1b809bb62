"""The restore drill: backups taken by a serving box, restored to a moment onto a fresh volume
on a fresh instance, and checked row by row.

On the box with data: a marker row and key, a full backup, rows, Redis' snapshot, rows, the
moment T, rows after it, WAL archived past them. Then, on a new instance with a blank volume
(first boot and rollout as for any new box), `tunedstack-restore --to T`: exactly the rows
written before T, Redis' counter as its snapshot had it, the app serving, and nothing readable
in the bucket."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from components.model.backups import STANZA
from components.model.layout import NAMES, PATHS
from components.tools.rehearsal.checks import Check
from components.tools.rehearsal.vm import Vm

MARK = "tunedstack-restore-drill-marker"
# What `tunedstack-backup status` reports on.
STATUS_KINDS = ("postgres-full", "postgres", "redis")
# Rows written through the app in each stretch: before Redis' snapshot, before T, after T.
WRITES = 3
# A full backup, a restore and a WAL switch under emulation take minutes, not seconds.
BACKUP_TIMEOUT_S = 900
RESTORE_TIMEOUT_S = 1800

PSQL = f"runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d {NAMES.db_name} -c"
REDIS = f"REDISCLI_AUTH=$(awk '$1 == \"requirepass\" {{ print $2 }}' {PATHS.redis_conf}) redis-cli"


@dataclass(frozen=True)
class DrillPoint:
    target: str  # the moment restored to, as tunedstack-restore takes it
    rows_before: int  # rows in `hits` at that moment
    rows_live: int  # rows when the old box stopped
    counter_in_snapshot: int  # Redis' counter in the snapshot taken before it


def sql(vm: Vm, query: str) -> str:
    return vm.ssh(f'cd / && {PSQL} "{query}"').stdout.strip()


def redis(vm: Vm, *args: str) -> str:
    return vm.ssh(f"{REDIS} {' '.join(args)}").stdout.strip()


def mark_point(vm: Vm, hit: Callable[[], object]) -> DrillPoint:
    """Data, backups and the moment T on the box that has data."""
    sql(
        vm,
        f"CREATE TABLE IF NOT EXISTS drill_marker (note text); "
        f"INSERT INTO drill_marker VALUES ('{MARK}')",
    )
    redis(vm, "SET", "drill:marker", MARK)
    vm.ssh("systemctl start tunedstack-backup@postgres-full.service", timeout=BACKUP_TIMEOUT_S)
    for _ in range(WRITES):
        hit()
    vm.ssh("systemctl start tunedstack-backup@redis.service", timeout=BACKUP_TIMEOUT_S)
    counter = int(redis(vm, "GET", "tunedstack:hits"))
    for _ in range(WRITES):
        hit()
    # T falls between two writes, a second clear of each (the box's own clock).
    target, rows = vm.ssh(
        f"sleep 1; date -u '+%F %T.%6N+00'; cd / && {PSQL} 'SELECT count(*) FROM hits'; sleep 1"
    ).stdout.split("\n")[:2]
    for _ in range(WRITES):
        hit()
    live = int(sql(vm, "SELECT count(*) FROM hits"))
    # `check` switches WAL and waits until the segment holding the last rows is archived.
    vm.ssh(
        f"cd / && runuser -u postgres -- pgbackrest --stanza={STANZA} check",
        timeout=BACKUP_TIMEOUT_S,
    )
    return DrillPoint(target, int(rows), live, counter)


def status_check(vm: Vm) -> Check:
    """The box's own account of its backups: each kind's last good one young enough, no
    backup unit failed."""
    result = vm.ssh(f"{PATHS.backup_script} status", check=False)
    lines = [line for line in result.stdout.splitlines() if line]
    return Check(
        "tunedstack-backup status: every kind backed up, none failed",
        result.returncode == 0 and len(lines) == len(STATUS_KINDS),
        "; ".join(lines) or result.stderr.strip()[-120:],
        "exit 0, " + ", ".join(STATUS_KINDS),
    )


def refused_over_live_data(vm: Vm, point: DrillPoint, healthy: Callable[[], bool]) -> Check:
    """On the box with data, a restore without --overwrite-live-data changes nothing."""
    result = vm.ssh(f"{PATHS.restore_script} --to '{point.target}'", check=False, timeout=300)
    said = "refused: this box holds live data" in result.stderr
    rows = int(sql(vm, "SELECT count(*) FROM hits"))
    serving = healthy()
    return Check(
        "a restore over live data is refused unasked; nothing changes",
        result.returncode == 1 and said and rows == point.rows_live and serving,
        f"exit {result.returncode}, {'refused' if said else result.stderr.strip()[-80:]}, "
        f"{rows} rows, {'serving' if serving else 'not serving'}",
        f"exit 1, refused, {point.rows_live} rows, serving",
    )


def restore(vm: Vm, point: DrillPoint) -> tuple[int, str, float]:
    started = time.monotonic()
    result = vm.ssh(
        f"{PATHS.restore_script} --to '{point.target}'", check=False, timeout=RESTORE_TIMEOUT_S
    )
    return result.returncode, (result.stdout + result.stderr).strip(), time.monotonic() - started


def restored_checks(
    vm: Vm, point: DrillPoint, outcome: tuple[int, str, float], healthy: Callable[[], bool]
) -> list[Check]:
    rc, said, seconds = outcome
    checks = [
        Check(
            "tunedstack-restore to T on a fresh instance and volume",
            rc == 0,
            f"exit {rc} in {seconds:.0f} s" + ("" if rc == 0 else f": {said[-300:]}"),
            "exit 0",
        )
    ]
    if rc != 0:
        return checks
    rows = int(sql(vm, "SELECT count(*) FROM hits"))
    later = int(sql(vm, f"SELECT count(*) FROM hits WHERE at > '{point.target}'"))
    marker = sql(vm, "SELECT note FROM drill_marker")
    counter = redis(vm, "GET", "tunedstack:hits")
    checks += [
        Check(
            "PostgreSQL holds exactly the rows written before T",
            rows == point.rows_before and later == 0 and marker == MARK,
            f"{rows} rows, {later} after T, marker {'there' if marker == MARK else 'missing'}",
            f"{point.rows_before} rows (of {point.rows_live}), 0 after T, marker there",
        ),
        Check(
            "Redis' counter is its snapshot's",
            counter == str(point.counter_in_snapshot) and redis(vm, "GET", "drill:marker") == MARK,
            f"counter {counter}",
            f"counter {point.counter_in_snapshot}, marker key there",
        ),
        Check("the app serves after the restore", healthy(), "", "health 200 through HAProxy"),
    ]
    return checks


def bucket_check(objects: dict[str, bytes]) -> Check:
    """What someone holding the bucket reads: pgBackRest's files all in OpenSSL's salted
    format, restic's packs, and no plaintext of the marker anywhere."""
    postgres = {k: v for k, v in objects.items() if k.startswith("postgres/")}
    plain = [k for k, v in postgres.items() if not v.startswith(b"Salted__")]
    leaked = [k for k, v in objects.items() if MARK.encode() in v]
    redis_objects = [k for k in objects if k.startswith("redis/")]
    return Check(
        "the bucket holds only encrypted backups",
        bool(postgres) and bool(redis_objects) and not plain and not leaked,
        f"{len(postgres)} pgBackRest objects ({len(plain)} not encrypted), "
        f"{len(redis_objects)} restic objects, marker in {len(leaked)}",
        "pgBackRest and restic objects, all encrypted, marker in none",
    )
