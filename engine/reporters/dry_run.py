"""``--dry-run`` for a terminal: what ran instead, and every write a real run would have made."""

from __future__ import annotations

from engine.github import PlannedWrite
from engine.untrusted import escape_inline as esc


def _short(text: object, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_write(write: PlannedWrite) -> str:
    """One line for a planned GitHub write: the request and what it would say (bodies shortened)."""
    body, path = write.body or {}, write.path
    if path.rsplit("/", 2)[-2:-1] == ["statuses"] and "/deployments/" not in path:
        what = f"status {body.get('context')} → {body.get('state')}: {_short(body.get('description', ''))}"
    elif path.endswith("/statuses"):
        what = f"deployment status {body.get('environment')} → {body.get('state')}: {_short(body.get('description', ''))}"
    elif path.endswith("/deployments"):
        what = f"deployment of {body.get('ref', '')[:12]} to {body.get('environment')}: {_short(body.get('description', ''))}"
    elif "/comments" in path:
        first = next((line for line in str(body.get("body", "")).splitlines() if line.strip() and not line.startswith("<!--")), "")
        what = f"{'comment' if write.method == 'POST' else 'comment edit'} ({len(str(body.get('body', '')))} characters): {_short(first)}"
    elif path.endswith("/properties/values"):
        what = "custom properties " + ", ".join(f"{p['property_name']}={p['value']}" for p in body.get("properties", []))
    elif "/issues" in path:
        what = f"issue {body.get('title') or ''} {('(' + body['state'] + ')') if body.get('state') else ''}".rstrip()
    else:
        what = ""
    path = path.replace("/deployments/0/", "/deployments/{new}/")  # the id of a deployment the dry run did not create
    return esc(f"{write.method} {path}" + (f"  {what}" if what else ""))


def _writes(title: str, writes: list[PlannedWrite]) -> list[str]:
    if not writes:
        return [f"{title}: none"]
    return [f"{title} ({len(writes)}):"] + [f"  {describe_write(w)}" for w in writes]


def render_event(dry_run: dict, writes: list[PlannedWrite], repository: str) -> str:
    """The dry-run part of ``engine event --dry-run``: printed after the preview's own result."""
    ran = f"{dry_run['ran']} ran instead of {dry_run['requested']}" if dry_run["ran"] != dry_run["requested"] else f"{dry_run['ran']} ran"
    lines = ["", f"DRY RUN — {ran}: nothing was applied and no GitHub write was made."]
    for refusal in dry_run["would_refuse"]:
        lines.append(f"a real run would REFUSE this event: {esc(refusal)}")
        lines.append("  (the rest shows what it would do once the event is accepted)")
    if dry_run["would_apply"]:
        lines.append("would apply:")
        for entry in dry_run["would_apply"]:
            if "summary" in entry:
                lines.append(f"  {esc(entry['stack'])}: {esc(entry['summary'])}; {esc(entry['state'])}")
            else:
                lines.append(f"  {esc(entry['stack'])}: nothing (its preview {esc(entry['preview'])}" +
                             (f": {esc(entry['error'])})" if entry.get("error") else ")"))
    lines += _writes(f"would write to GitHub ({esc(repository)})", writes)
    if dry_run["notes"]:
        lines.append("offline (--source):")
        lines += [f"  {esc(note)}" for note in dry_run["notes"]]
    return "\n".join(lines)


def render_drift(dry_run: dict, writes: list[PlannedWrite]) -> str:
    """The dry-run part of ``engine drift --dry-run``: the remediations and GitHub writes it held back."""
    lines = ["", "DRY RUN — no stack was remediated and no GitHub write was made."]
    if dry_run["remediate"]:
        if dry_run["would_remediate"]:
            lines.append(f"would remediate ({len(dry_run['would_remediate'])}):")
            for entry in dry_run["would_remediate"]:
                lines.append(f"  {esc(entry['stack'])}: `{esc(entry['command'])}` — puts back {len(entry['resources'])} resource(s)")
                for resource in entry["resources"]:
                    lines.append(f"    {esc(resource['name'])} ({esc(resource['type'])}): {esc(resource['action'])} outside the engine")
        else:
            lines.append("would remediate: nothing")
        for entry in dry_run["left_drifted"]:
            lines.append(f"  {esc(entry['stack'])} stays drifted: {esc(entry['reason'])}")
    if dry_run["report"] == "github":
        lines += _writes("would write to GitHub", writes)
    return "\n".join(lines)


def render_compliance(dry_run: dict) -> str:
    """The dry-run part of ``engine compliance --dry-run``: the audit records it did not append."""
    if not dry_run["would_append_audit"]:
        return ""
    lines = ["", f"would append to {esc(dry_run['audit_log'])} ({len(dry_run['would_append_audit'])}):"]
    for record in dry_run["would_append_audit"]:
        changes = ", ".join(f"{c['property']}: {c['from']!r} → {c['to']!r}" for c in record["changes"])
        lines.append(f"  {esc(record['repository'])}: {esc(changes)}")
    return "\n".join(lines)
