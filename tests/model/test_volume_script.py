"""The data volume script (cloud-init/volume.sh.j2) on a real block device: a loop device over a
temp file, mounted only inside a private mount namespace. It must format a blank device, keep an
ext4 one, and refuse everything else, above all when blkid fails on a volume holding data."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.model.layout import PATHS
from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from tests.namespace import needs_namespace, run_steps

REPO = Path(__file__).resolve().parents[2]
MARKER = "rows written before the replacement"

pytestmark = [
    needs_namespace,
    pytest.mark.skipif(
        shutil.which("losetup") is None or not Path("/dev/loop-control").exists(),
        reason="needs loop devices",
    ),
]


@pytest.fixture
def device(tmp_path: Path) -> Iterator[str]:
    image = tmp_path / "volume.img"
    with image.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    dev = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "--detach", dev], check=False)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    settings = load_stack_file(REPO / "stacks", "staging")
    rendered = render_files("staging", settings, size(settings), Secrets.placeholders())
    path = tmp_path / "tunedstack-volume"
    path.write_text(rendered.by_path()[PATHS.volume_script].content)
    path.chmod(0o755)
    return path


def _blkid_that_fails(tmp_path: Path, status: int) -> Path:
    """A blkid earlier on PATH that fails once with `status`, as a flaky read would."""
    shim = tmp_path / "flaky"
    shim.mkdir()
    (shim / "blkid").write_text(
        f'#!/bin/sh\necho "blkid $*" >> {tmp_path}/blkid.log\nexit {status}\n'
    )
    (shim / "blkid").chmod(0o755)
    return shim


def _with_data(dev: str, mnt: Path) -> str:
    return (
        f"mkfs.ext4 -q -L tunedstack-data {dev} && mkdir -p {mnt} && mount {dev} {mnt} && "
        f"echo '{MARKER}' > {mnt}/marker && umount {mnt}"
    )


def _check_data(dev: str, mnt: Path) -> str:
    return f"mkdir -p {mnt}.check && mount -o ro {dev} {mnt}.check && cat {mnt}.check/marker"


def test_a_blank_device_is_formatted_and_mounted(tmp_path: Path, device: str, script: Path) -> None:
    mnt = tmp_path / "data"
    (run,) = run_steps(
        tmp_path, [f"{script} {device} {mnt} && mountpoint {mnt} && grep ' {mnt} ' /etc/fstab"]
    )
    assert run.ok, run.output
    assert "is blank: creating its ext4 filesystem" in run.output
    assert f"{mnt} is a mountpoint" in run.output
    assert run.log == ["systemctl daemon-reload"]


def test_an_ext4_volume_is_kept_and_mounted(tmp_path: Path, device: str, script: Path) -> None:
    mnt = tmp_path / "data"
    _, run = run_steps(
        tmp_path, [_with_data(device, mnt), f"{script} {device} {mnt} && cat {mnt}/marker"]
    )
    assert run.ok, run.output
    assert "kept the ext4 filesystem" in run.output and MARKER in run.output
    assert "creating" not in run.output


@pytest.mark.parametrize("status", [2, 4, 8], ids=["nothing found", "usage", "ambiguous"])
def test_a_failing_blkid_never_costs_the_data(
    tmp_path: Path, device: str, script: Path, status: int
) -> None:
    """blkid failing on a volume that holds data, even claiming it found nothing: refused, and
    the data is still there for the next try (the old `blkid || mkfs.ext4` formatted it)."""
    mnt = tmp_path / "data"
    shim = _blkid_that_fails(tmp_path, status)
    _, refused, data, retry = run_steps(
        tmp_path,
        [
            _with_data(device, mnt),
            f"PATH={shim}:$PATH {script} {device} {mnt}",
            _check_data(device, mnt),
            f"{script} {device} {mnt} && cat {mnt}/marker",
        ],
    )
    assert refused.output.endswith("rc=1\n"), refused.output
    assert f"refusing to format or mount {device}" in refused.output
    assert "Nothing was written to it" in refused.output
    assert "creating" not in refused.output
    assert (tmp_path / "blkid.log").read_text().startswith("blkid -p")
    assert data.ok and MARKER in data.output
    assert retry.ok and MARKER in retry.output, retry.output


def test_unknown_data_without_a_signature_is_refused(
    tmp_path: Path, device: str, script: Path
) -> None:
    mnt = tmp_path / "data"
    (run,) = run_steps(
        tmp_path,
        [
            f"head -c 65536 /dev/urandom | dd of={device} bs=65536 seek=2 conv=notrunc status=none"
            f" && {script} {device} {mnt}"
        ],
    )
    assert run.output.endswith("rc=1\n"), run.output
    assert "its first MiB holds data" in run.output


def test_something_else_than_ext4_is_refused(tmp_path: Path, device: str, script: Path) -> None:
    mnt = tmp_path / "data"
    (run,) = run_steps(tmp_path, [f"mkswap {device} > /dev/null && {script} {device} {mnt}"])
    assert run.output.endswith("rc=1\n"), run.output
    assert "it holds swap, not ext4" in run.output
