"""Settings from the running Pulumi program's config: the same model, the same messages."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi.runtime.config

from components.model.errors import MISSING, Problem, SettingsError
from components.model.settings import (
    DEPLOY_KEY_SETTING,
    NAMESPACE,
    RETIRED,
    Settings,
    plaintext_secret,
    setting_keys,
    unknown_key_message,
    validate,
)


def _unknown_keys(stack: str) -> None:
    """A `tunedstack:` key the program does not read is a typo or a retired setting: never
    silently ignored (a retired sshPrivateKey would sit in the stack file for nothing)."""
    given = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.get_config_env())
    known = setting_keys()
    prefix = f"{NAMESPACE}:"
    unknown = sorted(k.removeprefix(prefix) for k in given if k.startswith(prefix))
    problems = [
        Problem(f"{prefix}{key}", MISSING, unknown_key_message(key, known, key in RETIRED))
        for key in unknown
        if key not in known and key != DEPLOY_KEY_SETTING
    ]
    if problems:
        raise SettingsError(f"stacks/Pulumi.{stack}.yaml", problems)


def load_pulumi_config(stack: str) -> Settings:
    """The engine hands each key over as a string, structured values as JSON."""
    _unknown_keys(stack)
    config = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for key in setting_keys():
        value = config.get(key)
        if value is None:
            continue
        try:
            raw[key] = json.loads(value)
        except ValueError:
            raw[key] = value
    return validate(raw, f"stacks/Pulumi.{stack}.yaml")


def app_deploy_key(settings: Settings, stack: str) -> pulumi.Output[str] | None:
    """The private repository's deploy key, a Pulumi secret, when the app asks for one. A value
    stored in plain text is refused: it would sit unencrypted in the committed stack file."""
    if settings.app.git is None or not settings.app.git.deploy_key:
        return None
    source = f"stacks/Pulumi.{stack}.yaml"
    full = f"{NAMESPACE}:{DEPLOY_KEY_SETTING}"
    config = pulumi.Config(NAMESPACE)
    if config.get_secret(DEPLOY_KEY_SETTING) is None:
        raise SettingsError(
            source,
            [
                Problem(
                    full,
                    MISSING,
                    "is required by `app.git.deployKey: true`: "
                    f"`pulumi config set --secret {full} < KEYFILE` (a read-only deploy key)",
                )
            ],
        )
    if not pulumi.runtime.is_config_secret(full):
        raise SettingsError(source, [plaintext_secret(DEPLOY_KEY_SETTING)])
    return config.require_secret(DEPLOY_KEY_SETTING)
