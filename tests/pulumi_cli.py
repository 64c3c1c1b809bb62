"""What the Pulumi CLI checks in Pulumi.yaml and a stack's config before any program runs.

No test may run the CLI, so its rules are ported here from pulumi/pulumi's
`sdk/go/common/workspace`: `project.json` (the schema of a `config:` entry), `project.go`
(`RewriteShorthandConfigValues`, `Project.Validate`, `ValidateConfigValue`) and `config.go`
(`mergeConfig`: required keys, defaults merged in, then `validateStackConfigValues`). The error
texts are the CLI's own, so a test can show exactly what `pulumi preview` would print.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SIMPLE_TYPES = ("string", "integer", "boolean", "array")  # project.json: simpleConfigType
DECLARATION_KEYS = {"type", "items", "description", "secret", "default", "value"}


class ProjectError(Exception):
    """Pulumi.yaml itself is refused (schema or Project.Validate)."""


class StackConfigError(Exception):
    """`pulumi preview/up` stops here, before the program runs."""


@dataclass(frozen=True)
class ConfigType:
    type: str | None
    items: dict[str, Any] | None
    has_default: bool
    default: Any
    has_value: bool
    value: Any
    secret: bool


@dataclass(frozen=True)
class StackValue:
    """A stack file's value: the text the engine holds, whether it is JSON, whether encrypted."""

    text: str
    is_object: bool
    secure: bool


@dataclass(frozen=True)
class Project:
    name: str
    config: dict[str, ConfigType]


def _namespaced_by_project(project: str, key: str) -> bool:
    return ":" not in key or key.startswith(project + ":")


def _primitive(value: Any) -> bool:
    # Go's isPrimitiveValue: string, int, bool (YAML floats are not).
    return isinstance(value, str | bool | int) and not isinstance(value, float)


def _check_items(items: Any, where: str) -> None:
    if not isinstance(items, dict) or "type" not in items:
        raise ProjectError(f"{where}: missing properties: 'type'")
    if items["type"] not in SIMPLE_TYPES and not isinstance(items["type"], dict):
        raise ProjectError(f"{where}/type: value must be one of {SIMPLE_TYPES}")
    if items["type"] == "array":
        if "items" not in items:
            raise ProjectError(f"{where}: missing properties: 'items'")
        _check_items(items["items"], f"{where}/items")


def _declaration(key: str, raw: Any) -> ConfigType:
    """One `config:` entry, after the schema's checks (oneOf string/integer/boolean/declaration)."""
    if _primitive(raw):
        raise AssertionError("shorthand values are rewritten before this")
    if not isinstance(raw, dict):
        raise ProjectError(f"#/config/{key}: expected string, integer, boolean or object")
    extra = set(raw) - DECLARATION_KEYS
    if extra:
        raise ProjectError(f"#/config/{key}: additionalProperties {sorted(extra)} not allowed")
    typ = raw.get("type")
    if typ is not None and typ not in SIMPLE_TYPES:
        # `object` is not among them: a mapping-valued key cannot be typed.
        raise ProjectError(f"#/config/{key}/type: value must be one of {SIMPLE_TYPES}")
    if typ == "array":
        if "items" not in raw:
            raise ProjectError(f"#/config/{key}: missing properties: 'items'")
        _check_items(raw["items"], f"#/config/{key}/items")
    # yaml.v3 decodes `default: null` to a nil interface: the same as no default at all.
    return ConfigType(
        type=typ,
        items=raw.get("items"),
        has_default=raw.get("default") is not None,
        default=raw.get("default"),
        has_value=raw.get("value") is not None,
        value=raw.get("value"),
        secret=bool(raw.get("secret", False)),
    )


def validate_config_value(typ: str, items: dict[str, Any] | None, value: Any) -> bool:
    """project.go's ValidateConfigValue."""
    if typ == "string":
        return isinstance(value, str)
    if typ == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return value == int(value)
        if isinstance(value, str):
            try:
                int(value, 10)
            except ValueError:
                return False
            return True
        return False
    if typ == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if typ == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(validate_config_value(items["type"], items.get("items"), v) for v in value)


