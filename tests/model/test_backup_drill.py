"""The backups' files do what they promise, with the real tools on this machine: pgBackRest
archives PostgreSQL's WAL and restores to a moment into an empty data directory (exactly the
rows before it), restic takes Redis' snapshot back, and the bucket holds nothing readable.
The bucket is the S3 stand-in the rehearsal uses (moto behind HAProxy's TLS)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.model.backups import BackupKeys, BackupRepository
from components.model.layout import PATHS
from components.model.render import Secrets, render_files
from components.model.settings import validate
from components.model.sizing import size
from components.tools.rehearsal.s3_standin import ACCESS_KEY, S3StandIn
from tests.backup_drill import MARK, ROWS_AFTER_T, ROWS_BEFORE_BACKUP, ROWS_BEFORE_T

REPO = Path(__file__).resolve().parents[2]
HOST = "objects.drill.test"
BUCKET = "tunedstack-drill-0a1b2c"
PG_DIR = "/etc/postgresql/15/main"

pytestmark = [
    pytest.mark.daemon,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("pgbackrest", "restic", "haproxy", "unshare")),
        reason="pgbackrest, restic and haproxy are installed by bin/test",
    ),
]


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, bytes]]:
    folder = tmp_path_factory.mktemp("s3")
    with S3StandIn(folder, HOST, BUCKET) as s3:
        settings = validate(
            {"region": "us-east", "plan": "g6-standard-2", "backups": {"enabled": True}}, "t"
        )
        keys = BackupKeys(ACCESS_KEY, "standinSecretKey0000", "C" * 48, "D" * 48)
        rendered = render_files(
            "drill",
            settings,
            size(settings),
            Secrets("a" * 20, "b" * 20, backup_keys=keys),
            repository=BackupRepository(BUCKET, s3.endpoint),
        ).by_path()
        spec = {
            "host": HOST,
            "ca": str(s3.ca),
            "conf_d": rendered[f"{PG_DIR}/conf.d/60-tunedstack.conf"].content
            + rendered[f"{PG_DIR}/conf.d/70-tunedstack-backups.conf"].content,
            "pg_hba": rendered[f"{PG_DIR}/pg_hba.conf"].content,
            "pgbackrest_conf": rendered[PATHS.pgbackrest_conf].content,
            "backup_env": rendered[PATHS.backup_env].content,
        }
        spec_file = folder / "spec.json"
        spec_file.write_text(json.dumps(spec))
        result = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                sys.executable,
                "-m",
                "tests.backup_drill",
                str(spec_file),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.splitlines()[-1]), s3.objects()


def test_postgres_comes_back_to_the_moment_with_exactly_the_rows_before_it(
    drill: tuple[dict[str, Any], dict[str, bytes]],
) -> None:
    found, _ = drill
    assert found["live_rows"] == ROWS_BEFORE_BACKUP + ROWS_BEFORE_T + ROWS_AFTER_T
    assert found["restored_rows"] == ROWS_BEFORE_BACKUP + ROWS_BEFORE_T
    assert found["restored_phases"] == "ab"
    assert found["backups"] == 1


def test_redis_comes_back_to_its_snapshot(drill: tuple[dict[str, Any], dict[str, bytes]]) -> None:
    found, _ = drill
    assert (found["snapshots"], found["restored_hits"]) == (1, "42")


def test_the_bucket_holds_only_encrypted_objects(
    drill: tuple[dict[str, Any], dict[str, bytes]],
) -> None:
    _, objects = drill
    postgres = {k: v for k, v in objects.items() if k.startswith("postgres/")}
    redis = {k: v for k, v in objects.items() if k.startswith("redis/")}
    assert any("/archive/main/" in k for k in postgres), sorted(postgres)
    assert any(k.endswith("backup.manifest") for k in postgres), sorted(postgres)
    assert redis and set(objects) == set(postgres) | set(redis)
    # pgBackRest's encrypted files (info, manifests, WAL, data) are OpenSSL's salted format.
    assert all(v.startswith(b"Salted__") for v in postgres.values()), [
        k for k, v in postgres.items() if not v.startswith(b"Salted__")
    ]
    assert not [k for k, v in objects.items() if MARK.encode() in v]
