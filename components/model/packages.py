"""The distribution packages the box runs: the same names on Debian 12 and Ubuntu 24.04.

The rollout installs whichever are missing before it installs any file, so a box replaced with
an older first-boot document, or a stack that gains a capability, still gets all of them.
"""

from __future__ import annotations

# Everything the box runs comes from the distribution: no pip at boot unless the app needs it.
PACKAGES = (
    "haproxy",
    "redis-server",
    "postgresql",
    "gunicorn",
    "python3-psycopg2",
    "python3-redis",
    "python3-venv",
    "unattended-upgrades",
    # Off-box backups: PostgreSQL's base backups and WAL, Redis' snapshots.
    "pgbackrest",
    "restic",
    "curl",
)
