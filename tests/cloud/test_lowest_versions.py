"""The lowest version pyproject.toml allows of a provider SDK has every argument the program
passes it: a fresh install that resolves to that version must not fail with a TypeError.

The SDK's wheel at that version comes from the package registry (pip download, no install) and
its generated source is read for the keyword arguments.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What components/cloud/rollout.py passes pulumi-command, per generated module.
ROLLOUT_USES = {
    "pulumi_command/remote/_inputs.py": ("host_key", "dial_error_limit", "per_dial_timeout"),
    "pulumi_command/remote/command.py": ("add_previous_output_in_env", "stdin"),
}


def lowest_allowed(package: str) -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        match = re.fullmatch(rf"{re.escape(package)}>=([\w.]+),.*", requirement)
        if match:
            return match.group(1)
    raise AssertionError(f"{package} has no lower bound in pyproject.toml")


def lowest_wheel(package: str, folder: Path) -> tuple[str, Path]:
    """The wheel of the lowest version pyproject.toml allows (skips when the registry is out
    of reach)."""
    version = lowest_allowed(package)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    fetched = subprocess.run(
        [*pip, "-d", str(folder), f"{package}=={version}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if fetched.returncode != 0:
        pytest.skip(f"{package} {version} could not be downloaded: {fetched.stderr[-200:]}")
    (wheel,) = folder.glob("*.whl")
    return version, wheel


def missing_arguments(wheel: Path, uses: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        found = {module: archive.read(module).decode() for module in uses}
    missing = {m: [a for a in args if f" {a}: " not in found[m]] for m, args in uses.items()}
    return {m: args for m, args in missing.items() if args}


def test_the_arguments_the_rollout_passes_exist_in_the_lowest_pulumi_command(
    tmp_path: Path,
) -> None:
    version, wheel = lowest_wheel("pulumi-command", tmp_path)
    assert missing_arguments(wheel, ROLLOUT_USES) == {}, f"pulumi-command {version}"


# What components/cloud/backups.py passes pulumi-linode (and reads: s3_endpoint).
BACKUPS_USES = {
    "pulumi_linode/object_storage_bucket.py": (
        "label",
        "region",
        "acl",
        "lifecycle_rules",
        "s3_endpoint",
    ),
    "pulumi_linode/object_storage_key.py": ("label", "bucket_accesses"),
    "pulumi_linode/_inputs.py": (
        "abort_incomplete_multipart_upload_days",
        "enabled",
        "id",
        "bucket_name",
        "permissions",
        "region",
    ),
}


def test_the_arguments_the_backup_bucket_passes_exist_in_the_lowest_pulumi_linode(
    tmp_path: Path,
) -> None:
    version, wheel = lowest_wheel("pulumi-linode", tmp_path)
    assert missing_arguments(wheel, BACKUPS_USES) == {}, f"pulumi-linode {version}"


def test_the_backup_bucket_passes_only_the_arguments_checked_above() -> None:
    source = (REPO / "components/cloud/backups.py").read_text()
    passed = set(re.findall(r"^\s+(\w+)=", source, flags=re.M))
    checked = {a for arguments in BACKUPS_USES.values() for a in arguments}
    # pulumi-random's (RandomId and RandomPassword since 4.0) and Pulumi's own.
    random = {"byte_length", "length", "special"}
    assert passed - checked <= random | {
        "opts",
        "parent",
        "protect",
        "retain_on_delete",
        "additional_secret_outputs",
    }


def test_the_rollout_passes_only_the_arguments_checked_above() -> None:
    source = (REPO / "components/cloud/rollout.py").read_text()
    passed = set(re.findall(r"^\s+(\w+)=", source, flags=re.M))
    checked = {a for arguments in ROLLOUT_USES.values() for a in arguments}
    # These exist in every 1.x release (and opts and parent are Pulumi's own).
    every_release = {"connection", "host", "user", "private_key", "create", "update"}
    assert passed - checked <= every_release | {"opts", "parent"}
