"""The first-boot document: valid for cloud-init, only the two keys, the same for any stack
change, and well inside the 12 KB the project keeps (Linode's limit is 16 KiB)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from components.model.render import Secrets
from components.model.userdata import (
    PLACEHOLDER_KEYS,
    USER_DATA_BUDGET,
    USER_DATA_LIMIT,
    FirstBootKeys,
    UserDataTooLarge,
    cloud_config,
    user_data_b64,
)
from components.tools.review import render_stack
from tests import goldens

REPO = Path(__file__).resolve().parents[2]
RSA_4096 = "ssh-rsa " + "A" * 716 + " admin@laptop"  # the length of a real RSA-4096 key line


def _schema(tmp_path: Path, document: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "user-data"
    path.write_text(document)
    return subprocess.run(
        ["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True
    )


def test_cloud_init_schema_accepts_the_document(tmp_path: Path) -> None:
    result = _schema(tmp_path, cloud_config(PLACEHOLDER_KEYS, "staging"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_cloud_init_schema_check_can_fail(tmp_path: Path) -> None:
    document = cloud_config(PLACEHOLDER_KEYS, "staging")
    broken = document.replace("ssh_pwauth: false", "ssh_pwauth: [not, a, bool]")
    assert _schema(tmp_path, broken).returncode != 0


def test_document_holds_the_host_key_and_the_deploy_key_only() -> None:
    private = "-----BEGIN X-----\nabc\n-----END X-----\n"
    keys = FirstBootKeys(private, "ssh-ed25519 HOST", "ssh-ed25519 DEPLOY d")
    parsed = yaml.safe_load(cloud_config(keys, "staging"))
    assert parsed["ssh_keys"] == {
        "ed25519_private": private,
        "ed25519_public": "ssh-ed25519 HOST",
    }
    assert parsed["ssh_authorized_keys"] == ["ssh-ed25519 DEPLOY d"]
    assert parsed["ssh_pwauth"] is False and parsed["ssh_deletekeys"] is True
    assert set(parsed) == {
        "ssh_pwauth",
        "disable_root",
        "ssh_deletekeys",
        "ssh_keys",
        "ssh_authorized_keys",
        "final_message",
    }


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_document_stays_under_the_projects_budget(stack: str) -> None:
    """12 KB with three RSA-4096 admin keys: they live in a rendered file, not in the document."""
    _, document = render_stack(REPO, stack, Secrets.placeholders(), [RSA_4096] * 3)
    assert len(document.encode()) <= USER_DATA_BUDGET


def test_an_oversized_document_is_refused_at_preview() -> None:
    huge = FirstBootKeys("x" * USER_DATA_LIMIT, "ssh-ed25519 HOST", "ssh-ed25519 DEPLOY")
    with pytest.raises(UserDataTooLarge, match=f"over Linode's {USER_DATA_LIMIT}-byte limit"):
        cloud_config(huge, "staging")


def test_base64_is_what_linode_takes() -> None:
    document = cloud_config(PLACEHOLDER_KEYS, "staging")
    assert base64.b64decode(user_data_b64(document)).decode() == document


def test_document_matches_golden() -> None:
    """Refresh after an intended change: UPDATE_GOLDEN=1 bin/test tests/model/test_userdata.py"""
    goldens.check("staging-user-data", {"user-data": cloud_config(PLACEHOLDER_KEYS, "staging")})
