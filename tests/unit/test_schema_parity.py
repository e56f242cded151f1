"""`engine schema` and `engine validate` agree, so an editor never accepts a file the engine then refuses.

Every example file (the customer files under examples/ and templates/, the tenant records under stacks/, the
test configurations of tests/conftest.py) is changed in one place at a time — a value to a boundary, an invalid
or another allowed value, a YAML 1.1 form, an unknown key added, a key deleted, an environment renamed, a 41st
tag — and each variant is checked twice: by `engine validate`'s own function, and by the exported JSON Schema
as an editor applies it (the `jsonschema` library, on the document read as YAML 1.2).

* A variant the schema refuses must be refused by `engine validate`.
* A variant the schema accepts and `engine validate` refuses is allowed only for the rules the schema's
  description lists as not expressible (``SCHEMA_LIMITS``), each recognised here by name.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterator, Union

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from engine.commands.validate import check as engine_validate
from engine.config import (MAX_NETWORK_SLOT, MAX_TAGS, PROVIDER_TAGS, SCHEMA_LIMITS, WELL_KNOWN_SLOTS, CustomerConfig, TenantRecord,
                           json_schema)
from engine.documents import load_text
from engine.errors import ConfigError, Problem
from tests.conftest import REPO, SMALL_CONFIG, THREE_ENVIRONMENTS, tenant_record

MODELS = {"customer": CustomerConfig, "tenant": TenantRecord}

# The rules the schema's description names, recognised in `engine validate`'s problems.  These are the only
# problems allowed on a variant the schema accepts.
LIMITS: dict[str, typing.Callable[[Problem], bool]] = {
    "network-slots-distinct": lambda p: p.key_path == "environments" and "both use network slot" in p.reason,
    "review-base-is-an-environment": lambda p: p.key_path == "review_base" and "is not an environment of this file" in p.reason,
    "whole-integers": lambda p: re.fullmatch(r"expected an integer, got a number \(-?[0-9]+\.0\)", p.reason) is not None,
    "customer-is-file-name": lambda p: p.key_path == "customer" and "does not match the file name" in p.reason,
    "state-url-decoded": lambda p: p.key_path == "state.url" and any(
        text in p.reason for text in ("'.' or '..' segments", "empty segment", "does not start a percent-encoded", "control characters")),
}


class Plain(str):
    """Text written into the variant as it is, unquoted: ``yes``, ``1_000``, ``2024-01-01``."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    def ignore_aliases(self, data: Any) -> bool:  # the engine refuses anchors; write shared parts out each time
        return True


# Every string quoted, so it reads back as that string; a Plain one written plain, as a person would type it.
_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'"))
_Dumper.add_representer(Plain, lambda dumper, value: dumper.represent_scalar(
    dumper.resolve(yaml.ScalarNode, str(value), (True, False)), str(value)))


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


# --- the bases -------------------------------------------------------------------------------------------------

@dataclass
class Base:
    name: str
    kind: str
    filename: str
    data: dict


def _read(path: Path) -> dict:
    return load_text(path.read_bytes(), str(path)).data


def bases() -> list[Base]:
    out = [Base(str(p.relative_to(REPO)), "customer", "variables.yml", _read(p))
           for p in [*sorted(REPO.glob("examples/*/infra/variables.yml")), REPO / "templates/customer/infra/variables.yml"]]
    out += [Base(str(p.relative_to(REPO)), "tenant", p.name, _read(p)) for p in sorted(REPO.glob("stacks/*.yml"))]
    out += [Base("tests/conftest.py SMALL_CONFIG", "customer", "variables.yml", load_text(SMALL_CONFIG.format(name="shop"), "s").data),
            Base("tests/conftest.py THREE_ENVIRONMENTS", "customer", "variables.yml",
                 load_text(THREE_ENVIRONMENTS.format(name="shop"), "t").data),
            Base("tests/conftest.py tenant_record", "tenant", "shop.yml", load_text(tenant_record("shop", 3), "r").data)]
    # stacks/acme.yml with every optional key set, so that one change reaches each of them
    acme = _read(REPO / "stacks/acme.yml")
    out.append(Base("stacks/acme.yml with every key", "tenant", "acme.yml", {
        **acme, "target": "aws", "region": "eu-central-1", "state": {"url": "s3://acme-state/tenants?region=eu-central-1"},
        "properties": {**acme["properties"], "infrastructure_tools": ["pulumi", "ansible"], "drift_auto_remediate": True},
        "consumes": [{"customer": "shared-net", "environment": "production", "outputs": ["vpc_id", "vpc_cidr"]}],
        "allowed_senders": ["acme-ci-bot", "relay[bot]"], "dispatch_auth": "allowed_senders", "drift_issues": "manager",
        "property_overrides": ["infrastructure_tools", "terraform_version"],
        "notifications": [{"channel": "slack", "webhook_env": "NOTIFY_SLACK_ACME", "events": ["deploy.failed", "drift.opened"],
                           "environments": ["production"]},
                          {"channel": "slack", "token_env": "NOTIFY_SLACK_BOT", "slack_channel": "C0123456789"},
                          {"channel": "teams", "webhook_env": "NOTIFY_TEAMS_ACME"}],
    }))
    return out


