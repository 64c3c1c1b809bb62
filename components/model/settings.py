"""A stack's settings: one typed, validated model, loaded from Pulumi config or the stack file.

Keys are camelCase under the `tunedstack:` namespace, as they are written in
`stacks/Pulumi.<stack>.yaml`; every error names the key as it is written there.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.model import stack_yaml
from components.model.errors import MISSING, Problem, SettingsError
from components.model.plans import PLANS, REGIONS

NAMESPACE = "tunedstack"
# Written for a yes/no setting whose default follows from `environment`.
Auto = Literal["auto"]
AUTO: Auto = "auto"

Environment = Literal["development", "staging", "production"]
Image = Literal["linode/debian12", "linode/ubuntu24.04"]
WorkerClass = Literal["sync", "gthread"]
Tuning = Literal["tuned", "stock"]
RedisPolicy = Literal[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,
    )


# What a repository URL may look like: https or ssh, or scp-like `git@host:path`. No
# credentials (a token in a URL reaches the PR comment and the box), no spaces, no quotes.
GIT_URL = re.compile(
    r"(https|ssh)://(git@)?[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~%+-]+)+/?"
    r"|git@[A-Za-z0-9.-]+:[A-Za-z0-9._~%+-]+(/[A-Za-z0-9._~%+-]+)*"
)
# A branch, tag or commit as git's check-ref-format allows them, less the characters a shell
# or pip would read (git refuses most of them anyway).
GIT_REF = re.compile(r"(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/+-]{1,200}(?<![./])")


# The Pulumi secret holding a private repository's deploy key: config, never a setting's value.
DEPLOY_KEY_SETTING = "appDeployKey"
# userinfo in an https URL (`https://user:token@host/...`); `ssh://git@host` is a user name.
CREDENTIALS_IN_URL = re.compile(r"^https?://[^/@]+@|^ssh://[^/@]*:[^/@]*@")


PRIVATE_KEY_PASTED = (
    "holds a private key: give the public one (the `.pub` file), and replace this key: "
    "it is now in the stack file's history"
)


class GitSource(_Model):
    """The user's app from a git repository, installed into the app's virtualenv."""

    url: str = Field(description="Repository URL that `pip install git+URL@REF` accepts.")
    ref: str = Field("main", description="Branch, tag or commit to install.")
    deploy_key: bool = Field(
        False,
        description="A private repository: the box clones it over SSH with the "
        f"`{NAMESPACE}:{DEPLOY_KEY_SETTING}` Pulumi secret (a read-only deploy key).",
    )

    @field_validator("url")
    @classmethod
    def _url_shape(cls, v: str) -> str:
        if CREDENTIALS_IN_URL.search(v):
            raise ValueError(
                "holds credentials: a token in a URL reaches the PR comment, the logs and the "
                f"box; for a private repository use an ssh URL, `deployKey: true` and the "
                f"`{NAMESPACE}:{DEPLOY_KEY_SETTING}` secret (and revoke this token)"
            )
        if not GIT_URL.fullmatch(v):
            raise ValueError(
                "must be an https:// or ssh:// URL, or git@host:path, with no credentials, "
                "spaces or quotes, e.g. `https://github.com/acme/shop.git`"
            )
        return v

    @field_validator("ref")
    @classmethod
    def _ref_shape(cls, v: str) -> str:
        if not GIT_REF.fullmatch(v):
            raise ValueError(
                "must be a branch, tag or commit: letters, digits and `._/+-`, "
                "e.g. `main`, `v1.2.0` or a commit hash"
            )
        return v

    @model_validator(mode="after")
    def _deploy_key_needs_ssh(self) -> GitSource:
        if self.deploy_key and not self.over_ssh:
            raise ValueError(
                "`deployKey: true` needs an ssh://git@host/... or git@host:path URL "
                "(a deploy key is an SSH key)"
            )
        return self

    @property
    def over_ssh(self) -> bool:
        return self.url.startswith(("ssh://", "git@"))

    @property
    def requirement(self) -> str:
        # pip reads scp-like git@host:path only as ssh://git@host/path.
        url = self.url
        if url.startswith("git@"):
            host, _, path = url.partition(":")
            url = f"ssh://{host}/{path}"
        return f"git+{url}@{self.ref}"


class AppSettings(_Model):
    wsgi: str = Field(
        "tunedstack_app:app",
        description="The WSGI callable gunicorn serves, as `module:callable`.",
    )
    git: GitSource | None = Field(
        None, description="Install the app from git (default: sample app)."
    )
    package: str | None = Field(
        None, description="Install the app from PyPI, as a pip requirement."
    )
    worker_rss_mb: int = Field(
        150,
        ge=20,
        le=8192,
        description="Resident memory of one gunicorn worker running the app (MB).",
    )
    db_pool_size: int = Field(
        2, ge=1, le=100, description="PostgreSQL connections one worker process keeps open."
    )
    health_path: str = Field("/healthz", description="Path HAProxy health-checks.")

    @field_validator("wsgi")
    @classmethod
    def _wsgi_shape(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(\(\))?", v):
            raise ValueError("must be `module:callable`, e.g. `myapp.wsgi:application`")
        return v

    @field_validator("package")
    @classmethod
    def _requirement(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parsed = Requirement(v)
        except InvalidRequirement as e:
            raise ValueError(f"must be a pip requirement such as `shop==1.2` ({e})") from None
        if parsed.url and "@" in (urlsplit(parsed.url).netloc or ""):
            raise ValueError("must not carry credentials in its URL")
        if any(ord(c) < 32 for c in v):
            raise ValueError("must be one line")
        return v

    @field_validator("health_path")
    @classmethod
    def _absolute_path(cls, v: str) -> str:
        if not re.fullmatch(r"/[\w\-./]*", v):
            raise ValueError("must be an absolute URL path such as `/healthz`")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> AppSettings:
        if self.git is not None and self.package is not None:
            raise ValueError("set either `git` or `package`, not both")
        return self

    @property
    def requirement(self) -> str | None:
        """What first boot hands `pip install`, or None for the sample app."""
        return self.git.requirement if self.git is not None else self.package


class WorkloadSettings(_Model):
    peak_connections: int = Field(
        1000,
        ge=10,
        le=1_000_000,
        description="Client connections open at once at the peak (keep-alive included).",
    )
    requests_per_second: int | None = Field(
        None, ge=1, description="Expected peak request rate, for the capacity estimate."
    )
    typical_response_ms: int = Field(
        50, ge=1, le=60_000, description="Typical time the app takes to answer one request."
    )
    redis_policy: RedisPolicy = Field(
        "allkeys-lru", description="Redis `maxmemory-policy` once its memory is full."
    )
    redis_data_mb: int | None = Field(
        None, ge=1, description="Size of the Redis data set if known; sizes Redis from it."
    )


class GunicornOverrides(_Model):
    workers: int | None = Field(None, ge=1, le=512, description="Fixed worker count.")
    worker_class: WorkerClass = Field("sync", description="gunicorn worker class.")
    threads: int = Field(1, ge=1, le=64, description="Threads per worker (gthread only).")
    timeout_seconds: int = Field(30, ge=5, le=600, description="Worker timeout.")
    max_requests: int = Field(
        1000,
        ge=0,
        le=1_000_000,
        description="Recycle a worker after this many requests (0: never).",
    )

    @model_validator(mode="after")
    def _threads_need_gthread(self) -> GunicornOverrides:
        if self.threads > 1 and self.worker_class != "gthread":
            raise ValueError("`threads` above 1 needs `workerClass: gthread`")
        return self


class PostgresOverrides(_Model):
    memory_mb: int | None = Field(None, ge=128, description="PostgreSQL's share of RAM (MB).")
    max_connections: int | None = Field(
        None, ge=10, le=10_000, description="Fixed max_connections."
    )


class RedisOverrides(_Model):
    maxmemory_mb: int | None = Field(None, ge=16, description="Fixed Redis maxmemory (MB).")
    fork_headroom_percent: int = Field(
        50,
        ge=10,
        le=100,
        description="RAM kept free for copy-on-write during BGSAVE/AOF rewrite, % of maxmemory.",
    )


class HaproxyOverrides(_Model):
    maxconn: int | None = Field(None, ge=100, le=1_000_000, description="Fixed global maxconn.")
    queue_timeout_seconds: int = Field(
        10, ge=1, le=300, description="How long a request may wait for a free worker before a 503."
    )


class ServiceOverrides(_Model):
    gunicorn: GunicornOverrides = Field(GunicornOverrides(), description="gunicorn's workers.")
    postgres: PostgresOverrides = Field(PostgresOverrides(), description="PostgreSQL's share.")
    redis: RedisOverrides = Field(RedisOverrides(), description="Redis' memory.")
    haproxy: HaproxyOverrides = Field(HaproxyOverrides(), description="HAProxy's limits.")


class SysctlOverride(_Model):
    """One sysctl set by the stack; a `reason` marks a value we would refuse as deliberate."""

    value: str
    reason: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, data: Any) -> Any:
        if isinstance(data, bool):
            raise ValueError("use a number or a string, not a boolean")
        if isinstance(data, int | float | str):
            return {"value": str(data)}
        return data

    @field_validator("value")
    @classmethod
    def _single_line(cls, v: str) -> str:
        v = " ".join(str(v).split())
        if not v or "\n" in v:
            raise ValueError("must be a non-empty single-line value")
        return v


SYSCTL_KEY = re.compile(r"[a-z0-9_]+(\.[a-zA-Z0-9_\-]+)+")


class Settings(_Model):
    environment: Environment = Field(
        "staging", description="production adds protection and backups."
    )
    region: str = Field(description="Linode region id, e.g. `us-east`.")
    plan: str = Field(description="Linode type id, e.g. `g6-standard-2`.")
    image: Image = Field("linode/debian12", description="Distribution image (apt + systemd).")
    label: str = Field("", description="Instance label (empty: `tunedstack-<stack>`).")
    admin_cidrs: list[str] = Field(
        default_factory=list,
        description="Networks SSH is open to: yours, and the one `pulumi up` runs from "
        "(the rollout delivers every file over SSH).",
    )
    ssh_keys: list[str] = Field(
        default_factory=list,
        description="Public keys of the people who may log in as root; changing them replaces "
        "nothing (the rollout keeps the list on the box).",
    )
    volume_size_gb: int = Field(20, ge=10, le=10_240, description="Data volume size (GB).")
    backups: bool | Auto = Field(
        AUTO, description="Linode backups of the root disk (`auto`: on in production)."
    )
    protect: bool | Auto = Field(
        AUTO, description="Protect instance and volume from deletion (`auto`: on in production)."
    )
    private_ip: bool = Field(False, description="Add a private IPv4 address.")
    tags: list[str] = Field(default_factory=list, description="Extra Linode tags.")
    tuning: Tuning = Field(
        "tuned",
        description="`stock`: same packages and topology with distribution defaults "
        "(the benchmark's baseline).",
    )
    app: AppSettings = Field(AppSettings(), description="The WSGI app gunicorn serves.")
    workload: WorkloadSettings = Field(
        WorkloadSettings(), description="The load to size for; every tunable follows from it."
    )
    services: ServiceOverrides = Field(
        ServiceOverrides(), description="Per-service overrides of what sizing computes."
    )
    sysctl: dict[str, SysctlOverride] = Field(
        default_factory=dict,
        description="Kernel settings over the tuned profile: `key: value` or `{value, reason}`.",
    )

    @field_validator("region")
    @classmethod
    def _known_region(cls, v: str) -> str:
        if v not in REGIONS:
            raise ValueError(f"unknown Linode region; valid: {', '.join(sorted(REGIONS))}")
        return v

    @field_validator("plan")
    @classmethod
    def _known_plan(cls, v: str) -> str:
        if v not in PLANS:
            raise ValueError(f"unknown Linode plan; valid: {', '.join(PLANS)}")
        return v

    @field_validator("label")
    @classmethod
    def _label_shape(cls, v: str) -> str:
        # The Linode API takes 64; the provider Pulumi drives refuses more than 50 at preview.
        if v and not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9_.\-]{1,48})[A-Za-z0-9]", v):
            raise ValueError(
                "must be 3-50 letters, digits, `-`, `_` or `.`, starting and ending alphanumeric"
            )
        return v

    @field_validator("backups", "protect", mode="before")
    @classmethod
    def _yes_no_auto(cls, v: Any) -> Any:
        if isinstance(v, bool) or v == AUTO:
            return v
        raise ValueError(f"must be true, false or `{AUTO}` (on in production)")

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for tag in v:
            # Linode's tag labels: 3-50 characters.
            if not 3 <= len(tag) <= 50 or not tag.isprintable():
                raise ValueError(f"{tag[:50]!r} is not a Linode tag: 3-50 printable characters")
        if len(set(v)) != len(v):
            raise ValueError("lists a tag twice")
        return v

    @field_validator("admin_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as e:
                raise ValueError(
                    f"{cidr!r} is not a network in CIDR form ({e}); e.g. `203.0.113.0/24`"
                ) from None
        return v

    @field_validator("ssh_keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        for key in v:
            if "PRIVATE KEY" in key:
                raise ValueError(PRIVATE_KEY_PASTED)
            if not re.match(r"(ssh-(ed25519|rsa)|ecdsa-sha2-nistp\d+|sk-\S+) [A-Za-z0-9+/=]+", key):
                raise ValueError(f"{key[:30]!r}... is not an OpenSSH public key line")
        return v

    @field_validator("sysctl")
    @classmethod
    def _sysctl_keys(cls, v: dict[str, SysctlOverride]) -> dict[str, SysctlOverride]:
        for key in v:
            if not SYSCTL_KEY.fullmatch(key):
                raise ValueError(f"{key!r} is not a sysctl key such as `net.core.somaxconn`")
        return v

    @model_validator(mode="after")
    def _production_needs_admin_cidrs(self) -> Settings:
        if self.environment == "production" and not self.admin_cidrs:
            raise ValueError(
                "production stacks must set `adminCidrs` (who may reach SSH), "
                "e.g. ['203.0.113.0/24']"
            )
        everyone = [c for c in self.admin_cidrs if ipaddress.ip_network(c).prefixlen == 0]
        if self.environment == "production" and everyone:
            raise ValueError(
                f"production stacks may not open SSH to the whole internet ({everyone[0]} in "
                "`adminCidrs`): list the networks you and the deploy run from"
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def stock(self) -> bool:
        return self.tuning == "stock"

    @property
    def backups_enabled(self) -> bool:
        return self.is_production if self.backups == AUTO else bool(self.backups)

    @property
    def protected(self) -> bool:
        return self.is_production if self.protect == AUTO else bool(self.protect)

    def instance_label(self, stack: str) -> str:
        return self.label or f"tunedstack-{stack}"


def _key_of(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif i > 0 and loc[0] == "sysctl" and i == 1:
            parts.append(f"[{item!r}]")
        elif item in ("function-after", "function-before") or item.startswith("function-"):
            continue
        else:
            parts.append(("." if parts else "") + item)
    return f"{NAMESPACE}:" + "".join(parts)


def _lookup(raw: Mapping[str, Any], loc: tuple[int | str, ...]) -> object:
    node: Any = raw
    for item in loc:
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            return MISSING
    return node


def _control_characters(node: object, loc: tuple[int | str, ...]) -> list[tuple[int | str, ...]]:
    """Where a string holds a control character (a newline, a tab, an escape): no setting is
    more than one line of text, and a newline in one becomes a line of its own in a file."""
    if isinstance(node, str):
        return [loc] if any(unicodedata.category(c) == "Cc" for c in node) else []
    if isinstance(node, Mapping):
        found = [(*loc, str(k)) for k in node if isinstance(k, str) and _control_characters(k, ())]
        for k, v in node.items():
            found += _control_characters(v, (*loc, k))
        return found
    if isinstance(node, list):
        return [hit for i, v in enumerate(node) for hit in _control_characters(v, (*loc, i))]
    return []


def _control_message(value: object) -> str:
    if "PRIVATE KEY" in str(value):
        return PRIVATE_KEY_PASTED
    return "holds a control character (a newline, tab or escape): one line of printable text"


def validate(raw: Mapping[str, Any], source: str) -> Settings:
    """Validate `raw` (keys without the namespace) or raise SettingsError naming each stack key."""
    controls = _control_characters(raw, ())
    if controls:
        raise SettingsError(
            source,
            [
                Problem(_key_of(loc), _lookup(raw, loc), _control_message(_lookup(raw, loc)))
                for loc in controls
            ],
        )
    try:
        return Settings.model_validate(dict(raw))
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown setting; valid keys: " + ", ".join(_valid_keys_at(loc[:-1]))
            problems.append(Problem(_key_of(loc), _lookup(raw, loc), message))
        raise SettingsError(source, problems) from None


def _valid_keys_at(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for item in loc:
        field = model.model_fields.get(to_snake(str(item)))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]


def to_snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def stack_file(stacks_dir: Path, stack: str) -> Path:
    return stacks_dir / f"Pulumi.{stack}.yaml"


def raw_from_stack_text(text: bytes | str, source: str) -> dict[str, Any]:
    """The `tunedstack:` keys of a stack file, namespace stripped; other namespaces ignored."""
    try:
        doc = stack_yaml.parse(text)
    except stack_yaml.StackYamlError as e:
        raise SettingsError(source, [Problem("(file)", MISSING, str(e))]) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SettingsError(
            source,
            [
                Problem(
                    "(file)", MISSING, f"must be a mapping with a `config:` key, not a {_kind(doc)}"
                )
            ],
        )
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise SettingsError(
            source,
            [Problem("config", MISSING, f"must be a mapping of settings, not a {_kind(config)}")],
        )
    prefix = f"{NAMESPACE}:"
    bad_keys = [k for k in config if not isinstance(k, str)]
    if bad_keys:
        raise SettingsError(
            source,
            [
                Problem(
                    "config", MISSING, f"setting names are text such as `{prefix}plan`, not {k!r}"
                )
                for k in bad_keys[:5]
            ],
        )
    raw = {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
    # The deploy key is Pulumi's to decrypt; here only whether it is there, encrypted.
    if DEPLOY_KEY_SETTING in raw and not _encrypted(raw.pop(DEPLOY_KEY_SETTING)):
        raise SettingsError(source, [plaintext_secret(DEPLOY_KEY_SETTING)])
    return raw


def _encrypted(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def plaintext_secret(key: str) -> Problem:
    """A secret written in plain text: never shown, and named as leaked."""
    return Problem(
        f"{NAMESPACE}:{key}",
        MISSING,
        f"is in plain text: it must be a Pulumi secret (`pulumi config set --secret "
        f"{NAMESPACE}:{key} < KEYFILE`); this value is now in the stack file's history, "
        "so replace it (a new deploy key) rather than only encrypting it",
    )


def _kind(value: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def load_stack_file(stacks_dir: Path, stack: str) -> Settings:
    path = stack_file(stacks_dir, stack)
    source = f"stacks/{path.name}"
    if not path.is_file():
        existing = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for p in stacks_dir.glob("Pulumi.*.yaml")
        )
        raise SettingsError(
            source,
            [Problem("--stack", stack, f"no such stack file; stacks: {', '.join(existing)}")],
        )
    return validate(raw_from_stack_text(path.read_bytes(), source), source)
