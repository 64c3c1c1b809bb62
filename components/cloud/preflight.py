"""Checks before anything is created: the plan against Linode's live catalog, the budget, and
whether the first-boot document fits. Every failure is a StackError naming the stack key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi

from components.model.errors import MISSING, Problem, SettingsError, SizingError
from components.model.plans import PLANS
from components.model.project import PACKAGE_ROOT
from components.model.render import Secrets, render_files
from components.model.settings import NAMESPACE, SSH_PRIVATE_KEY, Settings
from components.model.sizing import Sizing, size
from components.model.userdata import cloud_config


@dataclass(frozen=True)
class LivePlan:
    memory_mb: int
    vcpus: int


def check_live_plan(settings: Settings, live: LivePlan, source: str) -> None:
    known = PLANS[settings.plan]
    if (live.memory_mb, live.vcpus) != (known.memory_mb, known.vcpus):
        raise SizingError(
            source,
            [
                Problem(
                    f"{NAMESPACE}:plan",
                    settings.plan,
                    f"Linode reports {live.vcpus} vCPU / {live.memory_mb} MB but the offline "
                    f"catalog says {known.vcpus} vCPU / {known.memory_mb} MB; "
                    "update components/model/plans.py",
                )
            ],
        )


def preflight(
    stack: str, settings: Settings, live_plan: Callable[[str], LivePlan] | None = None
) -> Sizing:
    source = f"stacks/Pulumi.{stack}.yaml"
    sizing = size(settings, source)
    if live_plan is not None:
        check_live_plan(settings, live_plan(settings.plan), source)
    # Stand-in passwords of the real length: the document's size is what it will be.
    rendered = render_files(stack, settings, sizing, Secrets.generate(), PACKAGE_ROOT)
    cloud_config(rendered, settings.instance_label(stack), settings.ssh_keys)
    return sizing


def rollout_key(stack: str, settings: Settings) -> pulumi.Output[str] | None:
    """The rollout's SSH key, or None when the stack turned the rollout off."""
    if not settings.rollout:
        return None
    key = pulumi.Config(NAMESPACE).get_secret(SSH_PRIVATE_KEY)
    if key is None:
        raise SettingsError(
            f"stacks/Pulumi.{stack}.yaml",
            [
                Problem(
                    f"{NAMESPACE}:{SSH_PRIVATE_KEY}",
                    MISSING,
                    "the rollout logs in over SSH: `pulumi config set --secret "
                    "tunedstack:sshPrivateKey < ~/.ssh/id_ed25519`, "
                    "or set `tunedstack:rollout: false`",
                )
            ],
        )
    return key
