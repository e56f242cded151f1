"""``engine history`` for a terminal."""

from __future__ import annotations

from engine.untrusted import escape_inline as esc


def render_table(rows: list[dict]) -> str:
    lines = [f"{'TIME (UTC)':<20} {'CUSTOMER/ENV':<28} {'TOOL':<10} {'OPERATION':<10} {'STATUS':<13} {'CHANGES':<16} {'DURATION':>9}  ACTOR"]
    for r in rows:
        c = r["changes"]
        changes = f"+{c['create']} ~{c['update']} -{c['delete']}" + (f" ±{c['replace']}" if c["replace"] else "")
        when = r["started_at"][:19].replace("T", " ")
        lines.append(f"{when:<20} {r['customer'] + '/' + esc(r['environment']):<28} {r['tool']:<10} {r['operation']:<10} {r['status']:<13} "
                     f"{changes:<16} {r['duration_s']:>8.1f}s  {esc(r['actor'])}")
        if r.get("error"):
            lines.append(f"{'':<20} error: {esc(r['error'])}")
    return "\n".join(lines)
