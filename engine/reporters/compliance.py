"""``engine compliance`` for a terminal."""

from __future__ import annotations

from engine.compliance import ComplianceReport
from engine.untrusted import escape_inline as esc

def render_console(report: ComplianceReport) -> str:
    lines = []
    for r in report.repos:
        lines.append(f"{esc(r.repository):<40} {r.customer:<16} {r.state}" + (f": {esc(r.error)}" if r.error else ""))
        for f in r.findings:
            want = f" (expected {f.expected!r})" if f.expected is not None else ""
            lines.append(f"    {esc(f.property)}: {esc(repr(f.actual))} — {esc(f.reason)}{esc(want)}")
    if report.planned_writes:
        lines.append("\ndry run — these writes were NOT made:" if report.dry_run else "\nwrites made:")
        lines += [f"    {esc(str(w))}" for w in report.planned_writes]
    counts = {s: sum(1 for r in report.repos if r.state == s) for s in ("compliant", "drifted", "remediated", "error")}
    lines.append("\n" + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" ({len(report.repos)} repositories)")
    return "\n".join(lines)
