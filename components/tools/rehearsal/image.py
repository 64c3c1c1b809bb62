"""The cached Debian 12 base image, close to Linode's `linode/debian12`: debootstrap with the
kernel, systemd, cloud-init, sshd and every package the stack installs, so a rehearsal boots
with no downloads but `apt-get update`. Rebuilt when its recipe changes (the recipe's hash names
the cache folder)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from components.model.packages import PACKAGES

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "cloud-init",
    "openssh-server",
    "sudo",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "iputils-ping",
    "procps",
    "netbase",
    "less",
    "ca-certificates",
    "python3",
    "locales",
    "kmod",
    # debootstrap does not resolve this virtual dependency of python3-cryptography (cloud-init).
    "python3-cffi-backend",
)
ROOT_SIZE = "6G"
# Bump when a step below changes in a way the package list does not show.
RECIPE_VERSION = 1


@dataclass(frozen=True)
class BaseImage:
    folder: Path

    @property
    def disk(self) -> Path:
        return self.folder / "base.qcow2"

    @property
    def kernel(self) -> Path:
        return self.folder / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.folder / "initrd.img"

    @property
    def ready(self) -> bool:
        return all(p.is_file() for p in (self.disk, self.kernel, self.initrd))


def recipe() -> dict[str, object]:
    return {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "mirror": MIRROR,
        "packages": sorted({*BASE_PACKAGES, *PACKAGES}),
        "root_size": ROOT_SIZE,
    }


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


def _configure(root: Path) -> None:
    (root / "etc/fstab").write_text("LABEL=vmroot / ext4 defaults,discard,errors=remount-ro 0 1\n")
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    # A new machine-id and new SSH host keys on every boot of a fresh disk, like a new Linode.
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/cloud/cloud.cfg.d/90-datasource.cfg").write_text(
        "datasource_list: [ NoCloud, None ]\n"
    )
    # cloud-init's locale step needs the locale Linode's image has.
    locale_gen = root / "etc/locale.gen"
    locale_gen.write_text(
        locale_gen.read_text().replace("# en_US.UTF-8 UTF-8", "en_US.UTF-8 UTF-8")
    )
    subprocess.run(["chroot", str(root), "locale-gen"], check=True, capture_output=True)
    (root / "etc/apt/sources.list").write_text(f"deb {MIRROR} {SUITE} main\n")
    # Services start when first boot says so, as on a box where cloud-init installs them.
    subprocess.run(
        [
            "chroot",
            str(root),
            "systemctl",
            "disable",
            "redis-server",
            "haproxy",
            "postgresql",
            "e2scrub_reap.service",
        ],
        check=False,
        capture_output=True,
    )
    subprocess.run(["chroot", str(root), "apt-get", "clean"], check=True, capture_output=True)
    # Keep apt's lists: first boot's `apt-get update` then only revalidates them.
    shutil.rmtree(root / "debootstrap", ignore_errors=True)


def current_image(cache: Path) -> BaseImage:
    """Where the image of the current recipe lives (built or not)."""
    return BaseImage(cache / "images" / recipe_hash())


def build(cache: Path, log: Path | None = None) -> BaseImage:
    """The image for the current recipe, built once (a lock keeps parallel builds apart)."""
    image = current_image(cache)
    image.folder.mkdir(parents=True, exist_ok=True)
    with (image.folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.ready:
            return image
        log = log or image.folder / "build.log"
        work = image.folder / "work"
        shutil.rmtree(work, ignore_errors=True)
        rootfs = work / "rootfs"
        debs = cache / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with log.open("w") as out:
            include = ",".join(sorted({*BASE_PACKAGES, *PACKAGES}))
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--cache-dir={debs}",
                    f"--include={include}",
                    SUITE,
                    str(rootfs),
                    MIRROR,
                ],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            out.write(f"debootstrap took {time.monotonic() - started:.0f}s\n")
            _configure(rootfs)
            raw = work / "root.raw"
            subprocess.run(["truncate", "-s", ROOT_SIZE, str(raw)], check=True)
            subprocess.run(
                ["mkfs.ext4", "-q", "-F", "-L", "vmroot", "-d", str(rootfs), str(raw)],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            subprocess.run(
                ["qemu-img", "convert", "-O", "qcow2", str(raw), str(image.disk)], check=True
            )
            shutil.copy(next((rootfs / "boot").glob("vmlinuz-*")), image.kernel)
            shutil.copy(next((rootfs / "boot").glob("initrd.img-*")), image.initrd)
            out.write(f"image built in {time.monotonic() - started:.0f}s\n")
        shutil.rmtree(work, ignore_errors=True)
        (image.folder / "recipe.json").write_text(json.dumps(recipe(), indent=2))
        return image
