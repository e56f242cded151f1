"""Human renderings for a terminal: live progress (a subscriber of the engine's event stream)
and the results of a run.  Renderings are pure functions of the result objects.

Names, outputs, resource names and error text come from customer files and from the
tools' output, so every piece of it goes through ``escape_inline``: a terminal escape
sequence or a ``::error::`` line in an output value is shown, never obeyed.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from engine.results import Operation, RunResult, StackResult
from engine.stream import Event, Notice, ResourceStep, StackDone, StackStarted
from engine.untrusted import escape_inline

_STATUS = {"succeeded": "ok", "failed": "FAILED", "skipped": "SKIPPED", "not-deployed": "not deployed", "blocked": "BLOCKED by policy"}


class ConsoleProgress:
    """Prints one line per resource step and per stack start/finish, with elapsed time (stderr)."""

    def __init__(self, out: TextIO = sys.stderr, enabled: bool = True):
        self.out = out
        self.enabled = enabled
        self.started = time.monotonic()

    def _line(self, fqn: str, message: str) -> None:
        elapsed = time.monotonic() - self.started
        self.out.write(f"{elapsed:6.1f}s  {escape_inline(fqn):<28} {escape_inline(message)}\n")
        self.out.flush()

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        if isinstance(event, StackStarted):
            self._line(event.target.fqn, f"{event.operation} started" + (f" ({event.tool_label})" if event.tool_label else ""))
        elif isinstance(event, ResourceStep):
            if event.action == "task":
                self._line(event.target.fqn, f"ansible   {event.name} ({event.status})")
            elif event.status:
                self._line(event.target.fqn, f"{event.action:<8} {event.name} {'done' if event.status == 'done' else 'FAILED'}")
            else:
                props = f" [{', '.join(event.properties)}]" if event.properties else ""
                self._line(event.target.fqn, f"{event.action:<8} {event.name} ({event.type}){props}")
        elif isinstance(event, Notice):
            self._line(event.target.fqn, event.text)
        elif isinstance(event, StackDone) and event.target is not None:
            r = event.result
            counted = r.ok and Operation(r.operation).counts_changes
            self._line(event.target.fqn, f"{r.operation} {r.status}" + (f": {r.changes.describe()}" if counted else ""))


def _value(value: object) -> str:
    if isinstance(value, str):
        return escape_inline(value)
    return escape_inline(json.dumps(value, sort_keys=True))


def render_stack(result: StackResult) -> list[str]:
    """The lines for one stack; every line is safe to print (see the module docstring)."""
    e = escape_inline
    head = f"{e(result.customer)}/{e(result.environment)}  [{e(result.tool)}] {e(result.operation)}: {e(_STATUS.get(result.status, result.status))}"
    lines = [head]
    if result.status == "blocked":
        lines.extend(_governance(result))
        lines.append("    nothing was applied")
        return lines
    if result.status in ("failed", "skipped"):
        # lines end at "\n" (or "\r\n") only: any other break (a lone CR, U+2028) is shown as an escape
        for line in (result.error or "unknown error").replace("\r\n", "\n").split("\n"):
            lines.append(f"    {e(line)}")
        lines.extend(_after_deploy(result))
        return lines
    if result.status == "not-deployed":
        lines.append("    the stack does not exist (run `engine up` first)")
        return lines
    if result.operation in ("up", "preview", "refresh", "destroy", "rollback", "restore"):
        c = result.changes
        lines.append(f"    changes: +{c.create} create  ~{c.update} update  ±{c.replace} replace  -{c.delete} delete  ={c.same} same")
        for change in result.resources[:50]:
            props = f" ({', '.join(e(p) for p in change.properties)})" if change.properties else ""
            lines.append(f"      {e(change.action):<8} {e(change.urn_name)} [{e(change.type)}]{props}")
        if len(result.resources) > 50:
            lines.append(f"      … and {len(result.resources) - 50} more")
    lines.extend(_governance(result))
    lines.extend(_after_deploy(result))
    if result.details:
        for key, value in result.details.items():
            if key not in ("tests", "rollback_of", "rolled_back"):
                lines.append(f"    {e(key)}: {_value(value)}")
    if result.outputs:
        lines.append("    outputs:")
        width = max(len(e(k)) for k in result.outputs)
        for key in sorted(result.outputs):
            lines.append(f"      {e(key):<{width}}  {_value(result.outputs[key])}")
    return lines


def _after_deploy(result: StackResult) -> list[str]:
    """Post-deploy tests, the snapshot a rollback applied, the automatic rollback after a failed test."""
    e, lines = escape_inline, []
    tests = result.tests
    if tests is not None:
        counts = ", ".join(f"{n} {what}" for n, what in ((tests.passed, "passed"), (tests.failed, "failed"), (tests.skipped, "skipped")) if n)
        lines.append(f"    post-deploy tests ({e(tests.directory)}): {e(tests.status)}" + (f" — {counts}" if counts else ""))
        for failure in tests.failures:
            lines.append(f"      FAILED {e(failure.name)}")
            lines.extend(f"        {e(line)}" for line in failure.message.splitlines()[:6])
    if result.rollback is not None:
        info = result.rollback
        lines.append(f"    rolled back to run {info.source_run}" + (f" (commit {e(info.source_sha[:7])})" if info.source_sha else "")
                     + f", {e(info.revision or '?')}" + (f"; because: {e(info.reason.splitlines()[0])}" if info.reason else ""))
    if result.rolled_back is not None:
        rolled = result.rolled_back
        if rolled.get("status") == "succeeded":
            lines.append(f"    rolled back automatically to run {rolled.get('source_run')} (rollback run {rolled.get('run_id')})")
        else:
            lines.append(f"    rollback {e(str(rolled.get('status')))}: {e((rolled.get('error') or '').splitlines()[0] if rolled.get('error') else '')}")
    return lines


def _governance(result: StackResult) -> list[str]:
    """The policy decisions and the monthly cost of a judged plan (engine/governance.py)."""
    e, lines = escape_inline, []
    for decision in (result.policy or {}).get("decisions", []):
        lines.append(f"    policy {e(decision['level'])} [{e(decision['rule'])}]: {e(decision['message'])}")
    if result.policy is not None and not result.policy.get("decisions"):
        lines.append("    policy: passed")
    cost = result.cost
    if cost and "monthly_after" in cost:
        delta = round(cost["monthly_after"] - (cost.get("monthly_before") or 0.0), 2)
        unpriced = len(cost.get("not_priced") or [])
        lines.append(f"    cost: {cost['monthly_after']:,.2f} {e(cost.get('currency', 'USD'))}/month ({delta:+,.2f})"
                     + (f", {unpriced} resource(s) not priced" if unpriced else ""))
    return lines


def render_run(result: RunResult) -> str:
    lines: list[str] = []
    for stack in result.stacks:
        lines.extend(render_stack(stack))
        lines.append("")
    failed = [s for s in result.stacks if not s.ok]
    summary = f"{escape_inline(result.operation)} {escape_inline(result.customer)}: {len(result.stacks) - len(failed)}/{len(result.stacks)} environments ok"
    lines.append(summary if not failed else summary + "; " + ", ".join(f"{escape_inline(s.environment)} {escape_inline(s.status)}" for s in failed))
    return "\n".join(lines)


def render_customers(rows: list[dict]) -> str:
    """``engine list``: one line per onboarded customer."""
    if not rows:
        return "no customers onboarded (add stacks/<customer>.yml)"
    return "\n".join(f"{r['customer']:<20} {escape_inline(r['repository']):<40} target={r['target']:<6} tools={','.join(r['tools'])}" for r in rows)


def render_stacks(result: RunResult) -> str:
    """``engine list CUSTOMER``: one line per environment's stack."""
    lines = []
    for s in result.stacks:
        if s.status == "not-deployed":
            lines.append(f"{s.customer}/{escape_inline(s.environment):<14} not deployed")
        elif s.status == "failed":
            lines.append(f"{s.customer}/{escape_inline(s.environment):<14} error: {escape_inline(s.error or '')}")
        else:
            info = s.info
            lines.append(f"{s.customer}/{escape_inline(s.environment):<14} {escape_inline(s.stack):<28} resources={info.resource_count if info else None}  "
                         f"last update={info.last_update if info else None} ({info.last_result if info else None})")
    return "\n".join(lines)