def _full_type_name(typ: str, items: dict[str, Any] | None) -> str:
    if items is not None:
        return f"array<{_full_type_name(items['type'], items.get('items'))}>"
    return typ


def load_project(path: Path) -> Project:
    doc = yaml.safe_load(path.read_text())
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise ProjectError("project is missing a non-empty string 'name' attribute")
    config: dict[str, ConfigType] = {}
    for key, raw in (doc.get("config") or {}).items():
        if _primitive(raw) or isinstance(raw, list):  # RewriteShorthandConfigValues
            raw = {"default": raw} if _namespaced_by_project(name, key) else {"value": raw}
        config[key] = _declaration(key, raw)
    for key, decl in config.items():  # Project.Validate
        if decl.has_default and decl.has_value:
            raise ProjectError(f"project config '{key}' cannot have both a 'default' and 'value'")
        if _namespaced_by_project(name, key):
            if (
                decl.type is not None
                and decl.has_default
                and not validate_config_value(decl.type, decl.items, decl.default)
            ):
                raise ProjectError(
                    f"The default value specified for configuration key '{key}' is not of "
                    f"the expected type '{_full_type_name(decl.type, decl.items)}'"
                )
        elif decl.type is not None or decl.has_default or not decl.has_value:
            raise ProjectError(f"Configuration key '{key}' is not namespaced by the project")
    return Project(name, config)


def stack_value(raw: Any) -> StackValue:
    """How the engine holds one value of a stack file."""
    if isinstance(raw, dict) and set(raw) == {"secure"}:
        return StackValue(str(raw["secure"]), is_object=False, secure=True)
    if isinstance(raw, dict | list):
        return StackValue(json.dumps(raw), is_object=True, secure=False)
    if isinstance(raw, bool):
        return StackValue("true" if raw else "false", is_object=False, secure=False)
    return StackValue(str(raw), is_object=False, secure=False)


def load_stack(path: Path) -> dict[str, StackValue]:
    doc = yaml.safe_load(path.read_text()) or {}
    return {key: stack_value(raw) for key, raw in (doc.get("config") or {}).items()}


def _full_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _missing_error(stack: str, keys: list[str]) -> StackConfigError:
    """config.go's missingStackConfigurationKeysError with formatMissingKeys."""
    keys = sorted(keys)
    if len(keys) == 1:
        return StackConfigError(f"Stack '{stack}' is missing configuration value '{keys[0]}'")
    listed = ", ".join(f"'{k}'" for k in keys[:-1])
    return StackConfigError(
        f"Stack '{stack}' is missing configuration values {listed} and '{keys[-1]}'"
    )


def merge_config(stack: str, project: Project, values: dict[str, StackValue]) -> dict[str, Any]:
    """The config the program receives, or the CLI's error (config.go's mergeConfig).

    Returns `{key: text}` as the engine hands it to the language host: strings, structured
    values as JSON; secure values keep their ciphertext marker as `{"secure": ...}`.
    """
    merged = dict(values)
    missing: list[str] = []
    for key in sorted(project.config):
        decl = project.config[key]
        full = _full_key(project.name, key)
        found = full in merged
        namespace = full.split(":", 1)[0]
        if not found and not decl.has_value and not decl.has_default:
            if namespace == project.name:
                missing.append(key)
            continue
        if not found:
            default = decl.default if decl.has_default else decl.value
            merged[full] = (
                stack_value(default)
                if _primitive(default)
                else StackValue(json.dumps(default), is_object=True, secure=False)
            )
    if missing:
        raise _missing_error(stack, missing)
    for key in sorted(project.config):  # validateStackConfigValues
        decl = project.config[key]
        if decl.type is None:
            continue
        value = merged[_full_key(project.name, key)]
        if decl.secret and not value.secure:
            raise StackConfigError(
                f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's secret"
            )
        content: Any = json.loads(value.text) if value.is_object else value.text
        if not validate_config_value(decl.type, decl.items, content):
            raise StackConfigError(
                f"Stack '{stack}' with configuration key '{key}' must be of type "
                f"'{_full_type_name(decl.type, decl.items)}'"
            )
    return {key: ({"secure": v.text} if v.secure else v.text) for key, v in merged.items()}
