"""Checks before anything is created or changed: the budget, the plan against Linode's live
catalog, what the running box and its volume allow (Linode never shrinks a disk, never moves a
volume), whether the rollout can reach the box at all, and whether the first-boot document fits.
Every failure is a StackError naming the stack key, the value and what would work."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from components.cloud.instance import instance_urn
from components.model.errors import Problem, SettingsError, SizingError
from components.model.layout import (
    FIREWALL_LABEL_LENGTH,
    INSTANCE_LABEL_LENGTH,
    VOLUME_LABEL_LENGTH,
    firewall_label,
    label_problem,
    volume_label,
)
from components.model.plans import PLANS
from components.model.settings import NAMESPACE, Settings
from components.model.sizing import Sizing, size
from components.model.userdata import PLACEHOLDER_KEYS, cloud_config

# The address the deploy connects from, when the machine knows it (a runner's fixed egress).
DEPLOY_FROM = "TUNEDSTACK_DEPLOY_FROM"
# Networks reserved for documentation (RFC 5737, RFC 3849): nobody deploys from them.
DOCUMENTATION_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


@dataclass(frozen=True)
class LivePlan:
    memory_mb: int
    vcpus: int


@dataclass(frozen=True)
class RunningBox:
    """The stack's instance as Linode has it now."""

    label: str
    plan: str
    disk_mb: int


@dataclass(frozen=True)
class DataVolumeNow:
    """The stack's volume as Linode has it now."""

    label: str
    region: str
    size_gb: int
    attached_to: int | None = None  # the instance it is attached to, if any
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiveAccount:
    """Read-only questions to Linode's API (invokes: they run in previews too)."""

    plan: Callable[[str], LivePlan]
    box: Callable[[str], RunningBox | None]
    volume: Callable[[str], DataVolumeNow | None]


