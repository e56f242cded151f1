"""Configuration models: the customer file and the tenant record.

The customer file (``infra/variables.yml`` in the customer's repository) says WHAT
a customer needs.  The tenant record (``stacks/<customer>.yml`` in the provider's
catalog) says who the customer is and how the provider serves it.  Both are strict:
unknown keys are rejected with a "did you mean", types are not coerced, and every
identifier that could become a path, a shell word or a stack name is checked here,
once, so nothing downstream has to.

Each rule is written so that ``json_schema`` exports it too (``Rule`` for those pydantic has no
keyword for); the few JSON Schema cannot express are listed in ``SCHEMA_LIMITS``.
"""

from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, StringConstraints, ValidationInfo, field_validator,
                      model_validator)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from engine import sizing
from engine.clouds import TARGET_FACTS, TARGETS, region_problem


@dataclass(frozen=True, eq=False)  # eq=False: hashable by identity, as typing needs of Annotated metadata
class Rule:
    """A constraint pydantic has no keyword for, enforced by validation and exported to the JSON Schema.

    ``check`` raises ``ValueError`` with the sentence a person reads; ``schema`` is the same rule in JSON
    Schema, merged into the annotated type's schema.  One object for both is what keeps ``engine schema``
    and ``engine validate`` from drifting apart (tests/unit/test_schema_parity.py checks that they agree).
    """

    check: Callable[[Any], None]
    schema: dict

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def validate(value: Any) -> Any:
            self.check(value)
            return value
        return core_schema.no_info_after_validator_function(validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = dict(handler(schema))
        clashing = {key: value for key, value in self.schema.items() if key in json_schema}
        json_schema.update({key: value for key, value in self.schema.items() if key not in clashing})
        if clashing:  # a second rule with the same keyword: both must hold
            json_schema["allOf"] = [*json_schema.get("allOf", []), clashing]
        return json_schema


def one_of(choices: tuple[str, ...], what: str) -> Rule:
    """The value is one of ``choices`` (a JSON Schema ``enum``); otherwise "unknown <what>", with a "did you mean"."""
    def check(value: str) -> None:
        _one_of(value, choices, what)
    return Rule(check, {"enum": list(choices)})


def none_of(reserved: dict[str, str]) -> Rule:
    """The value is not a key of ``reserved`` (a JSON Schema ``not``/``enum``), whose value says why."""
    def check(value: str) -> None:
        if value in reserved:
            raise ValueError(reserved[value])
    return Rule(check, {"not": {"enum": sorted(reserved)}})


def unique_items(message: str) -> Rule:
    """No item of the list appears twice (JSON Schema ``uniqueItems``)."""
    def check(value: list) -> None:
        if len(set(value)) != len(value):
            raise ValueError(message)
    return Rule(check, {"uniqueItems": True})


# Identifiers.  Lower-case DNS-label-like names: safe as a directory name, a shell word,
# a Pulumi stack/project name and a Terraform workspace name.  No dots, no slashes.
CUSTOMER_ID_PATTERN = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
ENVIRONMENT_PATTERN = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"
REPOSITORY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"
RESERVED_NAMES = {"con", "nul", "aux", "prn", "organization", "all", "default"}
# Commit statuses are infra/<environment>; these two contexts are commit-wide (the apply gate, the customer file).
STATUS_CONTEXTS = {"apply", "configuration"}
# Tags the provider sets on every resource itself.
PROVIDER_TAGS = ("customer", "environment", "managed-by")
MAX_TAGS = 40

CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN),
                       none_of({name: f"customer id {name!r} is reserved" for name in RESERVED_NAMES})]
def _not_a_review_name(value: str) -> None:
    if re.fullmatch(r"pr-[0-9]+", value):
        raise ValueError(f"environment name {value!r} is reserved: pr-<number> names the review stack of a pull request")


EnvironmentName = Annotated[str, StringConstraints(pattern=ENVIRONMENT_PATTERN), none_of({
    **{name: f"environment name {name!r} is reserved" for name in RESERVED_NAMES},
    **{name: f"environment name {name!r} is reserved: the engine reports infra/{name} for the whole commit" for name in STATUS_CONTEXTS},
}), Rule(_not_a_review_name, {"not": {"pattern": "^pr-[0-9]+$"}})]
TagKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.:/=+@-]{0,62}$"),
                   none_of({name: f"tag {name!r} is set by the provider and cannot be overridden" for name in PROVIDER_TAGS})]
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
# The sizing vocabulary (engine/sizing.py): every <family>.<size>, and the portable sizes (small, medium, ...).  What each
# word is on the tenant's target — and whether it has a size there at all — is checked when the target is known.
INSTANCE_FAMILIES = sizing.INSTANCE_FAMILIES
INSTANCE_TYPES = sizing.vocabulary("instance")
DATABASE_CLASSES = sizing.vocabulary("database")
SUPPORTED_TOOLS = ("pulumi", "terraform", "ansible")

