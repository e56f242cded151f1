"""``engine validate PATH``: check a customer file or tenant record; ``engine schema``: their JSON Schemas."""

from __future__ import annotations

import click
from pathlib import Path

from engine.commands import Outcome
from engine.config import CustomerConfig, TenantRecord, json_schema
from engine.clouds import TARGETS
from engine.validation import validate_customer_file, validate_tenant_record
from engine.documents import Document, load_file
from engine.commands.options import FILE, JSON, Verb, arg, opt


def run(path: Path, kind: str = "auto", target: str | None = None) -> Outcome:
    """Exit 0 when valid; a ``ConfigError`` (exit 2) naming file, line and key otherwise.  With ``target``, a customer
    file must also be deployable there (every size mappable: docs/CLOUDS.md)."""
    kind, obj = check(load_file(path), path, kind, target)
    extra = f" ({len(obj.environments)} environments: {', '.join(obj.environments)})" if kind == "customer" else f" (customer {obj.customer})"
    extra += f", deployable on {target}" if target and kind == "customer" else ""
    return Outcome({"ok": True, "file": str(path), "kind": kind, "target": target, "value": obj.model_dump(mode="json")},
                   f"{path}: valid {kind} file{extra}")


def check(doc: Document, path: Path, kind: str = "auto", target: str | None = None) -> tuple[str, CustomerConfig | TenantRecord]:
    """The kind (``auto`` decided by content) and the validated model of ``doc``, read from ``path``.

    Raises ``ConfigError``.  Everything `engine validate` checks is here (tests/unit/test_schema_parity.py
    holds the exported schema against it).
    """
    if kind == "auto":
        kind = "tenant" if isinstance(doc.data, dict) and "customer" in doc.data and "repository" in doc.data else "customer"
    return kind, validate_customer_file(doc, target) if kind == "customer" else validate_tenant_record(doc, path)


def schema(kind: str) -> Outcome:
    return Outcome(json_schema(kind), json_only=True)


VERBS = (
    Verb("validate", run, (arg("path", type=FILE), JSON,
                           opt("--kind", type=click.Choice(["auto", "customer", "tenant"]), default="auto", show_default=True,
                               help="customer = infra/variables.yml, tenant = stacks/<customer>.yml; auto decides by content."),
                           opt("--target", type=click.Choice(TARGETS), default=None,
                               help="A customer file must also be deployable on this target: every size mappable (docs/CLOUDS.md).")),
         "Check a customer file or tenant record; exit 2 with file, line and key on problems.", wired=False),
    Verb("schema", schema, (arg("kind", type=click.Choice(["customer", "tenant"]), default="customer"),),
         "Print the JSON Schema of a customer file or tenant record (for editors).", wired=False),
)
