"""Where things live on the box: paths, ports and names every template and script agrees on."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Paths:
    data_mount: str = "/srv/data"
    app_dir: str = "/opt/tunedstack/app"
    venv: str = "/opt/tunedstack/venv"
    app_socket: str = "/run/tunedstack/app.sock"
    app_env: str = "/etc/tunedstack/app.env"
    gunicorn_conf: str = "/etc/tunedstack/gunicorn.conf.py"
    manifest: str = "/etc/tunedstack/manifest"
    applied_manifest: str = "/var/lib/tunedstack/applied-manifest"
    ready_marker: str = "/var/lib/tunedstack/ready"
    staging_dir: str = "/var/lib/tunedstack"
    apply_script: str = "/usr/local/sbin/tunedstack-apply"
    firstboot_script: str = "/usr/local/sbin/tunedstack-firstboot"
    volume_script: str = "/usr/local/sbin/tunedstack-volume"
    drift_script: str = "/usr/local/sbin/tunedstack-drift"
    backup_script: str = "/usr/local/sbin/tunedstack-backup"
    restore_script: str = "/usr/local/sbin/tunedstack-restore"
    # restic's repository and the bucket's key, root only.
    backup_env: str = "/etc/tunedstack/backup.env"
    pgbackrest_conf: str = "/etc/pgbackrest.conf"
    # When each kind of backup last succeeded from this box.
    backup_state: str = "/var/lib/tunedstack/backups"
    # What the last drift check found: a file a status command can read.
    drift_report: str = "/var/lib/tunedstack/drift"
    packages_list: str = "/etc/tunedstack/packages"
    apt_dpkg_conf: str = "/etc/apt/apt.conf.d/21tunedstack-dpkg"
    app_deploy_key: str = "/etc/tunedstack/app-deploy-key"
    # One apply at a time: the rollout's, a first boot's, an operator's.
    apply_lock: str = "/var/lib/tunedstack/apply.lock"
    # The change an apply is making, on disk until it completes: what a cut-off run left.
    apply_journal: str = "/var/lib/tunedstack/journal"
    # The distribution's copy of each file tunedstack took over: back when it stops managing it.
    originals_dir: str = "/var/lib/tunedstack/originals"
    # What each detached run (first boot, apply) printed, root only.
    log_dir: str = "/var/log/tunedstack"
    sysctl_conf: str = "/etc/sysctl.d/60-tunedstack.conf"
    # sshd keeps the first value it reads, and reads its drop-ins in name order: sorting first
    # makes ours win over an image's (Debian's cloud images ship 50-cloud-init.conf).
    sshd_dropin: str = "/etc/ssh/sshd_config.d/00-tunedstack.conf"
    haproxy_cfg: str = "/etc/haproxy/haproxy.cfg"
    haproxy_socket: str = "/run/haproxy/admin.sock"
    redis_conf: str = "/etc/redis/redis.conf"
    root_authorized_keys: str = "/root/.ssh/authorized_keys"
    volume_device_prefix: str = "/dev/disk/by-id/scsi-0Linode_Volume_"


@dataclass(frozen=True)
class Ports:
    http: int = 80
    https: int = 443
    ssh: int = 22
    stats: int = 8404
    # Where a stock gunicorn listens: the TCP port its docs use.
    app_tcp: int = 8000
    postgres: int = 5432
    redis: int = 6379


@dataclass(frozen=True)
class Names:
    db_user: str = "app"
    db_name: str = "app"


# Linode's metadata service: it hands the first-boot document (the SSH host key) to any local
# process that asks, so no service of the box may reach it.
METADATA_SERVICE = "169.254.169.254"

PATHS = Paths()
PORTS = Ports()
NAMES = Names()
SAMPLE_APP_MODULE = "tunedstack_app"
FIREWALL_LABEL_MAX = 32


# Linode's label lengths: instances (the provider refuses more than 50 at preview, the API
# 64), firewalls, volumes.
INSTANCE_LABEL_LENGTH = (3, 50)
FIREWALL_LABEL_LENGTH = (3, FIREWALL_LABEL_MAX)
VOLUME_LABEL_LENGTH = (1, 32)
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.\-]*[A-Za-z0-9])?")
_DOUBLED = re.compile(r"--|__|\.\.")


def label_problem(label: str, lengths: tuple[int, int]) -> str | None:
    """What Linode refuses in a label, or None: its length, letters, digits, `-`, `_` and `.`
    only, alphanumeric at both ends, no doubled `-`, `_` or `.`."""
    low, high = lengths
    if not low <= len(label) <= high:
        return f"is {len(label)} characters; Linode allows {low}-{high}"
    if not _LABEL.fullmatch(label):
        return "may hold only letters, digits, `-`, `_` and `.`, alphanumeric at both ends"
    if _DOUBLED.search(label):
        return "may not hold a doubled `-`, `_` or `.`"
    return None


def volume_label(stack: str) -> str:
    """Linode volume labels: 1-32 of letters, digits, `-` and `_`."""
    return f"tunedstack-{stack}-data"[:32]


def firewall_label(instance_label: str) -> str:
    """Linode firewall labels: 3-32 characters. A longer instance label keeps its first 23
    characters and a hash of the whole, so two long labels never share a firewall label."""
    if len(instance_label) <= FIREWALL_LABEL_MAX:
        return instance_label
    digest = hashlib.sha256(instance_label.encode()).hexdigest()[:8]
    return f"{instance_label[: FIREWALL_LABEL_MAX - 9].rstrip('-_.')}-{digest}"


def volume_device(stack: str) -> str:
    return PATHS.volume_device_prefix + volume_label(stack)
