"""Console text for ``engine properties``, ``engine onboard`` and ``engine offboard``."""

from __future__ import annotations

import json
from typing import Any

from engine.untrusted import escape_inline


def _value(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, list):
        return "[" + ", ".join(escape_inline(str(v)) for v in value) + "]"
    return escape_inline(str(value))


def render_schema(plans: list, errors: list[dict], dry_run: bool) -> str:
    lines = []
    verb = {"create": "would create" if dry_run else "created", "update": "would update" if dry_run else "updated"}
    for plan in plans:
        lines.append(f"{plan.org}: " + (f"{len(plan.changes)} to write" if dry_run else f"{len(plan.changes)} written")
                     + f", {len(plan.unchanged)} unchanged" + (f", {len(plan.unmanaged)} not ours (left alone)" if plan.unmanaged else ""))
        for change in plan.changes:
            body = change.body
            lines.append(f"  {verb[change.action]} {change.name} ({body['value_type']}"
                         + (f", allowed {_value(body['allowed_values'])}" if body["allowed_values"] else "")
                         + (f", default {_value(body['default_value'])}" if body["default_value"] not in (None, []) else "")
                         + (", required" if body["required"] else "")
                         + f", editable by {body['values_editable_by']})"
                         + (f" — fields: {', '.join(change.fields)}" if change.action == "update" else ""))
        for name in plan.unchanged:
            lines.append(f"  = {name}")
        for name in plan.unmanaged:
            lines.append(f"  ? {escape_inline(name)} (defined in the organization, not in the definitions file)")
    for error in errors:
        lines.append(f"{error['org']}: ERROR {error['error']}")
    return "\n".join(lines)


def render_show(data: dict) -> str:
    lines = [f"{data['repository']}" + (f" (customer {data['customer']})" if data["customer"] else " (not onboarded)")]
    lines.append("custom properties on GitHub:")
    for name, value in sorted(data["values"].items()):
        lines.append(f"  {escape_inline(name)}: {_value(value)}")
    if not data["values"]:
        lines.append("  (none set)")
    lines.append("the engine runs with:")
    for name, value in data["effective"].items():
        note = data["sources"][name]
        if note != "repository" and name in data["values"] and name not in data["overridable"]:
            note += "; the repository's value is ignored (not in the record's property_overrides)"
        lines.append(f"  {name}: {_value(value)}  ({note})")
    meaning = data["engine"]
    lines.append(f"infrastructure: {meaning['infrastructure']}" + (f" + {meaning['configuration']}" if meaning["configuration"] else ""))
    if meaning["infrastructure"] == "terraform":
        lines.append(f"terraform: {meaning.get('terraform_binary') or meaning['terraform_version'] or 'the default OpenTofu'}")
    lines.append(f"executor: {meaning['executor']}" + (f" ({meaning['executor_reason']})" if meaning.get("executor_reason") else ""))
    lines += [f"note: {note}" for note in meaning.get("notes", [])]
    return "\n".join(lines)


def render_onboard(data: dict) -> str:
    plan = data["plan"]
    lines = [("would onboard " if data["dry_run"] else "onboarded ") + f"{plan['customer']} ({plan['repository']}): "
             f"network_index {plan['network_index']} = {plan['network']}, record {plan['record_path']}"]
    if data["dry_run"]:
        lines.append("record:")
        lines += ["  " + line for line in data["record_text"].splitlines()]
        lines.append(f"repository properties: {json.dumps(plan['properties'], sort_keys=True)}")
    for step in data["checks"]:
        mark = {True: "ok ", False: "NO ", None: "?? "}[step["done"]]
        lines.append(f"  {mark} {step['what']}" + (f": {step['detail']}" if step["detail"] else ""))
    if data["left_to_do"]:
        lines.append("left for a person to do:")
        lines += [f"  {n}. {item}" for n, item in enumerate(data["left_to_do"], start=1)]
    return "\n".join(lines)


def render_offboard(data: dict) -> str:
    lines = [("would offboard " if data["dry_run"] else "offboarded " if data["removed"] else "NOT offboarded ") + data["customer"]]
    for stack in data["stacks"]:
        lines.append(f"  {stack['environment']}: {stack['status']}")
    if data["record_removed"]:
        lines.append(f"  removed {data['record_path']}")
    elif data["dry_run"]:
        lines.append(f"  would remove {data['record_path']}")
    if data["left"]:
        lines.append("left behind (decide and remove by hand):")
        lines += [f"  - {item}" for item in data["left"]]
    return "\n".join(lines)
