"""Run the real Pulumi program (__main__.py) under Pulumi's own mocks, with a stack's config.

The Linode API is the one thing mocked: `Mocks` answers resource creations and the
getInstanceType invoke from the offline catalog. Every register request is kept as sent, so
tests see the real inputs, which of them are secret, and the resource options.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.cloud.preflight import DEPLOY_FROM
from components.model.plans import PLANS
from tests import pulumi_cli

REPO = Path(__file__).resolve().parent.parent
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")
# What a user puts in adminCidrs before the first preview (the stack files ship documentation
# ranges, which preflight refuses).
TEST_ADMIN_CIDRS = ["93.184.216.0/24"]
PUBLIC_IPV4 = "203.0.113.10"
DEPLOY_ENV = ("RUNNER_ENVIRONMENT", DEPLOY_FROM)
PRIVATE_IPV4 = "192.168.128.7"
IPV6 = "2600:3c00::f03c:91ff:fe00:1"


def mock_password(name: str) -> str:
    """What the mocked pulumi-random hands out: stable per resource name, letters and digits."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


# What the mocked provider says a bucket's S3 endpoint is.
OBJECT_STORAGE_ENDPOINT = "us-iad-1.linodeobjects.com"


def mock_access_key(name: str) -> str:
    """What the mocked provider hands out as an Object Storage access key: stable per name."""
    return hashlib.sha256(name.encode()).hexdigest()[:20].upper()


def mock_key_pair(name: str) -> tuple[str, str]:
    """What the mocked pulumi-tls hands out for an ED25519 key: (private OpenSSH, public line)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    private = (
        f"-----BEGIN OPENSSH PRIVATE KEY-----\nmock{digest}\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    return private, f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{digest[:43]}\n"


@dataclass(frozen=True)
class AccountNow:
    """What the Linode account holds before this run: the stack's instance and volume."""

    box: dict[str, Any] | None = None
    volume: dict[str, Any] | None = None


class LinodeMocks(pulumi.runtime.Mocks):
    def __init__(
        self,
        live_plans: dict[str, tuple[int, int]] | None = None,
        account: AccountNow | None = None,
    ) -> None:
        self.live_plans = live_plans or {}
        self.account = account or AccountNow()
        self.invokes: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        rid = f"{args.name}-id"
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = mock_password(args.name)
        elif args.typ == "linode:index/instance:Instance":
            rid = "4242"
            state.update(ipv4s=[PRIVATE_IPV4, PUBLIC_IPV4], ipv6=f"{IPV6}/128")
        elif args.typ == "linode:index/firewall:Firewall":
            rid = "5151"
        elif args.typ == "linode:index/volume:Volume":
            rid = "7373"
        elif args.typ == "random:index/randomId:RandomId":
            digest = hashlib.sha256(args.name.encode()).hexdigest()
            state["hex"] = digest[: 2 * int(args.inputs["byteLength"])]
        elif args.typ == "linode:index/objectStorageBucket:ObjectStorageBucket":
            state["s3Endpoint"] = OBJECT_STORAGE_ENDPOINT
        elif args.typ == "linode:index/objectStorageKey:ObjectStorageKey":
            state.update(accessKey=mock_access_key(args.name), secretKey=mock_password(args.name))
        elif args.typ == "tls:index/privateKey:PrivateKey":
            private, public = mock_key_pair(args.name)
            state.update(private_key_openssh=private, public_key_openssh=public)
        return rid, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.invokes.append((args.token, dict(args.args)))
        if args.token == "linode:index/getInstanceType:getInstanceType":
            plan = PLANS[args.args["id"]]
            memory, vcpus = self.live_plans.get(plan.id, (plan.memory_mb, plan.vcpus))
            found = {
                "id": plan.id,
                "label": plan.id,
                "memory": memory,
                "vcpus": vcpus,
                "disk": plan.disk_mb,
                "class": plan.plan_class,
            }
            return found, []
        if args.token == "linode:index/getInstances:getInstances":
            return {"instances": [self.account.box] if self.account.box else []}, []
        if args.token == "linode:index/getVolumes:getVolumes":
            return {"volumes": [self.account.volume] if self.account.volume else []}, []
        raise NotImplementedError(args.token)


@dataclass
class Registration:
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    secret_paths: set[str]
    protect: bool
    ignore_changes: list[str]
    retain_on_delete: bool
    delete_before_replace: bool
    dependencies: list[str]
    additional_secret_outputs: list[str] = field(default_factory=list)
    urn: str = ""  # as the (mock) engine assigned it


