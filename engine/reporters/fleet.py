"""Fleet fan-out for a terminal: one progress line per finished stack, and the summary table."""

from __future__ import annotations

import sys
from typing import TextIO

from engine.fanout import CustomerRun, FleetResult
from engine.untrusted import escape_inline as esc


class FleetProgress:
    """``progress(done, run)`` for ``fanout.run_fleet``: a line per stack as each customer finishes (stderr)."""

    def __init__(self, out: TextIO = sys.stderr, enabled: bool = True, total: int = 0):
        self.out, self.enabled, self.total = out, enabled, total

    def __call__(self, done: int, run: CustomerRun) -> None:
        if not self.enabled:
            return
        if run.result:
            for s in run.stacks:
                c = s["changes"]
                self.out.write(f"[{done}/{self.total}] {run.customer}/{esc(s['environment']):<12} {s['status']:<9} "
                               f"+{c['create']} ~{c['update']} ±{c['replace']} -{c['delete']}  {s['duration_s']:.1f}s"
                               + (f"  {esc(s['error'].splitlines()[0][:80])}" if s.get("error") else "") + "\n")
        else:
            self.out.write(f"[{done}/{self.total}] {run.customer:<25} error     {esc(run.error or '')}\n")
        self.out.flush()


def render_table(fleet: FleetResult) -> str:
    lines = [f"{'STACK':<34} {'STATUS':<10} {'CREATE':>6} {'UPDATE':>6} {'REPLACE':>7} {'DELETE':>6} {'TIME':>7}"]
    for run in fleet.runs:
        if run.result is None:
            lines.append(f"{run.customer:<34} {'error':<10} {esc(run.error or '')}")
        for s in run.stacks:
            c = s["changes"]
            lines.append(f"{s['customer'] + '/' + esc(s['environment']):<34} {s['status']:<10} {c['create']:>6} {c['update']:>6} "
                         f"{c['replace']:>7} {c['delete']:>6} {s['duration_s']:>6.1f}s")
    summary = fleet.to_dict()["summary"]
    lines.append(f"\n{fleet.operation}: {summary['stacks']} stacks of {summary['customers']} customers, {fleet.parallel} at a time, "
                 f"{fleet.duration_s:.1f}s — {summary['succeeded']} succeeded, {summary['failed']} failed, {summary['skipped']} skipped")
    return "\n".join(lines)