# Network slots inside a tenant's /18 (one /22 each): well-known environments get fixed slots so that
# adding an environment never renumbers another one.
WELL_KNOWN_SLOTS = {"production": 0, "prod": 0, "staging": 1, "stage": 1, "development": 2, "dev": 2, "qa": 3, "test": 3, "preview": 4, "sandbox": 5}
MAX_NETWORK_SLOT = 15
# Review stacks (engine/review.py): one environment per pull request, named pr-<number>, in the top slots of the tenant's
# /18.  A tenant with review_stacks keeps its own environments in the slots below them.
REVIEW_ENVIRONMENT_PATTERN = r"^pr-[1-9][0-9]{0,8}$"
REVIEW_SLOTS = range(8, MAX_NETWORK_SLOT + 1)


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
    instance_class: Annotated[str, one_of(DATABASE_CLASSES, "database instance class")] = "db.t3.micro"
    storage_gb: Annotated[int, Field(ge=5, le=2048)] = 20
    backup_retention_days: Annotated[int, Field(ge=0, le=35)] = 7
    multi_az: bool = False


class Monitoring(Strict):
    """Metrics and alerting for the customer's service."""

    enabled: bool = True
    alerts_enabled: bool = True
    alert_email: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")] | None = None
    cpu_alarm_threshold: Annotated[int, Field(ge=1, le=100)] = 80
    retention_days: Annotated[int, Field(ge=1, le=3653)] = 30


class Environment(Strict):
    """What one environment of the customer's service needs."""

    instance_type: Annotated[str, one_of(INSTANCE_TYPES, "instance type")]
    instance_count: Annotated[int, Field(ge=1, le=20)] = 1
    volume_size_gb: Annotated[int, Field(ge=8, le=1024)] = 20
    network_slot: Annotated[int, Field(ge=0, le=MAX_NETWORK_SLOT)] | None = None
    database: Database | None = None
    monitoring: Monitoring | None = None
    # The customer's own monthly budget (USD) for this environment: it may lower the provider's cap, never raise it
    # (a plan over the lower of the two is denied by the budget policy, policy/budget.rego).
    max_monthly_cost: Annotated[float, Field(ge=0, le=10_000_000)] | None = None


def _slot_needed(schema: dict) -> None:
    """The JSON Schema half of "an environment without a well-known name sets network_slot"."""
    environment = schema.pop("additionalProperties")
    schema["properties"] = {name: dict(environment) for name in WELL_KNOWN_SLOTS}
    schema["additionalProperties"] = {"allOf": [environment, {"required": ["network_slot"], "properties": {"network_slot": {"type": "integer"}}}]}


class CustomerConfig(Strict):
    """The customer file, ``infra/variables.yml``."""

    project_name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,40}[a-z0-9]$")]
    # One network slot each, so at most MAX_NETWORK_SLOT + 1.
    environments: Annotated[dict[EnvironmentName, Environment], Field(min_length=1, max_length=MAX_NETWORK_SLOT + 1, json_schema_extra=_slot_needed)]
    database: Database | None = None
    monitoring: Monitoring | None = None
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)] = Field(default_factory=dict)
    # Whose settings a pull request's review stack gets, when the provider enabled review stacks (review_stacks in the
    # tenant record); default: the first environment of the file that is not production (engine/review.py).
    review_base: EnvironmentName | None = None

    @field_validator("review_base")
    @classmethod
    def _review_base_named(cls, value: str | None, info: ValidationInfo) -> str | None:
        environments = info.data.get("environments")
        if value is not None and environments is not None and value not in environments:
            raise ValueError(f"{value!r} is not an environment of this file (its environments: {', '.join(environments)})")
        return value

    @field_validator("environments")
    @classmethod
    def _environments(cls, value: dict[str, Environment]) -> dict[str, Environment]:
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


def network_slot(name: str, env: Environment) -> int | None:
    return env.network_slot if env.network_slot is not None else WELL_KNOWN_SLOTS.get(name)