def _key(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def check_live_plan(settings: Settings, live: LivePlan, source: str) -> None:
    known = PLANS[settings.plan]
    if (live.memory_mb, live.vcpus) != (known.memory_mb, known.vcpus):
        raise SizingError(
            source,
            [
                Problem(
                    _key("plan"),
                    settings.plan,
                    f"Linode reports {live.vcpus} vCPU / {live.memory_mb} MB but the offline "
                    f"catalog says {known.vcpus} vCPU / {known.memory_mb} MB; "
                    "update components/model/plans.py",
                )
            ],
        )


def replace_box_advice(settings: Settings, urn: str) -> str:
    """The commands that replace the instance alone. `pulumi destroy --target` would not: the
    engine refuses to destroy a resource others depend on, or with --target-dependents destroys
    the volume too. A protected resource cannot be replaced until its state is unprotected (the
    next `up` protects the new one again)."""
    replace = f"`pulumi up --replace '{urn}'`"
    if settings.protected:
        return f"`pulumi state unprotect '{urn}'` (the instance is protected), then {replace}"
    return replace


def running_box_problems(
    settings: Settings, box: RunningBox | None, urn: str = "<instance URN>"
) -> list[Problem]:
    """A resize keeps the deployed disk, which fills the old plan: a plan with less disk fails
    halfway (the box cold-migrates, then Linode refuses the disk)."""
    new = PLANS[settings.plan]
    if box is None or box.plan == settings.plan or new.disk_mb >= box.disk_mb:
        return []
    return [
        Problem(
            _key("plan"),
            settings.plan,
            f"the running box {box.label} ({box.plan}) has a {box.disk_mb} MB disk and "
            f"{new.id} allows {new.disk_mb} MB: Linode cannot shrink a disk in a resize. "
            f"Choose a plan with at least {box.disk_mb} MB of disk, or replace the box with "
            f"{replace_box_advice(settings, urn)}: the data volume stays, and the new box "
            "of this plan mounts it",
        )
    ]


def volume_problems(
    settings: Settings, volume: DataVolumeNow | None, stack: str = ""
) -> list[Problem]:
    """Changes that would replace the volume, i.e. start the data over from an empty disk; and
    a volume that is another stack's (a label cut to Linode's 32 characters can be shared)."""
    if volume is None:
        return []
    if stack and "tunedstack" in volume.tags and stack not in volume.tags:
        owner = ", ".join(t for t in volume.tags if t != "tunedstack")
        return [
            Problem(
                "the stack's name",
                stack,
                f"the volume label {volume.label} is already another stack's volume (tagged "
                f"{owner}): the label is the stack's name cut to 32 characters; choose a "
                "stack name that differs in its first 16",
            )
        ]
    problems = []
    if volume.region != settings.region:
        problems.append(
            Problem(
                _key("region"),
                settings.region,
                f"the data volume {volume.label} is in {volume.region}: a volume cannot move "
                "between regions and a new one would be empty. Keep "
                f"{volume.region}, or copy the data to a stack in the new region first",
            )
        )
    if settings.volume_size_gb < volume.size_gb:
        problems.append(
            Problem(
                _key("volumeSizeGb"),
                settings.volume_size_gb,
                f"the data volume {volume.label} already has {volume.size_gb} GB: Linode volumes "
                f"only grow; keep {volume.size_gb} or more",
            )
        )
    return problems


def label_problems(settings: Settings, stack: str) -> list[Problem]:
    """The labels the program builds from the stack's name (and `label`) as Linode checks them:
    a stack name Linode cannot take in a label is refused here, not half-way through `up`."""
    instance = settings.instance_label(stack)
    problems = []
    for what, label, lengths in (
        ("instance", instance, INSTANCE_LABEL_LENGTH),
        ("firewall", firewall_label(instance), FIREWALL_LABEL_LENGTH),
    ):
        problem = label_problem(label, lengths)
        if problem:
            problems.append(
                Problem(
                    _key("label"),
                    label,
                    f"the {what} label {label!r} {problem}: set {_key('label')} to a label "
                    "Linode takes",
                )
            )
    volume = volume_label(stack)
    problem = label_problem(volume, VOLUME_LABEL_LENGTH)
    if problem:
        problems.append(
            Problem(
                "the stack's name",
                stack,
                f"the volume label {volume!r} (from the stack's name) {problem}: "
                "choose a stack name of letters, digits and single `-`",
            )
        )
    return problems


def volume_warnings(volume: DataVolumeNow | None) -> list[str]:
    """A volume attached to no instance: after a delete-first replacement the provider detaches
    the volume from the deleted instance before it attaches it to the new one, and if Linode
    refuses that detach the run stops with the new box up, its volume unattached and no rollout.
    The state still names the old instance: refresh it, then `up` attaches the volume."""
    if volume is None or volume.attached_to is not None:
        return []
    return [
        f"the data volume {volume.label} is attached to no instance. If the last `pulumi up` "
        "stopped on it (a replaced instance), run `pulumi refresh`, then `pulumi up`: the "
        "volume is attached to the new instance and the rollout runs"
    ]


def deploy_path_problems(
    settings: Settings, env: Mapping[str, str], dry_run: bool
) -> list[Problem]:
    """The rollout delivers every file over SSH, which the firewall admits only from
    `adminCidrs`. What can be known before a 13-minute dial is checked here."""
    problems = []
    networks = [ipaddress.ip_network(c) for c in settings.admin_cidrs]
    if not networks:
        problems.append(
            Problem(
                _key("adminCidrs"),
                settings.admin_cidrs,
                "the rollout delivers every file over SSH, which the firewall admits only from "
                "these networks: add the address `pulumi up` runs from, e.g. ['203.0.113.7/32']",
            )
        )
    for net in networks:
        if any(net.version == d.version and net.subnet_of(d) for d in DOCUMENTATION_NETWORKS):  # type: ignore[arg-type]
            problems.append(
                Problem(
                    _key("adminCidrs"),
                    settings.admin_cidrs,
                    f"{net} is reserved for documentation (RFC 5737/3849) and no deploy comes "
                    "from it: put the network `pulumi up` runs from (and yours, for SSH)",
                )
            )
    given = env.get(DEPLOY_FROM, "").strip()
    if given:
        try:
            address = ipaddress.ip_address(given)
        except ValueError:
            problems.append(
                Problem(DEPLOY_FROM, given, "must be the IP address the deploy connects from")
            )
        else:
            if networks and not any(address in net for net in networks):
                problems.append(
                    Problem(
                        _key("adminCidrs"),
                        settings.admin_cidrs,
                        f"the deploy connects from {address} ({DEPLOY_FROM}), which none of "
                        f"these networks holds: the firewall would drop its SSH; add "
                        f"'{address}/{address.max_prefixlen}'",
                    )
                )
    elif not dry_run and env.get("RUNNER_ENVIRONMENT") == "github-hosted":
        problems.append(
            Problem(
                "RUNNER_ENVIRONMENT",
                "github-hosted",
                "a GitHub-hosted runner leaves from a different address each run, so the "
                f"firewall ({_key('adminCidrs')}) drops its SSH: run the deploy on a "
                "self-hosted runner whose fixed address is in adminCidrs, and set "
                f"{DEPLOY_FROM} to that address so this is checked before anything changes",
            )
        )
    return problems


def preflight(
    stack: str,
    settings: Settings,
    live: LiveAccount | None = None,
    env: Mapping[str, str] | None = None,
    dry_run: bool = True,
    project: str = "tunedstack",
    warn: Callable[[str], None] = lambda _: None,
) -> Sizing:
    source = f"stacks/Pulumi.{stack}.yaml"
    sizing = size(settings, source)
    problems = label_problems(settings, stack)
    if problems:
        raise SettingsError(source, problems)
    if live is not None:
        check_live_plan(settings, live.plan(settings.plan), source)
        label = settings.instance_label(stack)
        urn = instance_urn(project, stack)
        problems = running_box_problems(settings, live.box(label), urn)
        volume = live.volume(volume_label(stack))
        problems += volume_problems(settings, volume, stack)
        for warning in volume_warnings(volume):
            warn(warning)
        if problems:
            raise SizingError(source, problems)
    if env is not None:
        problems = deploy_path_problems(settings, env, dry_run)
        if problems:
            raise SettingsError(source, problems)
    cloud_config(PLACEHOLDER_KEYS, stack)  # stand-in keys of the real length
    return sizing