def _unwrap(value: Any, path: str, secrets: set[str]) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG[0]) == SECRET_SIG[1]:
            secrets.add(path)
            return _unwrap(value.get("value"), path, secrets)
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, linode: LinodeMocks) -> None:
        super().__init__(linode)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        raw = json_format.MessageToDict(request, preserving_proto_field_name=False)
        secrets: set[str] = set()
        inputs = _unwrap(raw.get("object", {}), "", secrets)
        # Its own object, not registrations[-1]: the SDK registers from several threads, and
        # another registration may be appended before this one's URN comes back.
        registration = Registration(
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=inputs,
            secret_paths=secrets,
            protect=bool(request.protect),
            ignore_changes=list(request.ignoreChanges),
            retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace),
            dependencies=list(request.dependencies),
            additional_secret_outputs=list(request.additionalSecretOutputs),
        )
        self.registrations.append(registration)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        registration.urn = response.urn
        return response


@dataclass
class ProgramRun:
    resources: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str) -> Registration:
        (found,) = self.of_type(typ)
        return found


def stack_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """The config the engine hands the program: the stack file (its adminCidrs set as a user
    would, plus `overrides`) checked and completed with Pulumi.yaml's defaults by the CLI's own
    rules; strings, structured values as JSON."""
    doc = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    given = {**doc["config"], "tunedstack:adminCidrs": TEST_ADMIN_CIDRS, **(overrides or {})}
    values = {k: pulumi_cli.stack_value(v) for k, v in given.items()}
    project = pulumi_cli.load_project(REPO / "Pulumi.yaml")
    return {k: str(v) for k, v in pulumi_cli.merge_config(stack, project, values).items()}


class ProgramFailed(Exception):
    """The program raised; `registrations` is what it had sent to the engine by then."""

    def __init__(self, cause: BaseException, registrations: list[Registration]) -> None:
        super().__init__(str(cause))
        self.registrations = registrations


def run_program(
    stack: str,
    config: dict[str, str],
    live_plans: dict[str, tuple[int, int]] | None = None,
    preview: bool = False,
    account: AccountNow | None = None,
    env: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> ProgramRun:
    """Run __main__.py once, in a fresh context, and return what it registered and exported.

    `env` is the deploy's environment as preflight reads it (a GitHub runner's variables);
    the test machine's own never leak in. `secret_keys` are the config keys the engine says
    were stored encrypted (it hands their values decrypted, as it does these)."""
    saved = {k: os.environ.pop(k) for k in DEPLOY_ENV if k in os.environ}
    os.environ.update(env or {})
    try:
        return run_body(
            stack,
            config,
            lambda: runpy.run_path(str(REPO / "__main__.py"), run_name="__main__"),
            live_plans,
            preview,
            account,
            secret_keys,
        )
    finally:
        for key in DEPLOY_ENV:
            os.environ.pop(key, None)
        os.environ.update(saved)


def run_body(
    stack: str,
    config: dict[str, str],
    body: Callable[[], object],
    live_plans: dict[str, tuple[int, int]] | None = None,
    preview: bool = False,
    account: AccountNow | None = None,
    secret_keys: list[str] | None = None,
) -> ProgramRun:
    """Run `body` as a Pulumi program under the mocks (a component on its own, or __main__)."""
    linode = LinodeMocks(live_plans, account)
    monitor = RecordingMonitor(linode)

    def go() -> ProgramRun:
        pulumi.runtime.set_all_config(config, secret_keys)
        pulumi.runtime.set_mocks(
            linode, project="tunedstack", stack=stack, preview=preview, monitor=monitor
        )
        try:

            def program() -> None:
                body()

            _sync_await(run_pulumi_func(program))
        except Exception as e:
            raise ProgramFailed(e, monitor.registrations) from e
        root = get_root_resource()
        assert root is not None
        outputs, secret = {}, set()
        for name, value in root.outputs.items():  # type: ignore[attr-defined]
            out = pulumi.Output.from_input(value)
            outputs[name] = _sync_await(out.future())
            if _sync_await(out.is_secret()):
                secret.add(name)
        return ProgramRun(monitor.registrations, outputs, secret, linode.invokes)

    try:
        return contextvars.Context().run(go)
    finally:
        pulumi.runtime.set_all_config({})
