"""``engine properties schema|show``: the organization's custom property definitions, and one repository's values."""

from __future__ import annotations

import os
import re
from pathlib import Path

from githubkit.exception import RequestFailed

from engine import properties
from engine.commands import Outcome
from engine.commands.options import DRY_RUN, FILE, JSON, Verb, arg, opt
from engine.config import REPOSITORY_PATTERN
from engine.errors import InputError, UnknownCustomerError
from engine.spacelift.settings import execution
from engine.reporters.properties import render_schema, render_show
from engine.runners.terraform import explain
from engine.wiring import Wiring

DEFINITIONS = opt("--definitions", "definitions_path", type=FILE, metavar="FILE",
                  help="The property definitions (default: policy/properties.yml in the catalog).")


def _definitions(w: Wiring, path: Path | None) -> properties.Definitions:
    return properties.load(path or w.catalog_root / properties.DEFINITIONS_FILE)


def _organizations(w: Wiring, orgs: tuple[str, ...]) -> list[str]:
    """``--org`` as given; else $GITHUB_REPOSITORY_OWNER; else every owner of an onboarded repository."""
    chosen = list(orgs) or ([os.environ["GITHUB_REPOSITORY_OWNER"]] if os.environ.get("GITHUB_REPOSITORY_OWNER") else [])
    if not chosen:
        chosen = sorted({properties.org_of(r.repository) for r in w.engine().catalog.all_records()})
    if not chosen:
        raise InputError("no organization to define the properties in", hint="pass --org ORG (no customer is onboarded yet)")
    for org in chosen:
        if not properties.ORG_PATTERN.fullmatch(org):
            raise InputError(f"{org[:60]!r} is not a GitHub organization name")
    return list(dict.fromkeys(chosen))


def schema(w: Wiring, orgs: tuple[str, ...], dry_run: bool, definitions_path: Path | None) -> Outcome:
    """Create or update the organization's property definitions; a second run writes nothing."""
    definitions = _definitions(w, definitions_path)
    api = w.github(dry_run=dry_run)
    plans, errors = [], []
    for org in _organizations(w, orgs):
        try:
            plan = properties.plan_schema(org, definitions, api.property_definitions(org))
            if plan.changes:
                api.set_property_definitions(org, [c.body for c in plan.changes])
        except RequestFailed as exc:  # one organization GitHub refuses (a user account, no permission) must not stop the others
            errors.append({"org": org, "error": f"GitHub answered {exc.response.status_code} on {exc.request.method} {exc.request.url.path}"})
            continue
        plans.append(plan)
    data = {"dry_run": dry_run, "organizations": [p.to_dict() for p in plans], "errors": errors,
            "writes": 0 if dry_run else sum(1 for p in plans if p.changes),
            "would_write": [planned.describe() for planned in api.planned] if dry_run else []}
    return Outcome(data, lambda: render_schema(plans, errors, dry_run), 1 if errors else 0,
                   [f"{e['org']}: {e['error']}" for e in errors])


def show(w: Wiring, repository: str) -> Outcome:
    """A repository's custom property values and what the engine makes of them."""
    if not re.fullmatch(REPOSITORY_PATTERN, repository):
        raise InputError(f"{repository[:80]!r} is not an OWNER/NAME repository")
    values = w.github().custom_properties(repository)
    record = None
    try:
        record = next(r for r in w.engine().catalog.all_records() if r.repository.lower() == repository.lower())
    except (StopIteration, UnknownCustomerError):
        pass
    effective, sources = properties.effective(record, values)
    # the executor by the rule the engine runs the tenant by (infrastructure_tools and spacelift.yml)
    meaning = properties.interpret(effective, terraform=explain,
                                   spacelift=execution(w.spacelift_settings(), record.customer if record else None, effective))
    data = {"repository": repository, "customer": record.customer if record else None, "values": values,
            "effective": effective.model_dump(mode="json"), "sources": sources, "engine": meaning,
            "overridable": list(record.property_overrides) if record else list(properties.ENGINE_PROPERTIES)}
    return Outcome(data, lambda: render_show(data))


VERBS = (
    Verb("schema", schema, (opt("--org", "orgs", multiple=True, metavar="ORG",
                                help="Organization to define the properties in (repeatable). Default: $GITHUB_REPOSITORY_OWNER, "
                                     "else every owner of an onboarded repository."),
                            DEFINITIONS, DRY_RUN, JSON),
         "Create or update the organization's custom property definitions from policy/properties.yml (idempotent).", group="properties"),
    Verb("show", show, (arg("repository"), JSON),
         "A repository's custom property values, where each effective value comes from, and what the engine runs.", group="properties"),
)
