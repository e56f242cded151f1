"""From the engine's events to notification messages: pure, no I/O.

One ``Message`` per thing a person may want to hear about (``NOTIFICATION_EVENTS`` in engine/config.py).  Slack
and Teams render the same message (engine/reporters/notify.py).  Which (operation, status) pair is which event is
the table ``STACK_EVENTS``: a new status or operation (the policy gate's ``blocked``, a rollback) is one line there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from engine.results import Changes
from engine.stream import ComplianceViolation, DriftOpened, DriftResolved, Event, StackDone, StackStarted

# A finished stack (StackDone): (operation, status) -> notification event.  Operations not listed notify nothing
# (preview, refresh, outputs, list, drift checks: drift is DriftOpened/DriftResolved).
STACK_EVENTS: dict[tuple[str, str], str] = {
    ("up", "succeeded"): "deploy.succeeded",
    ("up", "failed"): "deploy.failed",
    ("remediate", "succeeded"): "deploy.succeeded",  # `engine up --refresh`: the desired state put back
    ("remediate", "failed"): "deploy.failed",
    ("destroy", "succeeded"): "deploy.succeeded",
    ("destroy", "failed"): "deploy.failed",
    ("up", "blocked"): "policy.blocked",  # the policy gate (engine/governance.py) refusing an apply
    ("preview", "blocked"): "policy.blocked",  # … or a plan
    ("rollback", "succeeded"): "rollback",
    ("rollback", "failed"): "rollback",
}
# A stack starting (StackStarted): operation -> event.
STARTED_EVENTS: dict[str, str] = {"up": "deploy.started", "remediate": "deploy.started", "destroy": "deploy.started",
                                  "rollback": "deploy.started"}

# How a message looks: good (green), warning (amber), danger (red), info (neutral).
SEVERITY: dict[str, str] = {"deploy.started": "info", "deploy.succeeded": "good", "deploy.failed": "danger",
                            "policy.blocked": "warning", "drift.opened": "warning", "drift.resolved": "good",
                            "compliance.violation": "warning", "rollback": "warning"}

_VERB = {"up": "Deploy", "remediate": "Drift repair", "destroy": "Destroy", "rollback": "Rollback"}
DETAIL_LINES = 10  # resources, findings or error lines shown; the rest is counted
DETAIL_WIDTH = 300


@dataclass(frozen=True)
class Context:
    """What the events don't carry: who runs the engine, from which run, at which commit."""

    actor: str = ""
    run_url: str | None = None
    commit: str | None = None


@dataclass(frozen=True)
class Message:
    """One notification, before it is rendered for a service.  Every text is raw: renderers escape for their format."""

    event: str  # one of NOTIFICATION_EVENTS
    customer: str
    environment: str | None
    title: str
    summary: str
    operation: str | None = None
    status: str | None = None
    tool: str | None = None
    commit: str | None = None
    changes: Changes | None = None
    link: str | None = None
    actor: str = ""
    details: tuple[str, ...] = ()
    more: int = 0  # details left out
    duration_s: float | None = None
    # The same for every attempt to deliver this message (retries), different for every message: a service or a
    # reader can tell a repeated delivery from a new message.
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def severity(self) -> str:
        return SEVERITY[self.event]

    @property
    def where(self) -> str:
        return f"{self.customer}/{self.environment}" if self.environment else self.customer


def _clip(text: str) -> str:
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 1] + "…"


def _limited(lines: list[str]) -> tuple[tuple[str, ...], int]:
    return tuple(_clip(line) for line in lines[:DETAIL_LINES]), max(0, len(lines) - DETAIL_LINES)


def _error_lines(error: str | None) -> list[str]:
    return [line for line in (error or "").replace("\r\n", "\n").split("\n") if line.strip()]


def _decision(decision: object) -> str:
    if isinstance(decision, dict):
        rule, text = decision.get("rule"), decision.get("message") or decision.get("msg") or ""
        return f"{rule}: {text}" if rule else str(text)
    return str(decision)


def _short_commit(commit: str | None) -> str:
    return f" at {commit[:12]}" if commit else ""


