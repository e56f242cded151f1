"""Configuration models: the customer file and the tenant record.

The customer file (``infra/variables.yml`` in the customer's repository) says WHAT
a customer needs.  The tenant record (``stacks/<customer>.yml`` in the provider's
catalog) says who the customer is and how the provider serves it.  Both are strict:
unknown keys are rejected with a "did you mean", types are not coerced, and every
identifier that could become a path, a shell word or a stack name is checked here,
once, so nothing downstream has to.
"""

from __future__ import annotations

import difflib
import re
import typing
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator


# Identifiers.  Lower-case DNS-label-like names: safe as a directory name, a shell word,
# a Pulumi stack/project name and a Terraform workspace name.  No dots, no slashes.
CUSTOMER_ID_PATTERN = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
ENVIRONMENT_PATTERN = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"
REPOSITORY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"
RESERVED_NAMES = {"con", "nul", "aux", "prn", "organization", "all", "default"}
# Commit statuses are infra/<environment>; these two contexts are commit-wide (the apply gate, the customer file).
STATUS_CONTEXTS = {"apply", "configuration"}

CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
EnvironmentName = Annotated[str, StringConstraints(pattern=ENVIRONMENT_PATTERN)]
TagKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.:/=+@-]{0,62}$")]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[A-Za-z0-9 _.:/=+@-]*$")]

# Instance families the provider offers, with the size ladder.  Shapes are
# (vCPU, memory MiB) and are what the local target "provisions".
INSTANCE_SHAPES: dict[str, tuple[int, int]] = {
    "nano": (2, 512),
    "micro": (2, 1024),
    "small": (2, 2048),
    "medium": (2, 4096),
    "large": (2, 8192),
    "xlarge": (4, 16384),
    "2xlarge": (8, 32768),
}
INSTANCE_FAMILIES = ("t3", "t3a", "t4g", "m5", "m6i", "m7g", "c5", "c6i", "r5", "r6i")
INSTANCE_TYPES = tuple(f"{f}.{s}" for f in INSTANCE_FAMILIES for s in INSTANCE_SHAPES)
DATABASE_CLASSES = tuple(f"db.{f}.{s}" for f in ("t3", "t4g", "m5", "m6i", "r5", "r6i") for s in INSTANCE_SHAPES)
SUPPORTED_TOOLS = ("pulumi", "terraform", "ansible")

# Network slots inside a tenant's /18 (one /22 each): well-known environments get fixed slots so that
# adding an environment never renumbers another one.
WELL_KNOWN_SLOTS = {"production": 0, "prod": 0, "staging": 1, "stage": 1, "development": 2, "dev": 2, "qa": 3, "test": 3, "preview": 4, "sandbox": 5}
MAX_NETWORK_SLOT = 15


def _did_you_mean(value: str, choices: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _one_of(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}{_did_you_mean(value, choices)}")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, str_strip_whitespace=False)


class Database(Strict):
    """A managed database for the customer's service."""

    enabled: bool = True
    engine: Literal["postgres", "mysql"] = "postgres"
    engine_version: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,2}(\.[0-9]{1,2})?$")] | None = None
    instance_class: str = "db.t3.micro"
    storage_gb: Annotated[int, Field(ge=5, le=2048)] = 20
    backup_retention_days: Annotated[int, Field(ge=0, le=35)] = 7
    multi_az: bool = False

    @field_validator("instance_class")
    @classmethod
    def _known_class(cls, value: str) -> str:
        return _one_of(value, DATABASE_CLASSES, "database instance class")


class Monitoring(Strict):
    """Metrics and alerting for the customer's service."""

    enabled: bool = True
    alerts_enabled: bool = True
    alert_email: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")] | None = None
    cpu_alarm_threshold: Annotated[int, Field(ge=1, le=100)] = 80
    retention_days: Annotated[int, Field(ge=1, le=3653)] = 30


