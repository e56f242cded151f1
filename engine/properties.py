"""The provider's custom property definitions: one file (``policy/properties.yml``) for GitHub and for compliance.

The same definitions are

* written to the GitHub organization (``engine properties schema``): names, types, allowed values,
  defaults, descriptions and who may edit the values — so customers can set them in GitHub's UI;
* the policy ``engine compliance`` checks every customer repository against (required properties,
  allowed values).

``plan_schema`` compares the definitions with what the organization has and returns only the
differences (field by field), so a second run writes nothing.  ``interpret`` says what the engine
makes of a repository's values: which tools run, which Terraform binary serves ``terraform_version``,
which executor deploys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from pydantic import Field, StringConstraints, ValidationError, model_validator

from engine.config import Properties, Strict, TenantRecord
from engine.documents import load_file
from engine.errors import ConfigError
from engine.validation import validate_document, validation_problems

DEFINITIONS_FILE = Path("policy") / "properties.yml"
# GitHub: "The name of the property … can only contain alphanumeric characters, '_' and '-'", at most 75 characters.
PropertyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,75}$")]
Value = Annotated[str, StringConstraints(min_length=1, max_length=75)]


class Definition(Strict):
    """One custom property as the organization should define it."""

    type: Literal["single_select", "multi_select", "string", "true_false"]
    description: Annotated[str, StringConstraints(max_length=255)] | None = None
    allowed: Annotated[list[Value], Field(min_length=1, max_length=200)] | None = None
    default: Value | list[Value] | None = None
    required: bool = False
    # org_actors: only the organization's admins; org_and_repo_actors: also the repository's admins (the customer)
    editable_by: Literal["org_actors", "org_and_repo_actors"] = "org_actors"

    @model_validator(mode="after")
    def _consistent(self) -> "Definition":
        if self.type in ("single_select", "multi_select") and not self.allowed:
            raise ValueError(f"a {self.type} property needs `allowed` values")
        if self.type in ("string", "true_false") and self.allowed:
            raise ValueError(f"a {self.type} property has no `allowed` list")
        if self.type == "true_false" and self.default not in (None, "true", "false"):
            raise ValueError("the default of a true_false property is \"true\" or \"false\" (quoted)")
        if isinstance(self.default, list) and self.type != "multi_select":
            raise ValueError("only a multi_select property has a list as default")
        defaults = self.default if isinstance(self.default, list) else [] if self.default is None else [self.default]
        if self.allowed and any(d not in self.allowed for d in defaults):
            raise ValueError(f"default {self.default!r} is not one of the allowed values")
        if self.required and self.default in (None, []):
            raise ValueError("GitHub needs a default for a required property (repositories without a value get it)")
        return self

    def to_github(self, name: str) -> dict[str, Any]:
        """The definition as GitHub's ``custom-property-set-payload`` (plus its name)."""
        default: Any = self.default
        if self.type == "multi_select" and isinstance(default, str):
            default = [default]
        return {"property_name": name, "value_type": self.type, "required": self.required, "default_value": default,
                "description": self.description, "allowed_values": self.allowed, "values_editable_by": self.editable_by}


# The properties the engine itself reads, and the type each must have for the engine to understand it.
ENGINE_PROPERTIES = {"infrastructure_tools": "multi_select", "terraform_version": "single_select",
                     "spacelift_auto_deploy": "true_false", "drift_auto_remediate": "true_false"}


class Definitions(Strict):
    """``policy/properties.yml``."""

    properties: Annotated[dict[PropertyName, Definition], Field(min_length=1, max_length=100)]

    @model_validator(mode="after")
    def _engine_types(self) -> "Definitions":
        for name, kind in ENGINE_PROPERTIES.items():
            got = self.properties.get(name)
            if got is not None and got.type != kind:
                raise ValueError(f"{name} is read by the engine as {kind}; it is defined as {got.type}")
        return self

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(name for name, d in self.properties.items() if d.required)

    @property
    def allowed(self) -> dict[str, tuple[str, ...]]:
        allowed = {name: tuple(d.allowed) for name, d in self.properties.items() if d.allowed}
        allowed.update({name: ("true", "false") for name, d in self.properties.items() if d.type == "true_false"})
        return allowed


def load(path: Path) -> Definitions:
    """Validated definitions; a problem is a ``ConfigError`` naming file, line and key (exit 2)."""
    return validate_document(load_file(path), Definitions)


# -- the organization's definitions against ours -------------------------------------------------

COMPARED = ("value_type", "required", "default_value", "description", "allowed_values", "values_editable_by")


def _normal(key: str, value: Any) -> Any:
    """GitHub leaves some fields out or returns null where we send an empty value."""
    if key == "values_editable_by":
        return value or "org_actors"
    if key == "required":
        return bool(value)
    if key in ("allowed_values",) and value == []:
        return None
    if key == "description" and value == "":
        return None
    return value


@dataclass
class SchemaChange:
    name: str
    action: Literal["create", "update"]
    fields: list[str]
    body: dict[str, Any]

    def to_dict(self) -> dict:
        return {"property": self.name, "action": self.action, "fields": self.fields, "definition": self.body}


