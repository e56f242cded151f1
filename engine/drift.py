"""Infrastructure drift across the fleet: which stacks no longer match what was deployed.

Every stack is checked without writing state (Pulumi: ``refresh --preview-only``;
Terraform: ``plan -refresh-only``, never applied), a bounded number at a time.  Each
stack is ``in-sync``, ``drifted`` (which resources, which properties, old → new, secrets
masked), ``not-deployed`` or ``error``.  Exit code: 0 in sync, 3 drift found, 1 errors.
``--remediate`` re-applies the desired state for tenants that opted in, and checks again.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from engine.errors import EngineError, InputError
from engine.operations import Engine
from engine.planning import StackTarget
from engine.results import StackResult

EXIT_DRIFT = 3


@dataclass
class StackDrift:
    target: StackTarget | None  # None: the customer's configuration could not even be loaded
    result: StackResult
    remediation: StackResult | None = None
    after_remediation: StackResult | None = None

    @property
    def state(self) -> str:
        final = self.after_remediation or self.result
        if final.status == "not-deployed":
            return "not-deployed"
        if final.status != "succeeded":
            return "error"
        drifted = final.changes.update + final.changes.delete > 0
        if self.after_remediation is not None and not drifted:
            return "remediated"
        return "drifted" if drifted else "in-sync"

    def to_dict(self) -> dict:
        r = self.result
        data = {"customer": r.customer, "environment": r.environment, "stack": r.stack, "tool": r.tool, "state": self.state,
                "resources": [{"name": c.urn_name, "type": c.type, "action": c.action, "diffs": c.diffs} for c in r.resources],
                "error": (self.after_remediation or r).error, "duration_s": round(r.duration_s, 2)}
        if self.remediation is not None:
            data["remediation"] = {"status": self.remediation.status, "changes": self.remediation.changes.__dict__,
                                   "error": self.remediation.error, "at": self.remediation.details.get("at")}
        return data


@dataclass
class DriftReport:
    stacks: list[StackDrift] = field(default_factory=list)
    shard: str = "1/1"
    parallel: int = 1
    duration_s: float = 0.0

    def count(self, state: str) -> int:
        return sum(1 for s in self.stacks if s.state == state)

    @property
    def exit_code(self) -> int:
        if self.count("error"):
            return 1
        return EXIT_DRIFT if self.count("drifted") else 0

    def to_dict(self) -> dict:
        return {"shard": self.shard, "parallel": self.parallel, "duration_s": round(self.duration_s, 2),
                "summary": {s: self.count(s) for s in ("in-sync", "drifted", "remediated", "not-deployed", "error")},
                "exit_code": self.exit_code, "stacks": [s.to_dict() for s in self.stacks]}


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, total = (int(p) for p in text.split("/", 1))
    except ValueError:
        raise InputError(f"--shard {text!r} is not I/N", hint="for example --shard 2/8") from None
    if not 1 <= index <= total <= 1000:
        raise InputError(f"--shard {text!r}: I must be between 1 and N")
    return index, total


def select_targets(engine: Engine, customers: list[str], environments: list[str] | None, shard: tuple[int, int],
                   errors: list[StackResult] | None = None) -> list[StackTarget]:
    """All targets of ``customers`` in a stable order, then this shard's share of them.

    A customer whose configuration cannot be loaded is recorded in ``errors`` (when given)
    instead of stopping the scan of everyone else; each shard reports its share of them.
    """
    index, total = shard
    order = {c: i for i, c in enumerate(sorted(customers))}

    def broken(customer: str, exc: EngineError) -> None:
        if order[customer] % total == index - 1:
            errors.append(StackResult(customer, "*", f"{customer}/*", "-", "drift", "failed", error=exc.message))  # type: ignore[union-attr]

    targets = engine.plan_many(customers, environments, broken if errors is not None else None)
    return [t for i, t in enumerate(targets) if i % total == index - 1]


def scan(engine: Engine, targets: list[StackTarget], parallel: int = 4, remediate: bool = False,
         may_remediate=lambda _t: False) -> DriftReport:
    """Check every target (at most ``parallel`` at once); optionally remediate the drifted ones that may be."""
    started = time.monotonic()
    runners = {tool: engine.runners(tool) for tool in sorted({t.tool for t in targets})}
    # upstream stacks may use a tool none of the targets use; with_upstream_outputs adds those runners

    def check(target: StackTarget) -> StackDrift:
        drift = StackDrift(target, runners[target.tool].run(target, "drift"))
        if remediate and drift.state == "drifted" and may_remediate(target):
            desired = target
            if target.upstreams:
                # the desired state includes what the tenant consumes; without it, remediation would tear down peerings
                resolved = engine.with_upstream_outputs(target, runners)
                if isinstance(resolved, str):
                    drift.remediation = StackResult(target.customer, target.environment, f"{target.project}/{target.stack}", target.tool,
                                                    "remediate", "failed", error=f"not remediated: {resolved}")
                    return drift
                desired = resolved
            drift.remediation = runners[target.tool].run(desired, "remediate")
            drift.remediation.details["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            drift.after_remediation = runners[target.tool].run(target, "drift")
        return drift

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="drift") as pool:
        stacks = list(pool.map(check, targets))
    return DriftReport(stacks=stacks, parallel=parallel, duration_s=time.monotonic() - started)


_ICONS = {"in-sync": "✅", "drifted": "⚠️", "remediated": "🔧", "not-deployed": "➖", "error": "❌"}


def render_console(report: DriftReport) -> str:
    lines = [f"{'STACK':<32} {'TOOL':<10} {'STATE':<13} DETAILS"]
    for s in report.stacks:
        r = s.result
        detail = ""
        if s.state in ("drifted", "remediated"):
            detail = f"{len(r.resources)} resource(s): " + ", ".join(f"{c.urn_name} ({c.action})" for c in r.resources[:4])
        elif s.state == "error":
            detail = ((s.after_remediation or r).error or "").splitlines()[0][:100]
        lines.append(f"{r.customer + '/' + r.environment:<32} {r.tool:<10} {s.state:<13} {detail}")
        if s.state in ("drifted", "remediated"):
            for c in r.resources[:20]:
                for d in c.diffs[:10]:
                    lines.append(f"{'':<34}{c.urn_name}.{d['path']}: {d['old']!r} → {d['new']!r}")
    summary = ", ".join(f"{report.count(k)} {k}" for k in ("in-sync", "drifted", "remediated", "not-deployed", "error") if report.count(k))
    lines.append(f"\n{len(report.stacks)} stacks (shard {report.shard}, {report.parallel} at a time, {report.duration_s:.1f}s): {summary or 'nothing to check'}")
    return "\n".join(lines)


def _code(text: str) -> str:
    """Text as an inline code span in a table cell: one line, no pipe or backtick to break out with."""
    return "`" + " ".join(str(text).split()).replace("|", "\\|").replace("`", "'") + "`"


def render_markdown(report: DriftReport) -> str:
    lines = ["| Stack | Tool | State | Drifted resources |", "| --- | --- | --- | --- |"]
    for s in report.stacks:
        r = s.result
        names = ", ".join(f"{_code(c.urn_name)} ({c.action})" for c in r.resources[:10]) if s.state in ("drifted", "remediated") else ""
        lines.append(f"| {_code(r.customer + '/' + r.environment)} | {r.tool} | {_ICONS.get(s.state, '')} {s.state} | {names} |")
    return "\n".join(lines)