class Environment(Strict):
    """What one environment of the customer's service needs."""

    instance_type: str
    instance_count: Annotated[int, Field(ge=1, le=20)] = 1
    volume_size_gb: Annotated[int, Field(ge=8, le=1024)] = 20
    network_slot: Annotated[int, Field(ge=0, le=MAX_NETWORK_SLOT)] | None = None
    database: Database | None = None
    monitoring: Monitoring | None = None

    @field_validator("instance_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _one_of(value, INSTANCE_TYPES, "instance type")


class CustomerConfig(Strict):
    """The customer file, ``infra/variables.yml``."""

    project_name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,40}[a-z0-9]$")]
    environments: dict[EnvironmentName, Environment]
    database: Database | None = None
    monitoring: Monitoring | None = None
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)

    @field_validator("environments")
    @classmethod
    def _environments(cls, value: dict[str, Environment]) -> dict[str, Environment]:
        if not value:
            raise ValueError("at least one environment is required (for example 'staging:')")
        if len(value) > MAX_NETWORK_SLOT + 1:
            raise ValueError(f"at most {MAX_NETWORK_SLOT + 1} environments are supported")
        for name in value:
            if name in RESERVED_NAMES:
                raise ValueError(f"environment name {name!r} is reserved")
            if name in STATUS_CONTEXTS:
                raise ValueError(f"environment name {name!r} is reserved: the engine reports infra/{name} for the whole commit")
        seen: dict[int, str] = {}
        for name, env in value.items():
            slot = network_slot(name, env)
            if slot is None:
                raise ValueError(
                    f"environment {name!r} needs 'network_slot' (0-{MAX_NETWORK_SLOT}): only "
                    f"{', '.join(sorted(WELL_KNOWN_SLOTS))} get one automatically"
                )
            if slot in seen:
                raise ValueError(f"environments {seen[slot]!r} and {name!r} both use network slot {slot}; set 'network_slot' on one of them")
            seen[slot] = name
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 40:
            raise ValueError("at most 40 tags are allowed")
        reserved = {"customer", "environment", "managed-by"} & set(value)
        if reserved:
            raise ValueError(f"tag {sorted(reserved)[0]!r} is set by the provider and cannot be overridden")
        return value



def network_slot(name: str, env: Environment) -> int | None:
    return env.network_slot if env.network_slot is not None else WELL_KNOWN_SLOTS.get(name)


class Properties(Strict):
    """GitHub repository custom properties the engine understands."""

    infrastructure_tools: list[Literal["pulumi", "terraform", "ansible"]] = Field(default_factory=lambda: ["pulumi"])
    terraform_version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")] | None = None
    spacelift_auto_deploy: bool = False
    drift_auto_remediate: bool = False  # `engine drift --remediate` may re-apply this tenant's desired state

    @field_validator("infrastructure_tools")
    @classmethod
    def _tools(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("tools are listed more than once")
        return value


class StateBackend(Strict):
    """Where the tenant's state lives.  The engine appends ``/<customer>`` to the URL's path."""

    url: Annotated[str, StringConstraints(pattern=r"^(file|s3)://[A-Za-z0-9._~/%?&=:-]*$", max_length=512)]

    @field_validator("url")
    @classmethod
    def _no_traversal(cls, value: str) -> str:
        problem = state_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value


_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNSAFE_PATH_CHAR = re.compile(r"[\x00-\x1f\x7f\\]")  # controls, DEL and '\'


def state_url_problem(url: str) -> str | None:
    """Why state under ``url`` + ``/<customer>`` could land anywhere else, or ``None``.

    Pulumi percent-decodes the path before using it (``%2e%2e`` is ``..``, ``%2f`` is ``/``), so the path
    is checked as written and after every decoding, until decoding changes nothing.
    """
    parts = urlsplit(url)
    if parts.scheme == "file" and (parts.netloc or not parts.path.strip("/")):
        # file://~/x is the home directory and file://x/y is relative to the tool's working directory
        return "a file:// state URL names an absolute directory: file:///path/to/state (three slashes)"
    if parts.scheme == "s3" and (not _S3_BUCKET.fullmatch(parts.netloc) or ".." in parts.netloc):
        return f"{parts.netloc!r} is not an S3 bucket name (3-63 lower-case letters, digits, '.' and '-')"
    if _BARE_PERCENT.search(parts.path):
        return "state URL has a '%' that does not start a percent-encoded character (%XX)"
    path, previous = parts.path, None
    while path != previous:
        segments = path.split("/")
        if "." in segments or ".." in segments:
            return "state URL must not contain '.' or '..' segments, written plainly or percent-encoded (%2e%2e)"
        if "" in segments[1:-1]:
            return "state URL must not contain an empty segment ('//', also when percent-encoded as %2f)"
        if _UNSAFE_PATH_CHAR.search(path):
            return "state URL must not encode control characters or '\\'"
        previous, path = path, unquote(path)
    return None


class Upstream(Strict):
    """Another tenant's stack whose outputs this tenant's programs receive (e.g. a shared network)."""

    customer: CustomerId
    environment: EnvironmentName | None = None  # default: the environment with the same name
    outputs: Annotated[list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]], Field(min_length=1, max_length=20)]