def message_for(event: Event, context: Context) -> Message | None:
    """The message ``event`` calls for, or None.  Pure: the same event and context give the same message (but its key)."""
    if isinstance(event, StackStarted):
        kind = STARTED_EVENTS.get(str(event.operation))
        if kind is None:
            return None
        t = event.target
        verb = _VERB.get(str(event.operation), str(event.operation))
        return Message(kind, t.customer, t.environment, f"{verb} started: {t.customer}/{t.environment}",
                       f"{verb} of {t.customer}/{t.environment} started{_short_commit(context.commit)}.",
                       operation=str(event.operation), tool=event.tool_label or t.tool, commit=context.commit, link=context.run_url,
                       actor=context.actor)
    if isinstance(event, StackDone):
        r = event.result
        kind = STACK_EVENTS.get((str(r.operation), str(r.status)))
        if kind is None:
            return None
        verb = _VERB.get(str(r.operation), str(r.operation))
        where = f"{r.customer}/{r.environment}"
        if kind == "policy.blocked":
            title, summary = f"Blocked by policy: {where}", f"{verb} of {where} was refused by the provider's policy."
        elif kind == "rollback":
            title, summary = f"Rollback {r.status}: {where}", f"Rollback of {where} {r.status}: {r.changes.describe()}."
        elif r.status == "failed":
            title, summary = f"{verb} failed: {where}", f"{verb} of {where} failed{_short_commit(context.commit)}."
        else:
            title, summary = f"{verb} succeeded: {where}", f"{verb} of {where} succeeded{_short_commit(context.commit)}: {r.changes.describe()}."
        lines = _error_lines(r.error)
        if kind == "policy.blocked":  # the policies' denials first (StackResult.policy: {"denied", "decisions": [{rule, level, message}]})
            denials = [d for d in (r.policy or {}).get("decisions", []) if d.get("level") == "deny"]
            lines = [_decision(d) for d in denials] or lines  # the denials are the reason ("blocked by policy: …" repeats them)
        details, more = _limited(lines)
        return Message(kind, r.customer, r.environment, title, summary, operation=str(r.operation), status=str(r.status), tool=r.tool,
                       commit=context.commit, changes=r.changes, link=context.run_url, actor=context.actor, details=details, more=more,
                       duration_s=r.duration_s)
    if isinstance(event, DriftOpened):
        r = event.result
        where = f"{r.customer}/{r.environment}"
        lines = []
        for change in r.resources:
            diffs = ", ".join(f"{d.get('path')}: {d.get('old')!s} → {d.get('new')!s}" for d in change.diffs[:3])
            lines.append(f"{change.action} {change.urn_name} ({change.type})" + (f": {diffs}" if diffs else ""))
        details, more = _limited(lines)
        count = len(r.resources)
        return Message("drift.opened", r.customer, r.environment, f"Drift detected: {where}",
                       f"{count} resource{'s' if count != 1 else ''} of {where} changed outside the engine.", operation="drift",
                       status="drifted", tool=r.tool, changes=r.changes, link=context.run_url, actor=context.actor, details=details, more=more)
    if isinstance(event, DriftResolved):
        r = event.result
        where = f"{r.customer}/{r.environment}"
        how = "put back by the engine (drift_auto_remediate)" if event.remediated else "back in sync"
        return Message("drift.resolved", r.customer, r.environment, f"Drift resolved: {where}", f"{where} is {how}.", operation="drift",
                       status="remediated" if event.remediated else "in-sync", tool=r.tool, link=context.run_url, actor=context.actor)
    if isinstance(event, ComplianceViolation):
        lines = []
        for f in event.findings:
            expected = f" (expected {f.get('expected')!s})" if f.get("expected") is not None else ""
            lines.append(f"{f.get('property')}: {f.get('actual')!s}{expected}: {f.get('reason')}")
        details, more = _limited(lines)
        state = "written back from the source of truth" if event.remediated else "not compliant"
        count = len(event.findings)
        return Message("compliance.violation", event.customer, None, f"Compliance: {event.repository}",
                       f"{event.repository} ({event.customer}) is {state}: {count} finding{'s' if count != 1 else ''}.",
                       operation="compliance", status="remediated" if event.remediated else "drifted", link=context.run_url,
                       actor=context.actor, details=details, more=more)
    return None
