"""Human renderings of results for a terminal.  Pure functions of the result objects.

Names, outputs, resource names and error text come from customer files and from the
tools' output, so every piece of it goes through ``escape_inline``: a terminal escape
sequence or a ``::error::`` line in an output value is shown, never obeyed.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from engine.planning import StackTarget
from engine.results import RunResult, StackResult
from engine.untrusted import escape_inline

_STATUS = {"succeeded": "ok", "failed": "FAILED", "skipped": "SKIPPED", "not-deployed": "not deployed"}


class LiveProgress:
    """Prints one line per resource step and per stack start/finish, with elapsed time."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool = True):
        self.stream = stream
        self.enabled = enabled
        self.started = time.monotonic()

    def __call__(self, target: StackTarget, message: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        self.stream.write(f"{elapsed:6.1f}s  {escape_inline(target.fqn):<28} {escape_inline(message)}\n")
        self.stream.flush()


def _value(value: object) -> str:
    if isinstance(value, str):
        return escape_inline(value)
    return escape_inline(json.dumps(value, sort_keys=True))


def render_stack(result: StackResult) -> list[str]:
    """The lines for one stack; every line is safe to print (see the module docstring)."""
    e = escape_inline
    head = f"{e(result.customer)}/{e(result.environment)}  [{e(result.tool)}] {e(result.operation)}: {e(_STATUS.get(result.status, result.status))}"
    lines = [head]
    if result.status in ("failed", "skipped"):
        # lines end at "\n" (or "\r\n") only: any other break (a lone CR, U+2028) is shown as an escape
        for line in (result.error or "unknown error").replace("\r\n", "\n").split("\n"):
            lines.append(f"    {e(line)}")
        return lines
    if result.status == "not-deployed":
        lines.append("    the stack does not exist (run `engine up` first)")
        return lines
    if result.operation in ("up", "preview", "refresh", "destroy"):
        c = result.changes
        lines.append(f"    changes: +{c.create} create  ~{c.update} update  ±{c.replace} replace  -{c.delete} delete  ={c.same} same")
        for change in result.resources[:50]:
            props = f" ({', '.join(e(p) for p in change.properties)})" if change.properties else ""
            lines.append(f"      {e(change.action):<8} {e(change.urn_name)} [{e(change.type)}]{props}")
        if len(result.resources) > 50:
            lines.append(f"      … and {len(result.resources) - 50} more")
    if result.details:
        for key, value in result.details.items():
            lines.append(f"    {e(key)}: {_value(value)}")
    if result.outputs:
        lines.append("    outputs:")
        width = max(len(e(k)) for k in result.outputs)
        for key in sorted(result.outputs):
            lines.append(f"      {e(key):<{width}}  {_value(result.outputs[key])}")
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