# --- the changes -----------------------------------------------------------------------------------------------

YAML11 = ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF"]
GENERIC = ["", "x", "with space", "trailing\n", "a" * 257, Plain("yes"), Plain("on"), Plain("2024-01-01"), Plain("1_000"),
           16, 1.5, True, None, [], {}]
# Values worth trying by key (for list items: by the list's key).
BY_KEY: dict[str, list] = {
    "project_name": ["ab", "a", "a" * 42, "a" * 43, "Acme", "acme-", "-acme", "acme_shop", "9acme", Plain("no")],
    "instance_type": ["t3.bogus", "t3.micro", "m7g.2xlarge", "r6i.nano", "db.t3.micro", "T3.micro", "t3.micro ", "t3"],
    "instance_class": ["db.t3.bogus", "db.m7g.micro", "db.r6i.2xlarge", "t3.micro", "db.c5.large", "db.t4g.nano"],
    "engine": ["postgres", "mysql", "oracle", "Postgres"],
    "engine_version": ["16", "8.0", "16.1", "16.1.1", "100", Plain("16"), Plain("8.0"), Plain("1e1")],
    "alert_email": ["ops@example.com", "not-an-email", "a@b.c", "a@b.co", "x@" + "a" * 190 + ".com", "o ps@example.com"],
    "customer": ["acme", "shop", "shared-net", "other", "default", "all", "organization", "Acme", "a" * 32, "a" * 33, "acme-"],
    "repository": ["a/b", "acme-corp", "acme-corp/shop/x", "-a/b", "a" * 39 + "/b", "a" * 40 + "/b", "acme_corp/shop"],
    "config_path": ["infra/variables.yaml", "infra/vars.json", "../variables.yml", "infra/./variables.yml", "infra/..x/v.yml",
                    "/abs/v.yml", ".infra/v.yml", "infra//v.yml", "a" * 197 + ".yml"],
    "source": ["examples/acme", "..", ".", "examples/../acme", "examples/.hidden", "examples//acme", "/etc", "..acme", "acme/"],
    "target": ["local", "aws", "azure", "gcp", "oci"],
    "region": ["us-east-1", "eu-west-10", "EU-west-1", "euwest1", "westeurope", "eastus2", "europe-west4", "us-central1", "europe-west10"],
    "terraform_version": ["1.6", "1.10.6", "1", "v1.6", Plain("1.6"), "1.6.0.1"],
    "url": ["file:///srv/state", "file://relative/state", "file:///", "file:////srv", "file:///srv/../x", "file:///srv/%2e%2e/x",
            "file:///srv/%252e%252e/x", "file:///srv//x", "file:///srv/%zz", "file:///srv/%00", "file:///srv/%5c", "file://",
            "s3://acme-state/t", "s3://acme-state", "s3://acme-state?region=x", "s3://Acme/t", "s3://a..b/t", "s3://ab/t",
            "s3://abc/t", "s3://a.b-c/t", "s3://acme-state/t?region=eu-west-1&endpoint=http://h:9000", "http://x/y",
            "s3://" + "a" * 63 + "/t", "s3://" + "a" * 64 + "/t", "s3://acme-/t", "file:///" + "a" * 505],
    "display_name": ["A", "a" * 100, "a" * 101],
    "dispatch_auth": ["signature", "allowed_senders", "hmac"],
    "drift_issues": ["customer", "manager", "both"],
    "environment": ["production", "staging", "apply", "default", "Prod"],
    "allowed_senders": ["dependabot[bot]", "-x", "a" * 39, "a" * 40, "x[bot]x"],
    "outputs": ["vpc_id", "1x", "_x", "a" * 64, "a" * 65, "vpc-id"],
    "infrastructure_tools": ["pulumi", "terraform", "ansible", "chef"],
    "property_overrides": ["infrastructure_tools", "drift_auto_remediate", "region"],
    "channel": ["slack", "teams", "email", "Slack"],
    "webhook_env": ["NOTIFY_X", "notify_x", "1X", "X", "X" * 128, "X" * 129, "https://hooks.example/x", "X-Y"],
    "token_env": ["NOTIFY_X", "notify_x", "X" * 129],
    "slack_channel": ["C0123456789", "#ops", "#Ops", "ops", "C01", "#" + "a" * 80, "#" + "a" * 81, "D0123456789"],
    "events": ["deploy.failed", "rollback", "deploy", "drift.opned"],
}
BOUNDARIES = [-1, 0, 1, 4, 5, 7, 8, 15, 16, 19, 20, 21, 35, 36, 99, 100, 101, 1023, 1024, 1025, 2048, 2049, 3653, 3654]
ENVIRONMENT_NAMES = ["Staging", "qa", "custom", "default", "apply", "configuration", "all", "a", "ab", "x" * 20, "x" * 21,
                     "prod", "sandbox", "preview", "-x", "x-", "staging_1", "stag.ing", Plain("on"), "1x"]
