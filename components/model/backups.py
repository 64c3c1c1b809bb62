"""Off-box backups: where they go (the stack's bucket), with what they are encrypted, and when
they run. pgBackRest keeps PostgreSQL's base backups and WAL (point-in-time recovery), restic
keeps Redis' snapshots; both write to the same bucket under their own prefix, each encrypted
on the box with its own key, and each keeps its own retention (a bucket lifecycle rule that
deleted objects would break their repositories)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# pgBackRest's stanza: the one cluster of the box.
STANZA = "main"
# Prefixes in the bucket, one per tool.
POSTGRES_PREFIX = "/postgres"
REDIS_PREFIX = "redis"
# The backup kinds the service template runs, one timer each.
KINDS = ("postgres-full", "postgres-diff", "redis")
# The encryption keys' length: the same letters-and-digits alphabet as the service passwords.
KEY_LENGTH = 64
_KEY = re.compile(r"[A-Za-z0-9]{32,128}")
# An S3 access key and its secret as Linode and AWS issue them (the secret may hold / and +).
_ACCESS_KEY = re.compile(r"[A-Za-z0-9]{8,128}")
_SECRET_KEY = re.compile(r"[A-Za-z0-9/+=]{16,128}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def on_calendar(schedule: str) -> str:
    """A backup schedule (settings.SCHEDULE) as systemd's OnCalendar, in UTC."""
    if schedule in ("hourly", "daily", "weekly"):
        return f"{schedule} UTC"
    days, _, time = schedule.rpartition(" ")
    return f"{days + ' ' if days else ''}*-*-* {time}:00 UTC"


@dataclass(frozen=True)
class BackupRepository:
    """The bucket the backups go to: not secret (names in the preview), but known only once the
    bucket exists."""

    bucket: str
    endpoint: str  # host[:port], HTTPS

    def __post_init__(self) -> None:
        if not _BUCKET.fullmatch(self.bucket):
            raise ValueError(f"bucket {self.bucket!r} is not an S3 bucket name")

    @property
    def host(self) -> str:
        return self.endpoint.partition(":")[0]

    @property
    def port(self) -> int:
        _, _, port = self.endpoint.partition(":")
        return int(port) if port else 443

    @property
    def region(self) -> str:
        """The signing region: Linode's cluster id is the endpoint's first label
        (`us-east-1.linodeobjects.com`)."""
        return self.host.split(".", 1)[0]

    @property
    def restic_url(self) -> str:
        return f"s3:https://{self.endpoint}/{self.bucket}/{REDIS_PREFIX}"

    @classmethod
    def placeholder(cls, stack: str) -> BackupRepository:
        """What reviews and golden files show before the bucket exists."""
        return cls(f"tunedstack-{stack}-backups", "us-east-1.linodeobjects.com")


@dataclass(frozen=True)
class BackupKeys:
    """The bucket's access key and the two encryption keys: Pulumi secrets, to the box only."""

    access_key: str
    secret_key: str
    postgres_cipher: str
    redis_password: str

    def __post_init__(self) -> None:
        if not _ACCESS_KEY.fullmatch(self.access_key):
            raise ValueError("the access key must be 8-128 letters and digits")
        if not _SECRET_KEY.fullmatch(self.secret_key):
            raise ValueError("the secret key must be 16-128 letters, digits, `/`, `+`, `=`")
        for name in ("postgres_cipher", "redis_password"):
            if not _KEY.fullmatch(getattr(self, name)):
                raise ValueError(f"{name} must be 32-128 letters and digits")

    def values(self) -> tuple[str, ...]:
        return (self.secret_key, self.postgres_cipher, self.redis_password)

    @classmethod
    def placeholders(cls) -> BackupKeys:
        return cls(
            "PLACEHOLDERaccessKey",
            "SECRETplaceholderSecretKey",
            "SECRETpostgresBackupCipher00000000",
            "SECRETredisBackupPassword000000000",
        )


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_S = 86_400


def days_of(schedule: str) -> set[int]:
    """The weekdays (0 = Monday) a day-based schedule runs on: `weekly` is systemd's Monday."""
    if schedule == "weekly":
        return {0}
    if schedule == "daily" or " " not in schedule:
        return set(range(7))
    days: set[int] = set()
    for part in schedule.split(" ")[0].split(","):
        first, _, last = part.partition("..")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days |= set(range(a, b + 1)) if a <= b else {*range(a, 7), *range(0, b + 1)}
    return days


def interval_s(*schedules: str) -> int:
    """The longest wait between two runs of any of `schedules` together: an hour if one is
    hourly, else the longest gap between the weekdays they run on (same time of day assumed,
    the longest gap counted whole)."""
    if "hourly" in schedules:
        return 3600
    days = sorted(set().union(*(days_of(s) for s in schedules)))
    gaps = [(b - a) % 7 or 7 for a, b in zip(days, [*days[1:], days[0]], strict=True)]
    return max(gaps) * DAY_S


def max_age_s(*schedules: str) -> int:
    """How old the newest backup of `schedules` may be before `tunedstack-backup status` fails:
    twice the longest wait between runs."""
    return 2 * interval_s(*schedules)