class Properties(Strict):
    """GitHub repository custom properties the engine understands."""

    infrastructure_tools: Annotated[list[Literal["pulumi", "terraform", "ansible", "spacelift"]], unique_items("tools are listed more than once")] = Field(
        default_factory=lambda: ["pulumi"])
    terraform_version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")] | None = None
    spacelift_auto_deploy: bool = False
    drift_auto_remediate: bool = False  # `engine drift --remediate` may re-apply this tenant's desired state


_S3_BUCKET_NAME = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"


def _state_url_ok(url: str) -> None:
    problem = state_url_problem(url)
    if problem:
        raise ValueError(problem)


class StateBackend(Strict):
    """Where the tenant's state lives.  The engine appends ``/<customer>`` to the URL's path."""

    url: Annotated[str, StringConstraints(pattern=r"^(file|s3)://[A-Za-z0-9._~/%?&=:-]*$", max_length=512),
                   Rule(_state_url_ok, {"allOf": [
                       # What JSON Schema can say of state_url_problem: file:// names an absolute directory, s3:// a bucket
                       # (ECMA-262 regexes, as editors run them).  Its checks after percent-decoding are in the description.
                       {"pattern": r"^(?!file:)|^file:///+[^/?]"},
                       {"pattern": rf"^(?!s3:)|^s3://(?![^/?]*\.\.){_S3_BUCKET_NAME}(?:[/?]|$)"},
                   ]})]


_S3_BUCKET = re.compile(rf"^{_S3_BUCKET_NAME}$")
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


# What a notification can be about (engine/notify): a deploy (up, destroy, the remediation of drift), a policy refusing one,
# drift found or gone (engine drift), a repository breaking the property policy (engine compliance), a rollback.
NOTIFICATION_EVENTS = ("deploy.started", "deploy.succeeded", "deploy.failed", "policy.blocked", "drift.opened", "drift.resolved",
                       "compliance.violation", "rollback")
DEFAULT_NOTIFICATION_EVENTS = tuple(e for e in NOTIFICATION_EVENTS if e != "deploy.started")  # a start is worth a message only on request
NotificationEvent = Literal["deploy.started", "deploy.succeeded", "deploy.failed", "policy.blocked", "drift.opened", "drift.resolved",
                            "compliance.violation", "rollback"]
_ENV_VAR_NAME = r"^[A-Z][A-Z0-9_]{0,127}$"


def _env_var_name(value: str) -> None:
    # never repeated in the message: a value that is not a name may well be the webhook URL or token itself
    if not re.fullmatch(_ENV_VAR_NAME.removesuffix("$") + r"\Z", value):
        raise ValueError("expected the name of an environment variable (A-Z, 0-9 and '_', starting with a letter); the webhook URL "
                         "or token is a secret: put it in that variable, never in a file")


# The name of an environment variable (never its value: webhook URLs and tokens are secrets and stay out of files).
EnvVarName = Annotated[str, Rule(_env_var_name, {"pattern": _ENV_VAR_NAME})]


def _one_destination(value: "Notification") -> None:
    given = {name for name in ("webhook_env", "token_env", "slack_channel") if getattr(value, name) is not None}
    if given not in ({"webhook_env"}, {"token_env", "slack_channel"}):
        raise ValueError("name either webhook_env (an incoming webhook URL) or, for Slack's Web API, token_env and slack_channel")
    if "token_env" in given and value.channel != "slack":
        raise ValueError("token_env and slack_channel are for channel: slack (Teams posts through a Workflows webhook: webhook_env)")


class Notification(Strict):
    """One destination of notifications: a Slack or Microsoft Teams channel and the events it hears about.

    The webhook URL (or Slack bot token) is a secret: the file names the environment variable that holds it.
    """

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["webhook_env"], "not": {"anyOf": [{"required": ["token_env"]}, {"required": ["slack_channel"]}]}},
        {"required": ["token_env", "slack_channel"], "properties": {"channel": {"const": "slack"}}, "not": {"required": ["webhook_env"]}},
    ]})

    channel: Literal["slack", "teams"]
    webhook_env: EnvVarName = None  # type: ignore[assignment] - absent, never null: a Slack incoming webhook or Teams Workflows URL
    token_env: EnvVarName = None  # type: ignore[assignment] - Slack Web API (chat.postMessage): a bot token (chat:write)
    slack_channel: Annotated[str, StringConstraints(pattern=r"^([CDG][A-Z0-9]{8,14}|#[a-z0-9][a-z0-9._-]{0,79})$")] = None  # type: ignore[assignment]
    events: Annotated[list[NotificationEvent], Field(min_length=1), unique_items("events are listed more than once")] = Field(
        default_factory=lambda: list(DEFAULT_NOTIFICATION_EVENTS))
    environments: Annotated[list[EnvironmentName], unique_items("environments are listed more than once")] = Field(
        default_factory=list)  # only these environments' deploys and drift (empty: every environment)

    @model_validator(mode="after")
    def _destination(self) -> "Notification":
        _one_destination(self)
        return self


