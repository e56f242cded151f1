"""``engine drift`` for a terminal and for a job summary (Markdown)."""

from __future__ import annotations

from engine.drift import EXECUTED_ELSEWHERE, STATES, DriftReport
from engine.untrusted import escape_inline as esc

_ICONS = {"in-sync": "✅", "drifted": "⚠️", "remediated": "🔧", "not-deployed": "➖", "spacelift": "↗️", "error": "❌"}


def render_console(report: DriftReport) -> str:
    lines = [f"{'STACK':<32} {'TOOL':<10} {'STATE':<13} DETAILS"]
    for s in report.stacks:
        r = s.result
        detail = ""
        if s.state in ("drifted", "remediated"):
            detail = f"{len(r.resources)} resource(s): " + ", ".join(f"{esc(c.urn_name)} ({c.action})" for c in r.resources[:4])
        elif s.executed_by is not None:
            detail = EXECUTED_ELSEWHERE[s.executed_by]
        elif s.state == "error":
            detail = esc(((s.after_remediation or r).error or "").splitlines()[0][:100]) if (s.after_remediation or r).error else ""
        lines.append(f"{r.customer + '/' + esc(r.environment):<32} {r.tool:<10} {s.state:<13} {detail}")
        if s.state in ("drifted", "remediated"):
            for c in r.resources[:20]:
                for d in c.diffs[:10]:
                    lines.append(f"{'':<34}{esc(c.urn_name)}.{esc(d['path'])}: {esc(repr(d['old']))} → {esc(repr(d['new']))}")
    summary = ", ".join(f"{report.count(k)} {k}" for k in STATES if report.count(k))
    lines.append(f"\n{len(report.stacks)} stacks (shard {report.shard}, {report.parallel} at a time, {report.duration_s:.1f}s): {summary or 'nothing to check'}")
    return "\n".join(lines)


def _code(text: str) -> str:
    """Text as an inline code span in a table cell: one line, no pipe or backtick to break out with."""
    return "`" + " ".join(esc(str(text)).split()).replace("|", "\\|").replace("`", "'") + "`"


def render_markdown(report: DriftReport) -> str:
    lines = ["| Stack | Tool | State | Drifted resources |", "| --- | --- | --- | --- |"]
    for s in report.stacks:
        r = s.result
        names = ", ".join(f"{_code(c.urn_name)} ({c.action})" for c in r.resources[:10]) if s.state in ("drifted", "remediated") else ""
        lines.append(f"| {_code(r.customer + '/' + r.environment)} | {r.tool} | {_ICONS.get(s.state, '')} {s.state} | {names} |")
    return "\n".join(lines)
