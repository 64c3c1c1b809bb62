"""The #cloud-config document that bootstraps a new box, its encoding and its size guard."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from typing import Any

import yaml

from components.model.errors import Problem, StackError
from components.model.render import Rendered, RenderedFile, environment

# Linode accepts at most this much user data (decoded).
USER_DATA_LIMIT = 16 * 1024
# Everything the box runs comes from the distribution: no pip at boot unless the app needs it.
PACKAGES = (
    "haproxy",
    "redis-server",
    "postgresql",
    "gunicorn",
    "python3-psycopg2",
    "python3-redis",
    "python3-venv",
    "unattended-upgrades",
    "curl",
)


class UserDataTooLarge(StackError):
    """The document would exceed what Linode's metadata service accepts."""


DEFAULT_OWNER = "root:root"
DEFAULT_MODE = "0644"


@dataclass(frozen=True)
class WriteFile:
    """One write_files entry; owner and mode are left out where they are cloud-init's default."""

    path: str
    owner: str | None
    mode: str | None
    encoding: str | None
    payload: str


def gzip_b64(text: str) -> str:
    # mtime=0 keeps the bytes identical from one render to the next.
    return base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode()


def write_file(f: RenderedFile) -> WriteFile:
    owner = None if f.owner == DEFAULT_OWNER else f.owner
    mode = None if f.mode == DEFAULT_MODE else f.mode
    packed = gzip_b64(f.content)
    if len(packed) < len(json.dumps(f.content)):
        return WriteFile(f.path, owner, mode, "gz+b64", packed)
    return WriteFile(f.path, owner, mode, None, f.content)


def cloud_config(rendered: Rendered, hostname: str, ssh_keys: list[str]) -> str:
    """The document; raises UserDataTooLarge naming the largest parts if it does not fit."""
    writes = [write_file(f) for f in rendered.files]
    document = (
        environment()
        .get_template("user-data.yaml.j2")
        .render(
            {
                **rendered.context,
                "hostname": hostname,
                "ssh_keys": ssh_keys,
                "packages": PACKAGES,
                "files": writes,
            }
        )
    )
    parsed = yaml.safe_load(document)  # a template slip must fail here, not on the box
    assert isinstance(parsed, dict) and len(parsed["write_files"]) == len(writes)
    size = len(document.encode())
    if size > USER_DATA_LIMIT:
        sizes = [(w.path, len(w.payload)) for w in writes]
        sizes.append((f"tunedstack:sshKeys ({len(ssh_keys)} keys)", sum(len(k) for k in ssh_keys)))
        largest = sorted(sizes, key=lambda part: part[1], reverse=True)[:3]
        parts = ", ".join(f"{name} ({n} bytes)" for name, n in largest)
        raise UserDataTooLarge(
            f"stacks/Pulumi.{rendered.stack}.yaml",
            [
                Problem(
                    "user_data",
                    f"{size} bytes",
                    f"over Linode's {USER_DATA_LIMIT}-byte limit; largest parts: {parts}",
                )
            ],
            "Move the app out of the document (tunedstack:app.git or tunedstack:app.package), "
            "or drop sysctl overrides you do not need.",
        )
    return document


def decode_files(document: str) -> dict[str, str]:
    """{path: content} back out of a cloud-config document (what cloud-init will write)."""
    parsed: dict[str, Any] = yaml.safe_load(document)
    files = {}
    for entry in parsed.get("write_files") or []:
        payload = entry["content"]
        if entry.get("encoding") == "gz+b64":
            payload = gzip.decompress(base64.b64decode(payload)).decode()
        files[entry["path"]] = payload
    return files


def user_data_b64(document: str) -> str:
    """What Linode's metadata field takes."""
    return base64.b64encode(document.encode()).decode()