class TenantRecord(Strict):
    """The provider's record of one customer: ``stacks/<customer>.yml``."""

    customer: CustomerId
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    repository: Annotated[str, StringConstraints(pattern=REPOSITORY_PATTERN)]
    config_path: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\.ya?ml$", max_length=200)] = "infra/variables.yml"
    source: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", max_length=200)] | None = None
    target: Literal["local", "aws"] = "local"
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}-[a-z]+-[0-9]$")] = "eu-west-1"
    network_index: Annotated[int, Field(ge=1, le=1023)]
    state: StateBackend | None = None
    properties: Properties = Field(default_factory=Properties)
    consumes: Annotated[list[Upstream], Field(max_length=5)] = Field(default_factory=list)
    # GitHub logins allowed to send this tenant's dispatches (empty: anyone who can dispatch to the manager).
    allowed_senders: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}(\[bot\])?$")]] = Field(default_factory=list)
    # How a dispatch proves it comes from the customer's repository: "signature" (HMAC-SHA256 with the customer's
    # dispatch secret, docs/SETUP.md) or "allowed_senders" (opt-out for a provider's own relay; needs allowed_senders).
    dispatch_auth: Literal["signature", "allowed_senders"] = "signature"
    # Where drift issues are opened: the customer's repository or the manager's (GITHUB_REPOSITORY).
    drift_issues: Literal["customer", "manager"] = "customer"
    # Which GitHub custom properties of the customer's repository may override `properties` above.
    property_overrides: list[Literal["infrastructure_tools", "terraform_version", "spacelift_auto_deploy", "drift_auto_remediate"]] = Field(
        default_factory=lambda: ["infrastructure_tools", "terraform_version", "spacelift_auto_deploy"])

    @field_validator("customer")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise ValueError(f"customer id {value!r} is reserved")
        return value

    @field_validator("dispatch_auth")
    @classmethod
    def _senders_named(cls, value: str, info: ValidationInfo) -> str:
        if value == "allowed_senders" and not info.data.get("allowed_senders"):
            raise ValueError("allowed_senders needs allowed_senders: the logins whose unsigned dispatches may run this tenant")
        return value

    @field_validator("config_path", "source")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and any(part in ("..", ".") for part in value.split("/")):
            raise ValueError("must be a relative path without '.' or '..' segments")
        return value


def json_schema(kind: str) -> dict:
    """JSON Schema for editors: ``customer`` (infra/variables.yml) or ``tenant`` (stacks/*.yml)."""
    model = {"customer": CustomerConfig, "tenant": TenantRecord}[kind]
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = {"customer": "Customer infrastructure file (infra/variables.yml)", "tenant": "Tenant record (stacks/<customer>.yml)"}[kind]
    return schema
