"""Human renderings of results for a terminal.  Pure functions of the result objects."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from engine.planning import StackTarget
from engine.results import RunResult, StackResult

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
        self.stream.write(f"{elapsed:6.1f}s  {target.fqn:<28} {message}\n")
        self.stream.flush()


def _value(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def render_stack(result: StackResult) -> list[str]:
    head = f"{result.customer}/{result.environment}  [{result.tool}] {result.operation}: {_STATUS.get(result.status, result.status)}"
    lines = [head]
    if result.status in ("failed", "skipped"):
        for line in (result.error or "unknown error").splitlines():
            lines.append(f"    {line}")
        return lines
    if result.status == "not-deployed":
        lines.append("    the stack does not exist (run `engine up` first)")
        return lines
    if result.operation in ("up", "preview", "refresh", "destroy"):
        c = result.changes
        lines.append(f"    changes: +{c.create} create  ~{c.update} update  ±{c.replace} replace  -{c.delete} delete  ={c.same} same")
        for change in result.resources[:50]:
            props = f" ({', '.join(change.properties)})" if change.properties else ""
            lines.append(f"      {change.action:<8} {change.urn_name} [{change.type}]{props}")
        if len(result.resources) > 50:
            lines.append(f"      … and {len(result.resources) - 50} more")
    if result.details:
        for key, value in result.details.items():
            lines.append(f"    {key}: {_value(value)}")
    if result.outputs:
        lines.append("    outputs:")
        width = max(len(k) for k in result.outputs)
        for key in sorted(result.outputs):
            lines.append(f"      {key:<{width}}  {_value(result.outputs[key])}")
    return lines


def render_run(result: RunResult) -> str:
    lines: list[str] = []
    for stack in result.stacks:
        lines.extend(render_stack(stack))
        lines.append("")
    failed = [s for s in result.stacks if not s.ok]
    summary = f"{result.operation} {result.customer}: {len(result.stacks) - len(failed)}/{len(result.stacks)} environments ok"
    lines.append(summary if not failed else summary + "; " + ", ".join(f"{s.environment} {s.status}" for s in failed))
    return "\n".join(lines)
