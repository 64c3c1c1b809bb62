"""The #cloud-config document a new instance boots with, and its size guard.

It holds only what the rollout needs to reach the box safely: the SSH host key the rollout pins,
and the rollout's own public key for root. Nothing in it depends on the image, the plan, a
tunable or the admins' keys, because the engine boots a *replaced* instance with the first
document it ever sent (the instance ignores later user-data changes, which would replace it):
every file, package and key list reaches the box over SSH, current at every `pulumi up`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import yaml

from components.model.errors import Problem, StackError
from components.model.render import HEADER, PLACEHOLDER_DEPLOY_KEY, environment

# Linode accepts at most this much user data (decoded).
USER_DATA_LIMIT = 16 * 1024
# The project's own ceiling, with room for what later capabilities may add.
USER_DATA_BUDGET = 12 * 1024


class UserDataTooLarge(StackError):
    """The document would exceed what Linode's metadata service accepts."""


@dataclass(frozen=True)
class FirstBootKeys:
    """The two SSH identities of a box: its host key, and the key the rollout logs in with."""

    host_private_key: str  # OpenSSH format
    host_public_key: str  # `ssh-ed25519 AAAA...`: what the rollout pins
    deploy_public_key: str  # authorized for root until the rollout installs the full list


def _placeholder_private_key() -> str:
    # The shape and length of an OpenSSH ed25519 private key, so sizes measured with it hold.
    body = ("PlaceholderHostKeyNotARealKey" * 13)[:350]
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return "\n".join(
        ["-----BEGIN OPENSSH PRIVATE KEY-----", *lines, "-----END OPENSSH PRIVATE KEY-----"]
    )


# Stand-ins where no box is built: render, diff, the golden files and preflight's size check.
PLACEHOLDER_KEYS = FirstBootKeys(
    host_private_key=_placeholder_private_key(),
    host_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderHostKey0000000000000000000000",
    deploy_public_key=PLACEHOLDER_DEPLOY_KEY,
)


def cloud_config(keys: FirstBootKeys, stack: str) -> str:
    """The document; raises UserDataTooLarge if it does not fit Linode's limit."""
    document = (
        environment()
        .get_template("user-data.yaml.j2")
        .render(
            {
                "header": HEADER,
                "host_private_key": keys.host_private_key.strip() + "\n",
                "host_public_key": keys.host_public_key.strip(),
                "deploy_public_key": keys.deploy_public_key.strip(),
            }
        )
    )
    parsed = yaml.safe_load(document)  # a template slip must fail here, not on the box
    assert isinstance(parsed, dict) and parsed["ssh_keys"]["ed25519_public"]
    size = len(document.encode())
    if size > USER_DATA_LIMIT:
        raise UserDataTooLarge(
            f"stacks/Pulumi.{stack}.yaml",
            [Problem("user_data", f"{size} bytes", f"over Linode's {USER_DATA_LIMIT}-byte limit")],
        )
    return document


def user_data_b64(document: str) -> str:
    """What Linode's metadata field takes."""
    return base64.b64encode(document.encode()).decode()
