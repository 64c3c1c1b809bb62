"""The backups' round trip on this machine, with the rendered files and the real tools: run by
tests/model/test_backup_drill.py as `unshare --mount python -m tests.backup_drill SPEC`, in a
private mount namespace where the stand-in's name is in /etc/hosts, its CA in the system's
store and the rendered pgbackrest.conf at /etc/pgbackrest.conf (where the box has them), so
PostgreSQL's archive_command runs exactly as rendered. Prints what it found as JSON.

PostgreSQL: rows, a full backup, rows, the moment T, rows, then a restore to T into an empty
data directory (a fresh volume) and a count. Redis: a counter, a snapshot through restic,
the counter moved on, the snapshot restored into an empty folder and loaded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.daemons import Redis, free_port, postgres, wait_for

MARK = "tunedstack-drill-row"
ROWS_BEFORE_BACKUP, ROWS_BEFORE_T, ROWS_AFTER_T = 20, 15, 10


def bind(text: str, target: str, folder: Path) -> None:
    source = folder / Path(target).name
    source.write_text(text)
    source.chmod(0o644)
    subprocess.run(["mount", "--bind", str(source), target], check=True)


def as_postgres(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env=env,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed: {result.stdout[-800:]}{result.stderr[-800:]}")
    return result.stdout


def pgbackrest(*args: str) -> str:
    return as_postgres("pgbackrest", "--stanza=main", *args)


def postgres_round_trip(spec: dict[str, str], work: Path) -> dict[str, object]:
    conf_d = spec["conf_d"]
    with postgres(15, conf_d, spec["pg_hba"]) as pg:
        data = pg.socket_dir / "data"
        conf = re.sub(r"(?m)^pg1-path=.*$", f"pg1-path={data}", spec["pgbackrest_conf"])
        conf = re.sub(r"(?m)^pg1-port=.*$", f"pg1-port={pg.port}", conf)
        conf += f"pg1-socket-path={pg.socket_dir}\n"
        state = work / "pgbackrest"
        state.mkdir()
        state.chmod(0o777)
        conf = conf.replace(
            "[global]\n",
            f"[global]\nlog-path={state}\nlock-path={state}\nspool-path={state}\n",
        )
        bind(conf, "/etc/pgbackrest.conf", work)
        pg.psql("CREATE TABLE drill (id serial PRIMARY KEY, note text)")

        def insert(n: int, phase: str) -> None:
            series = f"generate_series(1, {n}) g"
            pg.psql(f"INSERT INTO drill (note) SELECT '{MARK}-{phase}-' || g FROM {series}")

        insert(ROWS_BEFORE_BACKUP, "a")
        pgbackrest("stanza-create")
        pgbackrest("--type=full", "backup")
        insert(ROWS_BEFORE_T, "b")
        time.sleep(1.5)
        target = pg.psql(
            "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
        )
        time.sleep(1.5)
        insert(ROWS_AFTER_T, "c")
        # The segment holding the last rows goes to the bucket now, not at archive_timeout.
        pg.psql("SELECT pg_switch_wal()")
        pgbackrest("check")
        live_rows = int(pg.psql("SELECT count(*) FROM drill"))
        info = json.loads(pgbackrest("--output=json", "info"))

    # A fresh volume: an empty data directory on the same machine, nothing of the old one.
    fresh = work / "fresh"
    fresh.mkdir(mode=0o700)
    os.chown(fresh, *_postgres_ids())
    pgbackrest(
        f"--pg1-path={fresh}",
        "--type=time",
        f"--target={target}",
        "--target-action=promote",
        "restore",
    )
    port = free_port()
    run = work / "restored"
    run.mkdir()
    os.chown(run, *_postgres_ids())
    as_postgres(
        "/usr/lib/postgresql/15/bin/pg_ctl",
        "-D",
        str(fresh),
        "-l",
        str(run / "log"),
        "-w",
        "-t",
        "120",
        "-o",
        f"-p {port} -k {run}",
        "start",
    )
    try:
        psql = [
            "/usr/lib/postgresql/15/bin/psql",
            "-XAt",
            "-h",
            str(run),
            "-p",
            str(port),
            "-d",
            "postgres",
        ]
        wait_for(
            lambda: as_postgres(*psql, "-c", "SELECT pg_is_in_recovery()").strip() == "f",
            "recovery",
            120,
        )
        restored = as_postgres(*psql, "-c", "SELECT count(*) FROM drill").strip()
        notes = as_postgres(
            *psql, "-c", "SELECT string_agg(DISTINCT split_part(note, '-', 4), '') FROM drill"
        ).strip()
    finally:
        as_postgres(
            "/usr/lib/postgresql/15/bin/pg_ctl", "-D", str(fresh), "-m", "fast", "-w", "stop"
        )
    return {
        "live_rows": live_rows,
        "restored_rows": int(restored),
        "restored_phases": notes,
        "backups": len(info[0]["backup"]),
    }


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def redis_round_trip(spec: dict[str, str], work: Path) -> dict[str, object]:
    env = dict(os.environ)
    for line in spec["backup_env"].splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    env["RESTIC_CACHE_DIR"] = str(work / "restic-cache")
    folder = work / "redis"
    folder.mkdir()

    def restic(*args: str) -> str:
        result = subprocess.run(
            ["restic", *args], capture_output=True, text=True, env=env, check=False, timeout=300
        )
        if result.returncode != 0:
            raise RuntimeError(f"restic {args[0]} failed: {result.stderr[-800:]}")
        return result.stdout

    def server(folder: Path) -> tuple[subprocess.Popen[bytes], Redis]:
        port = free_port()
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(folder),
                "--requirepass",
                "drill",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = Redis(port, "drill")
        wait_for(lambda: client.cli("PING") == "PONG", "redis")
        return process, client

    process, client = server(folder)
    try:
        client.cli("SET", "hits", "42")
        client.cli("SET", f"{MARK}-key", MARK)
        client.cli("SAVE")
        restic("init")
        restic("backup", "--host", "tunedstack", "--tag", "redis", str(folder / "dump.rdb"))
        client.cli("SET", "hits", "43")
        restic("forget", "--host", "tunedstack", "--tag", "redis", "--keep-last", "48", "--prune")
        snapshots = json.loads(restic("snapshots", "--json"))
    finally:
        process.terminate()
        process.wait()
    target = work / "redis-restored"
    restic("restore", "latest", "--target", str(target))
    restored_dir = target / str(folder).lstrip("/")
    process, client = server(restored_dir)
    try:
        hits = client.cli("GET", "hits")
    finally:
        process.terminate()
        process.wait()
    return {"snapshots": len(snapshots), "restored_hits": hits}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    with tempfile.TemporaryDirectory(prefix="tunedstack-drill-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        bind(Path("/etc/hosts").read_text() + f"127.0.0.1 {spec['host']}\n", "/etc/hosts", work)
        store = "/etc/ssl/certs/ca-certificates.crt"
        bind(Path(store).read_text() + Path(spec["ca"]).read_text(), store, work)
        found = {**postgres_round_trip(spec, work), **redis_round_trip(spec, work)}
    print(json.dumps(found))


if __name__ == "__main__":
    main()
