"""From a loaded document to a validated model, or to problems a person can act on: file, line, key, reason.

The one converter from pydantic's errors (``validation_problems``), used for customer files,
tenant records, event payloads and custom properties alike.  The models are in ``engine/config.py``.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from engine import clouds
from engine.config import CustomerConfig, TenantRecord, _did_you_mean
from engine.documents import Document, format_key_path
from engine.errors import DOCUMENT, ConfigError, Problem



def validate_document(doc: Document, model: type[BaseModel]) -> Any:
    """Validate a loaded document against ``model``.

    Raises ``ConfigError`` listing every problem with file, line, key path and reason.
    """
    if not isinstance(doc.data, dict):
        kind = type(doc.data).__name__ if doc.data is not None else "nothing"
        raise ConfigError([Problem(doc.name, doc.line_of(()), DOCUMENT, f"expected a mapping of keys at the top level, found {kind}")])
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(_problems(doc, model, exc)) from None


def validate_customer_file(doc: Document, target: str | None = None) -> CustomerConfig:
    """Validate a customer file, and when ``target`` is given, that the target can provide all of it (every size
    mappable, the database engine offered, its tags: ``engine/clouds.py``).  Raises ``ConfigError`` (file, line, key)."""
    config = validate_document(doc, CustomerConfig)
    check_on_target(config, target, doc)
    return config


def check_on_target(config: CustomerConfig, target: str | None, doc: Document) -> None:
    """Raise ``ConfigError`` naming file, line and key for what ``target`` cannot provide of ``config`` (read from ``doc``)."""
    if target is None:
        return
    found = clouds.problems(config, target)
    if found:
        raise ConfigError([Problem(doc.name, doc.line_of(path), format_key_path(path), reason) for path, reason in found])


def _problems(doc: Document, model: type[BaseModel], exc: ValidationError) -> list[Problem]:
    return validation_problems(exc, doc.name, model, doc.data, doc=doc)


def validation_problems(exc: ValidationError, name: str, model: type[BaseModel], data: Any, *, doc: Document | None = None,
                        prefix: tuple = ()) -> list[Problem]:
    """Every problem of a failed validation, for a person: where (``name``, the line when a ``doc`` is
    given, the key path under ``prefix``) and why — the one converter from pydantic's errors, used for
    customer files, tenant records, event payloads and custom properties alike."""
    problems: list[Problem] = []
    seen: set[tuple] = set()
    errors = exc.errors(include_url=False)
    # A misspelt key is both "unknown" and, for the key it meant, "missing": report the typo, with its
    # "did you mean", and not the missing key it explains.
    meant = set()
    for err in errors:
        if err["type"] == "extra_forbidden" and err["loc"]:
            parent = _clean_loc(err["loc"][:-1], data)
            match = difflib.get_close_matches(str(err["loc"][-1]), _fields_at(model, parent), n=1, cutoff=0.6)
            meant.update((parent, m) for m in match)
    for err in errors:
        loc = _clean_loc(err["loc"], data)
        if err["type"] == "missing" and loc and (loc[:-1], loc[-1]) in meant:
            continue
        key = (loc, err["type"])
        if key in seen:
            continue
        seen.add(key)
        problems.append(Problem(name, doc.line_of(loc) if doc else None, format_key_path((*prefix, *loc)) or DOCUMENT,
                                _reason(err, loc, model)))
    problems.sort(key=lambda p: (p.line or 0, p.key_path))
    return problems


def _clean_loc(loc: tuple, data: Any) -> tuple:
    """The key path the user wrote, from a pydantic error location.

    pydantic inserts validator names into locs of unions/annotated types (e.g. 'function-after[...]',
    'literal[...]', '[key]', 'str'); they are not keys the user wrote.  A part that is a key of the
    document at that point is the user's, whatever it looks like (a customer key may well contain '[').
    """
    out = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        elif isinstance(part, str) and ("[" in part or part in {"str", "int", "bool", "list", "dict", "none", "float"}):
            continue
        else:
            data = None  # a key that is not there (a required one): nothing below it is in the document either
        out.append(part)
    return tuple(out)


_TYPE_NAMES = {"string_type": "a string", "int_type": "an integer", "bool_type": "true or false", "dict_type": "a mapping", "list_type": "a list", "model_type": "a mapping", "float_type": "a number"}


def _reason(err: dict, loc: tuple, model: type[BaseModel]) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        name = str(loc[-1]) if loc else ""
        return f"unknown key{_did_you_mean(name, allowed)}; allowed keys: {', '.join(sorted(allowed))}" if allowed else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in _TYPE_NAMES:
        got = _describe(value)
        hint = ""
        if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
            hint = f' (put it in quotes: "{value}")'
        if kind == "bool_type" and isinstance(value, str) and value.lower() in _YAML11_BOOLEANS:
            hint = ": write true or false (the engine reads YAML 1.2, as editors do: yes, no, on and off are text)"
        return f"expected {_TYPE_NAMES[kind]}, got {got}{hint}"
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern")
        hint = _pattern_hint(loc) or (f"it must match the pattern {pattern}" if pattern else "the value has characters or a shape this key does not accept")
        return f"{_short(value)} is not allowed here: {hint}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{_short(value)} is not one of {expected}"
    if kind == "value_error":
        msg = str(err.get("msg", "invalid value"))
        return msg.removeprefix("Value error, ")
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return f"{_short(value)} is out of range ({err['msg'].lower()})"
    if kind in {"too_long", "too_short"} and err.get("ctx", {}).get("field_type") == "Dictionary":
        return _count_reason(kind, err["ctx"], loc, value)
    if kind in {"string_too_long", "string_too_short", "too_long", "too_short"}:
        return err["msg"].lower()
    return str(err.get("msg", "invalid value"))


# Booleans in YAML 1.1 (PyYAML's default) that YAML 1.2 reads as text; true and false in odd case are text in both.
_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n", "true", "false"}
# What the entries of a mapping are called (one, several), for "at most 16 environments are allowed".
_ENTRIES = {"environments": ("environment", "environments"), "tags": ("tag", "tags")}


def _count_reason(kind: str, ctx: dict, loc: tuple, value: Any) -> str:
    last = str(loc[-1]) if loc else ""
    one, several = _ENTRIES.get(last, ("entry", "entries"))
    if kind == "too_long":
        return f"at most {ctx['max_length']} {several} are allowed, found {len(value)}"
    if ctx["min_length"] == 1:
        return f"at least one {one} is required" + (" (for example 'staging:')" if last == "environments" else "")
    return f"at least {ctx['min_length']} {several} are required"


def _pattern_hint(loc: tuple) -> str | None:
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if len(loc) >= 2 and loc[-2] == "environments" or last == "environments":
        return "environment names are 2-20 characters: lower-case letters, digits and '-', starting with a letter"
    if last == "customer":
        return "customer ids are 2-32 characters: lower-case letters, digits and '-', starting with a letter"
    if last == "project_name":
        return "project names are 2-42 characters: lower-case letters, digits and '-', starting with a letter"
    if last == "repository":
        return "expected 'owner/name'"
    if len(loc) >= 2 and loc[-2] == "tags" or last == "tags":
        return "tag keys start with a letter; tags may use letters, digits, spaces and _ . : / = + @ -"
    if last in {"config_path", "source"}:
        return "expected a relative path of letters, digits, '_', '.', '-' and '/', without '.' or '..' segments"
    if last == "signature":
        return "expected 't=<unix time>,v1=<64 hex digits>' as .github/scripts/sign_dispatch.py makes it (docs/SETUP.md 1.7)"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({_short(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _fields_at(model: Any, loc: tuple) -> list[str]:
    """Field names of the model reached by following ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                return tp
        else:
            return tp


def validate_tenant_record(doc: Document, path: Path | str) -> TenantRecord:
    """Validate a tenant record loaded from ``path``.  Raises ``ConfigError``; the file name must match the id."""
    record = validate_document(doc, TenantRecord)
    path = path if isinstance(path, Path) else Path(path)
    if path.stem != record.customer:
        raise ConfigError([Problem(doc.name, doc.line_of(("customer",)), "customer", f"customer id {record.customer!r} does not match the file name {path.name!r}")])
    return record