# A path segment other than '.' and '..' (pydantic's regexes have no look-ahead to say "not").
_SEGMENT = r"(\.?[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.\.[A-Za-z0-9_.-]+)"


class TenantRecord(Strict):
    """The provider's record of one customer: ``stacks/<customer>.yml``."""

    # _senders_named below, for editors
    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"dispatch_auth": {"const": "allowed_senders"}}, "required": ["dispatch_auth"]},
        "then": {"properties": {"allowed_senders": {"minItems": 1}}, "required": ["allowed_senders"]},
        # _region_of_target below: each target's regions (an absent target is local)
        "allOf": [{"if": {"properties": {"target": {"enum": names}}, **({} if "local" in names else {"required": ["target"]})},
                   "then": {"properties": {"region": {"pattern": pattern}}}}
                  for pattern, names in {
                      facts.region_pattern: [t for t in TARGETS if TARGET_FACTS[t].region_pattern == facts.region_pattern]
                      for facts in TARGET_FACTS.values()}.items()],
    })

    customer: CustomerId
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    repository: Annotated[str, StringConstraints(pattern=REPOSITORY_PATTERN)]
    config_path: Annotated[str, StringConstraints(pattern=rf"^({_SEGMENT}/)*[A-Za-z0-9_.-]+\.ya?ml$", max_length=200)] = "infra/variables.yml"
    source: Annotated[str, StringConstraints(pattern=rf"^{_SEGMENT}(/{_SEGMENT})*$", max_length=200)] | None = None
    target: Literal["local", "aws", "azure", "gcp"] = "local"
    # Default: eu-west-1 (local, aws), westeurope (azure), europe-west4 (gcp) — _default_region below.
    region: Annotated[str, StringConstraints(pattern="|".join(sorted({f.region_pattern for f in TARGET_FACTS.values()})))] = "eu-west-1"
    network_index: Annotated[int, Field(ge=1, le=1023)]  # the tenant's /18 of 10.0.0.0/8 (engine/planning.py)
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
    # The provider's monthly budget cap (USD) for this tenant: one number for every environment, or per environment
    # ({production: 500, "*": 100}); an input of the budget policy (policy/budget.rego), which the provider may change.
    max_monthly_cost: Annotated[float, Field(ge=0, le=10_000_000)] | dict[
        Annotated[str, StringConstraints(pattern=r"^(\*|[a-z][a-z0-9-]{0,31})$")], Annotated[float, Field(ge=0, le=10_000_000)]] | None = None
    # Post-deploy tests (engine/post_deploy.py) after an `up` of: true every environment, false none, or a list of
    # environments; unset: production (and prod) only.
    post_deploy_tests: bool | Annotated[list[EnvironmentName], unique_items("environments are listed more than once")] | None = None
    # A failed post-deploy test rolls the environment back to its last good deploy (engine/rollback.py): true, or a list.
    rollback_on_failure: bool | Annotated[list[EnvironmentName], unique_items("environments are listed more than once")] = False
    # Where this tenant's notifications go (engine/notify; the provider's own channels are in notifications.yml).
    notifications: Annotated[list[Notification], Field(max_length=10)] = Field(default_factory=list)
    # An ephemeral stack per pull request of the customer's repository (pr-<number>, engine/review.py): deployed when it
    # opens or changes, destroyed when it closes, and by `engine gc` after a TTL.  Its network uses REVIEW_SLOTS.
    review_stacks: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_region(cls, data: Any) -> Any:
        if isinstance(data, dict) and "region" not in data and isinstance(data.get("target"), str) and data["target"] in TARGET_FACTS:
            return {**data, "region": TARGET_FACTS[data["target"]].default_region}
        return data

    @field_validator("region")
    @classmethod
    def _region_of_target(cls, value: str, info: ValidationInfo) -> str:
        problem = region_problem(info.data["target"], value) if "target" in info.data else None  # no target: its own problem
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("dispatch_auth")
    @classmethod
    def _senders_named(cls, value: str, info: ValidationInfo) -> str:
        if value == "allowed_senders" and not info.data.get("allowed_senders"):
            raise ValueError("allowed_senders needs allowed_senders: the logins whose unsigned dispatches may run this tenant")
        return value


