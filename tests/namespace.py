"""Run shell steps as root inside a private mount namespace whose /etc, /usr/local, /opt,
/var/lib, /var/log, /root and /srv are overlays over a temp dir: scripts install files for real, the
host is untouched. Commands that would change the running system are recorders on PATH; the
daemons' own config checks (haproxy -c, redis-server on a candidate file) run for real.

The systemctl recorder keeps each unit's state: a unit is active until a start, restart or
reload of it fails (a test's `scripts` decide that, e.g. from the file the unit would read),
and active again once one succeeds. The sysctl recorder reports, for `sysctl -n KEY`, the value
the tunedstack sysctl file sets, as a kernel that took it would."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OVERLAID = ("/etc", "/usr/local", "/opt", "/var/lib", "/var/log", "/root", "/srv")
RECORDED = (
    "systemctl",
    "sysctl",
    "systemd-tmpfiles",
    "runuser",
    "cloud-init",
    "hostnamectl",
    "apt-get",
    "sshd",
    "curl",
    "journalctl",
)
# What the recorders do unless a test's `scripts` already exited.
DEFAULTS = {
    "systemctl": """
units=$(dirname "$0")/units; mkdir -p "$units"
case $1 in
    is-active) [ ! -e "$units/${!#}.failed" ] ;;
    start|restart|reload|reload-or-restart) rm -f "$units/$2.failed" ;;
esac
exit $?
""",
    # PostgreSQL asks for no restart; a test's script says otherwise.
    "runuser": """
case "$*" in *pending_restart*) echo 0 ;; esac
""",
    "sysctl": """
if [ "$1" = -n ]; then
    sed -n "s/^$2 = //p" /etc/sysctl.d/60-tunedstack.conf | tail -1
fi
""",
}
# Recorded commands that only ask: left out of `Run.changes`.
QUERIES = (
    "systemctl is-active",
    "systemctl status",
    "sysctl -n",
    "curl ",
    "journalctl ",
    "sshd -t",
    "runuser -u postgres -- /usr/lib/postgresql/",  # postgres -C: a config check
    "runuser -u postgres -- psql -XAtc SELECT",
)

needs_namespace = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare for a private mount namespace",
)


@dataclass
class Run:
    log: list[str]
    output: str

    @property
    def ok(self) -> bool:
        return self.output.endswith("rc=0\n")

    @property
    def changes(self) -> list[str]:
        """The recorded commands that would change the system, in order."""
        return [line for line in self.log if not line.startswith(QUERIES)]


def run_steps(
    tmp_path: Path,
    steps: list[str],
    answers: dict[str, str] | None = None,
    exit_codes: dict[str, int] | None = None,
    scripts: dict[str, str] | None = None,
    wraps: dict[str, str] | None = None,
    network: bool = False,
) -> list[Run]:
    """Run `steps` in one namespace; per step, the recorded commands and the output.

    `answers` gives what a recorder prints; `exit_codes` what it exits with; `scripts` bash run
    by a recorder first (it may exit: `touch "$units/$2.failed"; exit 1` fails a systemctl).
    `wraps` puts bash before a real, unrecorded command (`chown`, say): a way to cut a run off
    at a chosen point of its work. `network` gives the steps a network namespace of their own
    (its loopback up), for real daemons that bind ports.
    """
    answers, exit_codes, scripts = answers or {}, exit_codes or {}, scripts or {}
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, hook in (wraps or {}).items():
        real = shutil.which(name)
        assert real is not None, name
        stub = stubs / name
        stub.write_text(f'#!/bin/bash\nunits=$(dirname "$0")/units\n{hook}\nexec {real} "$@"\n')
        stub.chmod(0o755)
    record = tmp_path / "record"
    for name in RECORDED:
        stub = stubs / name
        lines = [f'echo "{name} $*" >> {record}', 'units=$(dirname "$0")/units']
        lines.append(scripts.get(name, ""))
        if name in answers:
            lines.append(f"echo {answers[name]}")
        if name in exit_codes:
            lines.append(f"exit {exit_codes[name]}")
        lines.append(DEFAULTS.get(name, ""))
        stub.write_text("#!/bin/bash\n" + "\n".join(lines) + "\nexit 0\n")
        stub.chmod(0o755)
    mounts = []
    for i, folder in enumerate(OVERLAID):
        upper, work = tmp_path / f"upper{i}", tmp_path / f"work{i}"
        upper.mkdir()
        work.mkdir()
        options = f"lowerdir={folder},upperdir={upper},workdir={work}"
        mounts.append(f"mount -t overlay overlay -o {options} {folder}")
    body = [
        f": > {record}; ( {step} ) > {tmp_path}/out{n} 2>&1; "
        f"echo rc=$? >> {tmp_path}/out{n}; cp {record} {tmp_path}/rec{n}"
        for n, step in enumerate(steps)
    ]
    driver = tmp_path / "driver.sh"
    if network:
        mounts.append("ip link set lo up")
    driver.write_text(
        "set -e\n"
        + "\n".join(mounts)
        + f"\nexport PATH={stubs}:$PATH\nset +e\n"
        + "\n".join(body)
        + "\n"
    )
    subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            *(["--net"] if network else []),
            "bash",
            str(driver),
        ],
        check=True,
        timeout=120,
    )
    return [
        Run((tmp_path / f"rec{n}").read_text().splitlines(), (tmp_path / f"out{n}").read_text())
        for n in range(len(steps))
    ]


def stage(files: dict[str, tuple[str, str]], folder: Path) -> None:
    """Write {path: (content, mode)} under `folder`, as cloud-init's write_files would."""
    for path, (content, mode) in files.items():
        target = folder / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(int(mode, 8))


def write_files(staged: Path) -> str:
    """Shell that puts a staged render in place as cloud-init's write_files would: each file
    with the owner and mode its manifest line gives."""
    from components.model.layout import PATHS

    owners = (
        "while read -r mode owner actions path; do chown $owner $path && chmod $mode $path; "
        f"done < {PATHS.manifest}"
    )
    return f"cp -a {staged}/. / && {owners}"


def apply_steps(tmp_path: Path, steps: list[str], pending_restart: str = "0") -> list[Run]:
    """`run_steps` for the apply script: `runuser` (psql) answers its pending_restart query."""
    pending = f'case "$*" in *pending_restart*) echo {pending_restart}; exit 0 ;; esac'
    return run_steps(tmp_path, steps, scripts={"runuser": pending})


def first_boot(staged: Path) -> str:
    """What cloud-init's write_files does, then the apply the first-boot script runs."""
    from components.model.layout import PATHS

    return f"{write_files(staged)} && {PATHS.apply_script}"