TAG_KEYS = [*PROVIDER_TAGS, "Customer", "9bad", "a" * 63, "a" * 64, "team:x", "cost center", "x!", Plain("yes")]
TAG_VALUES = ["", "a" * 256, "a" * 257, "a!b", "4711", Plain("4711"), "with space", "trailing\n", Plain("off"), None]


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def _replaced(data: dict, path: tuple, value: Any) -> dict:
    out = copy.deepcopy(data)
    _get(out, path[:-1])[path[-1]] = value
    return out


def _deleted(data: dict, path: tuple) -> dict:
    out = copy.deepcopy(data)
    del _get(out, path[:-1])[path[-1]]
    return out


def _renamed(data: dict, path: tuple, key: str) -> dict:
    out = copy.deepcopy(data)
    parent = _get(out, path[:-1])
    items = [(key if k == path[-1] else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)
    return out


def _nodes(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every value below the root with its path."""
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        yield path + (key,), value
        yield from _nodes(value, path + (key,))


def _unwrap(tp: Any) -> Any:
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        else:
            return tp


def _type_at(model: type[BaseModel], path: tuple) -> Any:
    """The (unwrapped) type the model expects at ``path``: a model, dict, list or scalar type."""
    tp: Any = model
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            tp = tp.model_fields[part].annotation
        else:  # dict[K, V] or list[T]
            tp = typing.get_args(tp)[-1]
    return _unwrap(tp)


def _probes(key: Any, value: Any, tp: Any) -> list:
    """Values to put where ``value`` (of type ``tp``) is, under ``key``."""
    named = BY_KEY.get(key, []) if isinstance(key, str) else []
    if tp is bool:
        return [not value if isinstance(value, bool) else True, *map(Plain, YAML11), Plain("tRue"), "true", 1, None]
    if tp is int:
        near = [value - 1, value + 1, float(value), value + 0.5] if isinstance(value, int) and not isinstance(value, bool) else []
        return [*near, *BOUNDARIES, Plain("1_0"), Plain("1:30"), Plain("0o17"), Plain("0x1F"), Plain("1e1"), "16", True, None]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [{}, None, [], "x"]
    if typing.get_origin(tp) is list:
        return [[], "x", None]
    if typing.get_origin(tp) is dict:
        return [{}, None, []]
    return [*named, *GENERIC]


def variants(base: Base) -> Iterator[tuple[str, dict]]:
    """(what changed, the changed document) — one change each."""
    model = MODELS[base.kind]
    data = base.data
    yield "unchanged", data
    nodes = [((), data), *_nodes(data)]
    for path, value in nodes:
        where = ".".join(map(str, path)) or "<top>"
        tp = _type_at(model, path)
        if path:
            yield f"{where} deleted", _deleted(data, path)
            key = path[-2] if isinstance(path[-1], int) else path[-1]
            if len(path) >= 2 and path[-2] == "tags":
                probes = TAG_VALUES
            else:
                probes = _probes(key, value, _unwrap(tp))
            for probe in probes:
                yield f"{where}: {probe!r}", _replaced(data, path, probe)
        if isinstance(value, dict):
            yield f"{where} + unknown key", _replaced(data, path, {**value, "unknown_key": 1}) if path else {**value, "unknown_key": 1}
            if value:
                first = next(iter(value))
                typo = str(first)[:-1] or "x"
                if typo not in value:
                    changed = {**value, typo: value[first]}
                    yield f"{where} + {typo!r} (a typo)", _replaced(data, path, changed) if path else changed
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(value, dict):
            for name, field in tp.model_fields.items():
                if name in value:
                    continue
                for probe in _probes(name, None, _unwrap(field.annotation)):
                    changed = {**value, name: probe}
                    yield f"{where} + {name}: {probe!r}", _replaced(data, path, changed) if path else changed
        if isinstance(value, list):
            item_key = path[-1]
            if value:
                yield f"{where} + a repeated item", _replaced(data, path, [*value, value[0]])
            for probe in BY_KEY.get(item_key, []):
                yield f"{where} + {probe!r}", _replaced(data, path, [*value, probe])
            if value and isinstance(value[0], dict):
                yield f"{where} × 6", _replaced(data, path, [value[0]] * 6)
            if item_key == "outputs":
                yield f"{where} × 21", _replaced(data, path, [f"out{i}" for i in range(21)])
        if path == ("environments",) and isinstance(value, dict):
            for name in value:
                for new in ENVIRONMENT_NAMES:
                    if new not in value:
                        yield f"environment {name!r} renamed {new!r}", _renamed(data, path + (name,), new)
            yield from _more_environments(data)
        if path == ("tags",) and isinstance(value, dict):
            for key in TAG_KEYS:
                yield f"tags + {key!r}", _replaced(data, path, {**value, key: "x"})
    if base.kind == "customer" and "tags" not in data:
        for count in (MAX_TAGS, MAX_TAGS + 1):
            yield f"tags × {count}", {**data, "tags": {f"tag{i}": "x" for i in range(count)}}
    if base.kind == "customer" and "tags" in data:
        for count in (MAX_TAGS, MAX_TAGS + 1):
            tags = {**data["tags"], **{f"tag{i}": "x" for i in range(count - len(data["tags"]))}}
            yield f"tags × {count}", {**data, "tags": tags}


def _more_environments(data: dict) -> Iterator[tuple[str, dict]]:
    """The customer file with as many environments as there are network slots, and one more."""
    environments = data["environments"]
    used = {env["network_slot"] if env.get("network_slot") is not None else WELL_KNOWN_SLOTS.get(name) for name, env in environments.items()}
    free = [slot for slot in range(MAX_NETWORK_SLOT + 1) if slot not in used]
    for count in (MAX_NETWORK_SLOT + 1, MAX_NETWORK_SLOT + 2):
        extra = {f"extra-{i}": {"instance_type": "t3.nano", "network_slot": free[i % len(free)]} for i in range(count - len(environments))}
        yield f"environments × {count}", {**data, "environments": {**environments, **extra}}


# --- the two judges --------------------------------------------------------------------------------------------

@functools.cache
def _ecma(pattern: str) -> re.Pattern:
    # jsonschema runs patterns with Python's re, whose '$' also matches before a final newline; editors run
    # ECMA-262 regexes, whose '$' is the end of the text (pydantic's regexes agree with ECMA-262 here).
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _ecma(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


EditorValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


@functools.cache
def editor(kind: str) -> jsonschema.protocols.Validator:
    schema = json_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return EditorValidator(schema)


def judge(kind: str, filename: str, text: str) -> tuple[list[str], list[Problem] | None]:
    """(the schema's errors, `engine validate`'s problems or None when it accepts)."""
    data = load_text(text, filename).data  # what an editor reading YAML 1.2 sees
    schema_errors = [f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message[:200]}" for e in editor(kind).iter_errors(data)]
    try:
        engine_validate(load_text(text, filename), Path(filename), kind)  # what `engine validate FILE` does once it has read FILE
        problems = None
    except ConfigError as exc:
        problems = exc.problems
    return schema_errors, problems


def disagreement(schema_errors: list[str], problems: list[Problem] | None) -> tuple[str | None, set[str]]:
    """(why the two disagree, or None; the named limits that explain an allowed difference)."""
    if problems is None:
        return ("engine validate accepts what the schema refuses: " + "; ".join(schema_errors)) if schema_errors else None, set()
    if schema_errors:
        return None, set()
    named = set()
    for problem in problems:
        names = {name for name, recognises in LIMITS.items() if recognises(problem)}
        if not names:
            return f"the schema accepts what engine validate refuses, and no rule in its description says why: {problem}", set()
        named |= names
    return None, named


# --- the tests -------------------------------------------------------------------------------------------------

def test_every_limit_in_the_description_is_known_here_by_name():
    for kind, limits in SCHEMA_LIMITS.items():
        description = json_schema(kind)["description"]
        for name in limits:
            assert f"- {name}: " in description, (kind, name)
    assert {name for limits in SCHEMA_LIMITS.values() for name in limits} == set(LIMITS)


def test_schema_and_validator_agree_on_one_change_variants_of_every_example():
    checked, mismatches, exercised = 0, [], set()
    for base in bases():
        schema_errors, problems = judge(base.kind, base.filename, dump(base.data))
        assert not schema_errors and problems is None, f"{base.name} itself: {schema_errors} {problems}"
        for label, data in variants(base):
            text = dump(data)
            schema_errors, problems = judge(base.kind, base.filename, text)
            why, named = disagreement(schema_errors, problems)
            checked += 1
            exercised |= named
            if why:
                mismatches.append(f"{base.name}, {label}: {why}")
    assert not mismatches, f"{len(mismatches)} of {checked} variants disagree:\n" + "\n".join(mismatches[:40])
    assert checked > 2000, checked  # the generator still reaches every key
    # each rule the description names really is one the schema cannot express: some variant shows it
    assert exercised == set(LIMITS), set(LIMITS) - exercised


def test_yaml_1_1_booleans_are_refused_by_both_with_a_hint():
    for word in YAML11:
        text = f"project_name: shop\nenvironments:\n  staging:\n    instance_type: t3.micro\n    database:\n      multi_az: {word}\n"
        schema_errors, problems = judge("customer", "variables.yml", text)
        assert schema_errors, word
        assert problems and problems[0].line == 6 and problems[0].key_path == "environments.staging.database.multi_az", problems
        assert problems[0].reason.startswith(f"expected true or false, got a string ({word!r}): write true or false"), problems[0]
    # where a string is expected, `yes` is the text "yes", for the editor and the engine alike: it never becomes true
    text = "project_name: shop\nenvironments:\n  staging:\n    instance_type: t3.micro\ntags:\n  backup: yes\n"
    assert judge("customer", "variables.yml", text) == ([], None)
    assert load_text(text, "v").data["tags"] == {"backup": "yes"}


# YAML 1.2 core schema (yaml.org/spec/1.2.2, 10.3.2): the plain scalars an editor reads as something other than text.
CORE_SCHEMA = {
    "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
    "null": None, "Null": None, "NULL": None, "~": None, "": None,
    "0": 0, "-17": -17, "+5": 5, "010": 10, "0o17": 15, "0x1F": 31, "0x1f": 31,
    "1.5": 1.5, "-0.5": -0.5, ".5": 0.5, "1.": 1.0, "1e3": 1000.0, "2.5E-1": 0.25, ".inf": math.inf, "-.Inf": -math.inf,
}
TEXT_IN_YAML_1_2 = ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF", "tRue", "nULL", "1_000", "1:30", "0b101",
                    "2024-01-01", "2024-01-01T10:00:00Z", "=", "<<x", "0x", "0o8", "1e", "e3", ".", "+.", "1.2.3", ".NaNa"]


def test_plain_scalars_are_read_as_yaml_1_2_reads_them():
    for text, expected in CORE_SCHEMA.items():
        got = load_text(f"k: {text}\n", "v").data["k"]
        assert got == expected and type(got) is type(expected), (text, got)
    assert math.isnan(load_text("k: .NaN\n", "v").data["k"])
    for text in TEXT_IN_YAML_1_2:
        assert load_text(f"k: {text}\n", "v").data["k"] == text, text


# Characters that patterns treat differently across regex dialects or that look like allowed ones.
_ALPHABET = st.sampled_from([*"abcdefghijklmnopqrstuvwxyz", *"ABCXYZ", *"0123456789", *" _.:/=+@-!%[]\n\t",
                             "é", "\u212a", "\u0131", "\u0660"])
_STRING_SPOTS = {
    "environment name": lambda d, s: {**d, "environments": {s: {"instance_type": "t3.micro", "network_slot": 7}}},
    "tag key": lambda d, s: {**d, "tags": {s: "x"}},
    "tag value": lambda d, s: {**d, "tags": {"team": s}},
    "project_name": lambda d, s: {**d, "project_name": s},
    "instance_type": lambda d, s: {**d, "environments": {"staging": {"instance_type": s}}},
    "alert_email": lambda d, s: {**d, "monitoring": {"alert_email": s}},
    "engine_version": lambda d, s: {**d, "database": {"engine_version": s}},
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spot=st.sampled_from(sorted(_STRING_SPOTS)), text=st.lists(_ALPHABET, max_size=24).map("".join))
def test_schema_and_validator_agree_on_generated_strings(spot, text):
    """Random text where a pattern decides: the schema's regexes (as editors run them) and pydantic's agree."""
    base = {"project_name": "shop", "environments": {"staging": {"instance_type": "t3.micro"}}}
    data = _STRING_SPOTS[spot](base, text)
    schema_errors, problems = judge("customer", "variables.yml", dump(data))
    why, _ = disagreement(schema_errors, problems)
    assert why is None, f"{spot} {text!r}: {why}"
