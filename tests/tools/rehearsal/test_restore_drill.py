from __future__ import annotations

from components.tools.rehearsal.restore_drill import MARK, bucket_check


def test_an_encrypted_bucket_passes() -> None:
    objects = {
        "postgres/archive/main/archive.info": b"Salted__\x01\x02",
        "postgres/backup/main/20261207-000000F/backup.manifest": b"Salted__\x03",
        "redis/data/ab/abcdef": b"\x8f\x01random",
        "redis/config": b"\x00\x01",
    }
    assert bucket_check(objects).ok


def test_a_plain_pgbackrest_file_or_a_readable_marker_fails() -> None:
    base = {"postgres/a": b"Salted__", "redis/b": b"x"}
    assert not bucket_check({**base, "postgres/backup.info": b"[backrest]\n"}).ok
    assert not bucket_check({**base, "redis/c": b"..." + MARK.encode()}).ok
    assert not bucket_check({"postgres/a": b"Salted__"}).ok  # no Redis backup at all
