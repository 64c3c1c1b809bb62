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


def test_the_arguments_the_rollout_passes_exist_in_the_lowest_pulumi_command(
    tmp_path: Path,
) -> None:
    version = lowest_allowed("pulumi-command")
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    fetched = subprocess.run(
        [*pip, "-d", str(tmp_path), f"pulumi-command=={version}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if fetched.returncode != 0:
        pytest.skip(f"pulumi-command {version} could not be downloaded: {fetched.stderr[-200:]}")
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for module, arguments in ROLLOUT_USES.items():
            source = archive.read(module).decode()
            missing = [a for a in arguments if f" {a}: " not in source]
            assert missing == [], f"pulumi-command {version} {module} lacks {missing}"


def test_the_rollout_passes_only_the_arguments_checked_above() -> None:
    source = (REPO / "components/cloud/rollout.py").read_text()
    passed = set(re.findall(r"^\s+(\w+)=", source, flags=re.M))
    checked = {a for arguments in ROLLOUT_USES.values() for a in arguments}
    # These exist in every 1.x release (and opts and parent are Pulumi's own).
    every_release = {"connection", "host", "user", "private_key", "create", "update"}
    assert passed - checked <= every_release | {"opts", "parent"}
