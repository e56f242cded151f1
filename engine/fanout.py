"""Fleet fan-out: one operation over many customers, a bounded number at a time.

Each customer runs in its own ``engine`` process (its environments in order, so a
failed staging still stops its production): Pulumi's inline programs keep global state
in the Python process, and its workspace files race when shared (pulumi#6052, #8186), so a
process per customer — each stack with its own work dir — is the safe unit.  Tools are
resolved once in the parent before anything starts, so children never race on installs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.catalog import Catalog

CLI = Path(__file__).resolve().parent.parent / "cli.py"


@dataclass
class CustomerRun:
    customer: str
    exit_code: int
    result: dict | None  # the child's --json result
    error: str | None = None
    duration_s: float = 0.0

    @property
    def stacks(self) -> list[dict]:
        return list((self.result or {}).get("environments", {}).values())


@dataclass
class FleetResult:
    operation: str
    parallel: int
    runs: list[CustomerRun] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        codes = {r.exit_code for r in self.runs}
        return 0 if codes <= {0} else (2 if codes == {2} else 1)

    def to_dict(self) -> dict:
        stacks = [s for r in self.runs for s in r.stacks]
        summary = {"customers": len(self.runs), "stacks": len(stacks),
                   "succeeded": sum(1 for s in stacks if s["status"] == "succeeded"),
                   "failed": sum(1 for s in stacks if s["status"] == "failed") + sum(1 for r in self.runs if r.result is None),
                   "skipped": sum(1 for s in stacks if s["status"] == "skipped")}
        return {"operation": self.operation, "ok": self.exit_code == 0, "parallel": self.parallel,
                "duration_s": round(self.duration_s, 2), "summary": summary,
                "customers": {r.customer: (r.result or {"ok": False, "error": r.error, "exit_code": r.exit_code}) for r in self.runs}}


def changed_customers(catalog: Catalog, paths: list[str]) -> list[str]:
    """Customers affected by changed files: their tenant record, their customer file, or a
    provider program/module that their stacks use (a program change affects every customer on it)."""
    records = catalog.all_records()
    affected: set[str] = set()
    for raw in paths:
        path = raw.strip().lstrip("./")
        if not path:
            continue
        for record in records:
            source = f"{record.source}/" if record.source else None
            tool = "terraform" if "terraform" in record.properties.infrastructure_tools else "pulumi"
            if (path == f"stacks/{record.customer}.yml"
                    or (source and path.startswith(source))
                    or (tool == "pulumi" and path.startswith(f"programs/{record.target}/"))
                    or (tool == "terraform" and path.startswith("terraform/")
                        and (path.startswith("terraform/local/") or path.startswith("terraform/provider/")) == (record.target == "local"))
                    or ("ansible" in record.properties.infrastructure_tools and path.startswith("ansible/"))):
                affected.add(record.customer)
    return sorted(affected)


def run_fleet(customers: list[str], operation: str, *, parallel: int, extra_args: list[str], env: dict[str, str],
              cwd: Path, progress: Callable[[str], None] = lambda _m: None) -> FleetResult:
    """Run ``engine OPERATION CUSTOMER --json`` for every customer, ``parallel`` at a time."""
    started = time.monotonic()
    done = [0]
    lock = threading.Lock()

    def one(customer: str) -> CustomerRun:
        t0 = time.monotonic()
        cmd = [sys.executable, str(CLI), operation, customer, "--json", "--quiet", *extra_args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
        try:
            result = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            result = None
        error = None
        if result is None or "environments" not in result:
            error = (result or {}).get("message") or (proc.stderr.strip().splitlines() or ["no output"])[-1]
            result = None
        run = CustomerRun(customer, proc.returncode, result, error, time.monotonic() - t0)
        with lock:
            done[0] += 1
            if run.result:
                for s in run.stacks:
                    c = s["changes"]
                    progress(f"[{done[0]}/{len(customers)}] {customer}/{s['environment']:<12} {s['status']:<9} "
                             f"+{c['create']} ~{c['update']} ±{c['replace']} -{c['delete']}  {s['duration_s']:.1f}s"
                             + (f"  {s['error'].splitlines()[0][:80]}" if s.get("error") else ""))
            else:
                progress(f"[{done[0]}/{len(customers)}] {customer:<25} error     {error}")
        return run

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="fleet") as pool:
        runs = list(pool.map(one, customers))
    return FleetResult(operation=operation, parallel=parallel, runs=runs, duration_s=time.monotonic() - started)


def render_table(fleet: FleetResult) -> str:
    lines = [f"{'STACK':<34} {'STATUS':<10} {'CREATE':>6} {'UPDATE':>6} {'REPLACE':>7} {'DELETE':>6} {'TIME':>7}"]
    for run in fleet.runs:
        if run.result is None:
            lines.append(f"{run.customer:<34} {'error':<10} {run.error}")
        for s in run.stacks:
            c = s["changes"]
            lines.append(f"{s['customer'] + '/' + s['environment']:<34} {s['status']:<10} {c['create']:>6} {c['update']:>6} "
                         f"{c['replace']:>7} {c['delete']:>6} {s['duration_s']:>6.1f}s")
    summary = fleet.to_dict()["summary"]
    lines.append(f"\n{fleet.operation}: {summary['stacks']} stacks of {summary['customers']} customers, {fleet.parallel} at a time, "
                 f"{fleet.duration_s:.1f}s — {summary['succeeded']} succeeded, {summary['failed']} failed, {summary['skipped']} skipped")
    return "\n".join(lines)


def matrix(catalog_targets: list[tuple[str, str, str]]) -> dict:
    """A GitHub Actions job matrix: one job per customer × environment."""
    return {"include": [{"customer": c, "environment": e, "tool": t} for c, e, t in catalog_targets]}
