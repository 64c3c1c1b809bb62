"""Run shell steps as root inside a private mount namespace whose /etc, /usr/local, /opt,
/var/lib, /var/log and /root are overlays over a temp dir: scripts install files for real, the
host is untouched. Commands that would change the running system are recorders on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OVERLAID = ("/etc", "/usr/local", "/opt", "/var/lib", "/var/log", "/root")
RECORDED = (
    "systemctl",
    "sysctl",
    "systemd-tmpfiles",
    "runuser",
    "cloud-init",
    "hostnamectl",
    "apt-get",
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


def run_steps(
    tmp_path: Path,
    steps: list[str],
    answers: dict[str, str] | None = None,
    exit_codes: dict[str, int] | None = None,
) -> list[Run]:
    """Run `steps` in one namespace; per step, the recorded commands and the output.

    `answers` gives what a recorder prints; `exit_codes` what it exits with.
    """
    answers, exit_codes = answers or {}, exit_codes or {}
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    record = tmp_path / "record"
    for name in RECORDED:
        stub = stubs / name
        lines = [f'echo "{name} $*" >> {record}']
        if name in answers:
            lines.append(f"echo {answers[name]}")
        lines.append(f"exit {exit_codes.get(name, 0)}")
        stub.write_text("#!/bin/sh\n" + "\n".join(lines) + "\n")
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
    driver.write_text(
        "set -e\n"
        + "\n".join(mounts)
        + f"\nexport PATH={stubs}:$PATH\nset +e\n"
        + "\n".join(body)
        + "\n"
    )
    subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", str(driver)],
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