# What `engine validate` enforces and JSON Schema cannot say, by name (tests/unit/test_schema_parity.py knows each
# name: they are the only cases where a file passes the schema and fails validation).
_WHOLE_INTEGERS = "integers are written as integers: 2, not 2.0 (JSON Schema cannot tell 2.0 from 2)."
SCHEMA_LIMITS: dict[str, dict[str, str]] = {
    "customer": {
        "network-slots-distinct": "two environments cannot use the same network slot (a well-known name's slot or "
                                  "network_slot): a rule across environments.",
        "review-base-is-an-environment": "review_base names one of the file's environments: a rule across keys.",
        "whole-integers": _WHOLE_INTEGERS,
    },
    "tenant": {
        "customer-is-file-name": "customer is the file's name: stacks/<customer>.yml.",
        "state-url-decoded": "state.url is also checked after percent-decoding, as the tools decode it, until decoding "
                             "changes nothing: no '.', '..' or empty path segments, no control characters or '\\', and "
                             "every '%' in the path starts a %XX.",
        "whole-integers": _WHOLE_INTEGERS,
    },
}
_TITLES = {"customer": "Customer infrastructure file (infra/variables.yml)", "tenant": "Tenant record (stacks/<customer>.yml)"}
_READ_AS = ("The file is read as YAML 1.2, as editors read it: only true and false (also True, TRUE, False, FALSE) are "
            "booleans; yes, no, on, off, y and n are text, so a key that takes true or false refuses them. It is one "
            "document without anchors, aliases, merge keys (<<), explicit tags or duplicate keys, at most 256 KiB and "
            "16 levels deep.")
# Cross-field with the tenant record, so neither this schema nor `engine validate FILE` alone can check it (`engine validate
# FILE --target T` and every run do, naming file, line and key): named here so an editor's user knows it exists.
_ON_TARGET = ("Checked when the tenant's target is known (`engine validate --target local|aws|azure|gcp`, and every plan "
              "and run), not by this schema: size-mappable-on-target: every instance_type and database.instance_class has a "
              "size on the target (docs/CLOUDS.md, the sizing table; the local target takes every word); "
              "database-engine-on-target: azure offers engine postgres only; azure-multi-az-class: multi_az on azure needs a "
              "db.m* or db.r* class (Burstable servers have no high availability); tags-on-target: tag names azure or gcp "
              "cannot tell apart (case, gcp's label characters) or that azure refuses (< > % & \\ ? /).")
_ACROSS_CATALOG = ("Checked when the catalog is read, not by `engine validate`: network_index is unique across the catalog "
                   "and a tenant's source does not lie inside another's; consumes is checked against the catalog when "
                   "the tenant runs.")


class _Generator(GenerateJsonSchema):
    """pydantic's JSON Schema, with a mapping's key rules where editors apply them to every key.

    pydantic writes ``dict[Key, Value]`` as ``patternProperties: {<key pattern>: Value}``, which lets any key that
    does not match the pattern through; validation refuses it.  Here every key must match (``propertyNames``) and
    every value is a Value (``additionalProperties``).
    """

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        patterns = json_schema.pop("patternProperties", None)
        if patterns:
            (pattern, values), = patterns.items()
            json_schema["propertyNames"] = {"pattern": pattern, **json_schema.get("propertyNames", {})}
            json_schema["additionalProperties"] = values
        return json_schema


def json_schema(kind: str) -> dict:
    """JSON Schema (draft 2020-12) for editors: ``customer`` (infra/variables.yml) or ``tenant`` (stacks/*.yml).

    It holds every rule of ``engine validate`` that JSON Schema can express; its ``description`` lists the others
    (``SCHEMA_LIMITS``).
    """
    model = {"customer": CustomerConfig, "tenant": TenantRecord}[kind]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema(schema_generator=_Generator)}
    schema["title"] = _TITLES[kind]
    limits = "\n".join(f"- {name}: {text}" for name, text in SCHEMA_LIMITS[kind].items())
    schema["description"] = "\n\n".join([
        (model.__doc__ or "").strip(),
        f"`engine validate` also checks what this schema cannot express:\n{limits}",
        _READ_AS,
        *([_ACROSS_CATALOG] if kind == "tenant" else [_ON_TARGET]),
    ])
    return schema
