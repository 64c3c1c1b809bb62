"""What the rehearsal needs from the host: Debian packages, a cache folder, a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

HOST_PACKAGES = (
    "qemu-system-x86",
    "qemu-utils",
    "debootstrap",
    "genisoimage",
    "openssh-client",
    "e2fsprogs",
    "iproute2",  # the benchmark's load link: `ip tuntap` in its own network namespace
)


class HostError(RuntimeError):
    """The host cannot run the rehearsal; the message says what is missing."""


def missing_packages(packages: tuple[str, ...] = HOST_PACKAGES) -> list[str]:
    missing = []
    for pkg in packages:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False
        ).stdout
        if "install ok installed" not in status:
            missing.append(pkg)
    return missing


def ensure_packages(log: Path, packages: tuple[str, ...] = HOST_PACKAGES) -> None:
    """apt installs what is missing; its output goes to `log`, its last lines into the error."""
    missing = missing_packages(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        raise HostError(f"run as root, or install first: apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        ):
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise HostError(f"{command[1]} failed (exit {done.returncode}); {log}:\n{tail}")


def cache_root() -> Path:
    """Outside the checkout: $TUNEDSTACK_CACHE, else $XDG_CACHE_HOME/tunedstack, else ~/.cache."""
    if "TUNEDSTACK_CACHE" in os.environ:
        return Path(os.environ["TUNEDSTACK_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "tunedstack"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise HostError(f"{tool} is not installed")
    return found
