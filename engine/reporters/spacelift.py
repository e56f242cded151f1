"""Text renderings of ``engine spacelift sync`` and ``engine spacelift compliance`` (JSON is their ``to_dict``)."""

from __future__ import annotations

from typing import Any

from engine.untrusted import escape_inline

_MARK = {"create": "+", "update": "~", "delete": "-", "orphan": "?", "conflict": "!", "in-sync": "="}


def _value(value: Any) -> str:
    return escape_inline(str(value if value is not None else "—"))[:120]


def render_sync(data: dict[str, Any]) -> str:
    lines = []
    verb = "would " if data["dry_run"] else ""
    for stack in data["stacks"]:
        head = f"{_MARK.get(stack['action'], ' ')} {stack['stack']}: {stack['action']}"
        if stack["action"] == "orphan":
            head += " (no tenant; engine spacelift sync --prune deletes it)"
        lines.append(head)
        for name, change in stack["changes"].items():
            lines.append(f"    {name}: {_value(change['from'])} → {_value(change['to'])}")
        if stack["variables_set"]:
            lines.append(f"    {verb}set variables: {', '.join(stack['variables_set'])}")
        if stack["variables_removed"]:
            lines.append(f"    {verb}remove variables: {', '.join(stack['variables_removed'])}")
        if stack["error"]:
            lines.append(f"    error: {escape_inline(stack['error'])}")
    if data["dry_run"]:
        lines.append(f"dry run: {len(data['would_mutate'])} mutation(s) listed, none made")
        for mutation in data["would_mutate"]:
            lines.append(f"  {mutation['operation']} {mutation['stack']}")
    else:
        counts = {a: sum(1 for s in data["stacks"] if s["action"] == a) for a in ("create", "update", "delete", "in-sync", "orphan")}
        lines.append(f"{data['mutations']} mutation(s): " + ", ".join(f"{n} {a}" for a, n in counts.items() if n))
    lines += [f"note: {escape_inline(n)}" for n in data["notes"]]
    lines += [f"warning: {escape_inline(w)}" for w in data["warnings"]]
    return "\n".join(lines)


def render_compliance(data: dict[str, Any]) -> str:
    lines = []
    for title, key in (("tenants whose stack is missing", "missing"), ("stacks that match no tenant", "unmatched"),
                       ("stacks changed in Spacelift (engine spacelift sync puts them back)", "drifted"),
                       ("stacks with a tenant's ID that are not the engine's", "conflicts")):
        if data[key]:
            lines.append(f"{title}:")
            lines += [f"  {escape_inline(item['stack'])}" + (f": {', '.join(item['fields'])}" if item.get("fields") else "")
                      for item in data[key]]
    lines.append("compliant: every Spacelift-executed tenant has its stacks, and every engine stack has a tenant" if data["compliant"]
                 else f"{data['findings']} finding(s)")
    return "\n".join(lines)