@dataclass
class SchemaPlan:
    org: str
    changes: list[SchemaChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)  # defined in the organization, not by us: left alone

    def to_dict(self) -> dict:
        return {"org": self.org, "changes": [c.to_dict() for c in self.changes], "unchanged": self.unchanged,
                "unmanaged": self.unmanaged}


def plan_schema(org: str, definitions: Definitions, current: list[dict[str, Any]]) -> SchemaPlan:
    """What to create or update so the organization has ``definitions``; properties it defines that we
    don't are reported, never deleted (another team may own them)."""
    have = {p["property_name"]: p for p in current}
    plan = SchemaPlan(org, unmanaged=sorted(set(have) - set(definitions.properties)))
    for name, definition in definitions.properties.items():
        body = definition.to_github(name)
        existing = have.get(name)
        if existing is None:
            plan.changes.append(SchemaChange(name, "create", list(COMPARED), body))
            continue
        differs = [k for k in COMPARED if _normal(k, existing.get(k)) != _normal(k, body[k])]
        if differs:
            plan.changes.append(SchemaChange(name, "update", differs, body))
        else:
            plan.unchanged.append(name)
    return plan


# -- what the engine makes of a repository's values -----------------------------------------------

def property_value(name: str, value: object) -> object:
    """GitHub returns strings (and lists for multi-select); convert to what the model expects.
    A value that doesn't convert is passed on unchanged, so validation names it."""
    if name == "infrastructure_tools" and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if name in ("spacelift_auto_deploy", "drift_auto_remediate") and isinstance(value, str):
        lowered = value.strip().lower()
        return True if lowered == "true" else False if lowered == "false" else value
    return value


def merge(base: Properties, overridable: Iterable[str], values: dict[str, object], shown: str) -> tuple[Properties, list[str]]:
    """``base`` with the repository's ``values`` applied where ``overridable`` allows, and the names applied.
    Invalid values are a ``ConfigError`` reported against ``shown`` (the repository's custom properties)."""
    applied = {name: property_value(name, values[name]) for name in overridable if values.get(name) is not None}
    if not applied:
        return base, []
    merged = {**base.model_dump(), **applied}
    try:
        return Properties.model_validate(merged), sorted(applied)
    except ValidationError as exc:  # reported against the properties, not a file
        raise ConfigError(validation_problems(exc, shown, Properties, merged)) from None


def apply_custom_properties(record: TenantRecord, values: dict[str, object]) -> TenantRecord:
    """The tenant record with the repository's custom properties applied where it allows it."""
    properties, applied = merge(record.properties, record.property_overrides, values, f"{record.repository} custom properties")
    return record.model_copy(update={"properties": properties}) if applied else record


def effective(record: TenantRecord | None, values: dict[str, Any]) -> tuple[Properties, dict[str, str]]:
    """The properties the engine runs with and, per property, where its value comes from:
    ``repository`` (a custom property the tenant record lets override), ``tenant record`` or ``default``.
    Without a record (a repository not onboarded yet): the defaults, overridden by every engine property."""
    base = record.properties if record else Properties()
    recorded = record.properties.model_fields_set if record and "properties" in record.model_fields_set else set()
    shown = f"{record.repository if record else 'the repository'} custom properties"
    properties, applied = merge(base, record.property_overrides if record else ENGINE_PROPERTIES, values, shown)
    source = {name: "repository" if name in applied else "tenant record" if name in recorded else "default"
              for name in Properties.model_fields}
    return properties, source


def interpret(properties: Properties, terraform: Any = None, spacelift: str | None = None) -> dict[str, Any]:
    """Tools, versions and executor for ``properties``.  ``terraform`` explains which binary serves
    ``terraform_version`` (a callable ``version -> description``, from the Terraform runner).  ``spacelift``
    is why Spacelift executes the tenant (``engine.spacelift.settings.execution``: the rule the engine picks
    its runner by, which reads ``infrastructure_tools`` and ``spacelift.yml``), ``None``: the engine's runners."""
    tools = list(properties.infrastructure_tools)
    iac = "terraform" if "terraform" in tools else "pulumi"
    out: dict[str, Any] = {
        "tools": tools,
        "infrastructure": iac,
        "configuration": "ansible" if "ansible" in tools else None,
        "terraform_version": properties.terraform_version,
        "executor": "spacelift" if spacelift else "engine",
        "executor_reason": spacelift,
        "auto_deploy": properties.spacelift_auto_deploy,
        "drift_auto_remediate": properties.drift_auto_remediate,
    }
    if "terraform" in tools and "pulumi" in tools:
        out["notes"] = ["both pulumi and terraform are set: terraform deploys (pick one)"]
    if iac == "terraform" and terraform is not None:
        out["terraform_binary"] = terraform(properties.terraform_version)
    return out


def org_of(repository: str) -> str:
    return repository.split("/", 1)[0]


ORG_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
