"""The #cloud-config document: valid for cloud-init, decodes to the rendered files, fits Linode."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from components.model.render import Rendered, Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.model.userdata import (
    USER_DATA_LIMIT,
    UserDataTooLarge,
    cloud_config,
    decode_files,
    user_data_b64,
    write_file,
)
from tests import goldens

REPO = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEtunedstackTestKeyOnlyForTheseTests00000000 test"


def _rendered(stack: str) -> tuple[Rendered, str]:
    settings = load_stack_file(REPO / "stacks", stack)
    rendered = render_files(stack, settings, size(settings), Secrets.placeholders())
    return rendered, cloud_config(rendered, settings.instance_label(stack), [KEY])


def test_cloud_init_schema_accepts_the_document(stack_name: str, tmp_path: Path) -> None:
    _, document = _rendered(stack_name)
    path = tmp_path / "user-data"
    path.write_text(document)
    result = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_cloud_init_schema_check_can_fail(tmp_path: Path) -> None:
    _, document = _rendered("staging")
    path = tmp_path / "user-data"
    path.write_text(document.replace("ssh_pwauth: false", "ssh_pwauth: [not, a, bool]"))
    assert (
        subprocess.run(
            ["cloud-init", "schema", "--config-file", str(path)], capture_output=True
        ).returncode
        != 0
    )


def test_document_decodes_to_exactly_the_rendered_files(stack_name: str) -> None:
    rendered, document = _rendered(stack_name)
    assert decode_files(document) == {f.path: f.content for f in rendered.files}


def test_document_shape(stack_name: str) -> None:
    rendered, document = _rendered(stack_name)
    assert document.startswith("#cloud-config\n")
    parsed = yaml.safe_load(document)
    assert parsed["ssh_pwauth"] is False
    assert parsed["ssh_authorized_keys"] == [KEY]
    assert parsed["runcmd"] == [["/usr/local/sbin/tunedstack-firstboot"]]
    assert all(entry["defer"] is True for entry in parsed["write_files"])
    modes = {e["path"]: e.get("permissions", "0644") for e in parsed["write_files"]}
    assert modes == {f.path: f.mode for f in rendered.files}


def test_document_fits_linode_and_is_deterministic(stack_name: str) -> None:
    _, document = _rendered(stack_name)
    assert len(document.encode()) <= USER_DATA_LIMIT
    assert _rendered(stack_name)[1] == document


def test_large_files_are_compressed_small_ones_are_not() -> None:
    rendered, _ = _rendered("staging")
    haproxy = write_file(rendered.by_path()["/etc/haproxy/haproxy.cfg"])
    assert haproxy.encoding == "gz+b64"
    tiny = write_file(rendered.by_path()["/etc/modules-load.d/tunedstack.conf"])
    assert tiny.encoding is None and tiny.payload.endswith("nf_conntrack\n")


def test_too_large_a_document_names_its_largest_parts() -> None:
    rendered, _ = _rendered("staging")
    with pytest.raises(UserDataTooLarge) as err:
        cloud_config(rendered, "tunedstack-staging", [KEY] * 200)
    text = str(err.value)
    assert "stacks/Pulumi.staging.yaml" in text
    assert f"over Linode's {USER_DATA_LIMIT}-byte limit" in text
    assert "largest parts: tunedstack:sshKeys (200 keys)" in text
    assert "/opt/tunedstack/app/tunedstack_app.py" in text


def test_base64_is_what_linode_takes() -> None:
    _, document = _rendered("staging")
    assert base64.b64decode(user_data_b64(document)).decode() == document


def test_staging_document_matches_golden() -> None:
    """Refresh after an intended change: UPDATE_GOLDEN=1 bin/test tests/model/test_userdata.py"""
    _, document = _rendered("staging")
    goldens.check("staging-user-data", {"user-data": document})
