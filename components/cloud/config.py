"""Settings from the running Pulumi program's config: the same model, the same messages."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from components.model.settings import NAMESPACE, Settings, validate


def load_pulumi_config(stack: str) -> Settings:
    """The engine hands each key over as a string, structured values as JSON."""
    config = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        key = field.alias or name
        value = config.get(key)
        if value is None:
            continue
        try:
            raw[key] = json.loads(value)
        except ValueError:
            raw[key] = value
    return validate(raw, f"stacks/Pulumi.{stack}.yaml")
