"""Secrets users might put in settings: refused where they would leak, carried as Pulumi secrets
where they belong, and never repeated by an error message."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.model.errors import SettingsError
from components.model.layout import PATHS
from components.model.project import PACKAGE_ROOT
from components.model.render import PLACEHOLDER_APP_DEPLOY_KEY, Secrets, render_files
from components.model.settings import GitSource, load_stack_file, raw_from_stack_text, validate
from components.model.sizing import size

BASE = {"region": "us-east", "plan": "g6-standard-2"}
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


def _error(raw: dict[str, object]) -> str:
    with pytest.raises(SettingsError) as e:
        validate({**BASE, **raw}, "stacks/Pulumi.t.yaml")
    return str(e.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://x-access-token:ghp_Secret123@github.com/acme/shop.git",
        "https://ghp_Secret123@github.com/acme/shop.git",
        "ssh://git:ghp_Secret123@github.com/acme/shop.git",
    ],
)
def test_a_url_with_credentials_is_refused_and_not_repeated(url: str) -> None:
    message = _error({"app": {"git": {"url": url}}})
    assert "tunedstack:app.git.url" in message and "holds credentials" in message
    assert "ghp_Secret123" not in message


def test_a_deploy_key_needs_an_ssh_url() -> None:
    message = _error({"app": {"git": {"url": "https://github.com/a/b.git", "deployKey": True}}})
    assert "needs an ssh://git@host/... or git@host:path URL" in message


def test_an_scp_like_url_reaches_pip_as_an_ssh_url() -> None:
    git = GitSource(url="git@github.com:acme/shop.git", ref="v1", deploy_key=True)
    assert git.requirement == "git+ssh://git@github.com/acme/shop.git@v1"


def test_a_private_key_pasted_as_an_admin_key_is_named_and_never_shown() -> None:
    message = _error({"sshKeys": [PRIVATE_KEY]})
    assert "holds a private key: give the public one" in message
    assert "b3Bl" not in message and "(a private key: not shown)" in message


def _stack_text(deploy_key: str) -> str:
    return (
        "config:\n  tunedstack:region: us-east\n  tunedstack:plan: g6-standard-2\n"
        "  tunedstack:app:\n    git:\n      url: git@github.com:acme/shop.git\n"
        f"      deployKey: true\n  tunedstack:appDeployKey:{deploy_key}\n"
    )


def test_a_plaintext_deploy_key_in_a_stack_file_is_refused_without_showing_it() -> None:
    text = _stack_text(" |\n    " + PRIVATE_KEY.replace("\n", "\n    "))
    with pytest.raises(SettingsError) as e:
        raw_from_stack_text(text, "stacks/Pulumi.t.yaml")
    assert "tunedstack:appDeployKey = (missing): is in plain text" in str(e.value)
    assert "b3Bl" not in str(e.value)


def test_an_encrypted_deploy_key_renders_as_a_placeholder_in_reviews(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.t.yaml").write_text(_stack_text("\n    secure: v1:AAAAciphertext"))
    settings = load_stack_file(tmp_path, "t")
    rendered = render_files("t", settings, size(settings), Secrets.placeholders())
    key_file = rendered.by_path()[PATHS.app_deploy_key]
    assert key_file.mode == "0600"
    assert key_file.content == PLACEHOLDER_APP_DEPLOY_KEY + "\n"
    firstboot = rendered.by_path()[PATHS.firstboot_script].content
    assert f'GIT_SSH_COMMAND="ssh -i {PATHS.app_deploy_key} -o IdentitiesOnly=yes' in firstboot
    assert "pip install --quiet git+ssh://git@github.com/acme/shop.git@main" in firstboot


def test_without_a_deploy_key_no_key_file_is_rendered() -> None:
    settings = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    rendered = render_files("staging", settings, size(settings), Secrets.placeholders())
    assert PATHS.app_deploy_key not in rendered.by_path()
    assert "GIT_SSH_COMMAND" not in rendered.by_path()[PATHS.firstboot_script].content


def test_production_may_not_open_ssh_to_everyone() -> None:
    for everyone in ("0.0.0.0/0", "::/0"):
        message = _error({"environment": "production", "adminCidrs": [everyone]})
        assert "may not open SSH to the whole internet" in message
    staging = validate({**BASE, "adminCidrs": ["0.0.0.0/0"]}, "t")
    assert staging.admin_cidrs == ["0.0.0.0/0"]


@pytest.mark.parametrize("tags", [["ab"], ["x" * 51], ["ok-tag", "ok-tag"]])
def test_tags_the_linode_api_refuses_are_refused_at_preview(tags: list[str]) -> None:
    assert "tunedstack:tags" in _error({"tags": tags})


def test_a_label_the_provider_refuses_is_refused_at_preview() -> None:
    assert "must be 3-50" in _error({"label": "a" * 51})
    assert validate({**BASE, "label": "a" * 50}, "t").label == "a" * 50


def test_ours_is_the_sshd_drop_in_sshd_reads_first() -> None:
    settings = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    rendered = render_files("staging", settings, size(settings), Secrets.placeholders())
    dropin = Path(PATHS.sshd_dropin)
    assert dropin.name < "50-cloud-init.conf"
    assert "PasswordAuthentication no" in rendered.by_path()[PATHS.sshd_dropin].content
