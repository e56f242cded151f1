"""Infrastructure drift across the fleet: which stacks no longer match what was deployed.

Every stack is checked without writing state (Pulumi: ``refresh --preview-only``;
Terraform: ``plan -refresh-only``, never applied), a bounded number at a time.  Each
stack is ``in-sync``, ``drifted`` (which resources, which properties, old → new, secrets
masked), ``not-deployed`` or ``error``.  Exit code: 0 in sync, 3 drift found, 1 errors.
``--remediate`` re-applies the desired state for tenants that opted in, and checks again.

Stacks another executor runs (Spacelift, for the tenants it executes) are not checked here: their
state is that executor's, and so is drift detection (Spacelift's drift detection and reconciliation).
They are reported as ``spacelift`` — neither drift nor an error — and no local tool is prepared for them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from typing import Callable

from engine import fanout
from engine.errors import EngineError, InputError
from engine.operations import Engine
from engine.planning import StackTarget
from engine.results import Operation, StackResult, Status

EXIT_DRIFT = 3
STATES = ("in-sync", "drifted", "remediated", "not-deployed", "spacelift", "error")
# executor -> why its stacks are not checked here
EXECUTED_ELSEWHERE = {"spacelift": "executed by Spacelift: drift detection is Spacelift's (reconciliation)"}


@dataclass
class StackDrift:
    target: StackTarget | None  # None: the customer's configuration could not even be loaded
    result: StackResult
    remediation: StackResult | None = None
    after_remediation: StackResult | None = None
    executed_by: str | None = None  # an executor other than the engine's runners (EXECUTED_ELSEWHERE): not checked here

    @property
    def state(self) -> str:
        if self.executed_by is not None:
            return self.executed_by
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
        if self.executed_by is not None:
            data["note"] = EXECUTED_ELSEWHERE[self.executed_by]
        if self.remediation is not None:
            data["remediation"] = {"status": self.remediation.status, "changes": self.remediation.changes.__dict__,
                                   "error": self.remediation.error, "at": self.remediation.finished_at}
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
                "summary": {s: self.count(s) for s in STATES},
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


Remediator = Callable[[list[StackTarget], int], list[StackResult]]


def scan(engine: Engine, targets: list[StackTarget], parallel: int = 4, remediate: bool = False,
         may_remediate=lambda _t: False, remediator: Remediator | None = None) -> DriftReport:
    """Check every target (at most ``parallel`` at once); optionally remediate the drifted ones that may be.

    Checks run in threads: ``refresh --preview-only`` and ``plan -refresh-only`` never run a program.
    Remediation does (Pulumi's inline programs keep global state in the Python process, pulumi#6052),
    so each remediation runs in its own ``engine up --refresh`` process — the same unit as fleet fan-out.
    """
    started = time.monotonic()
    elsewhere = {t.fqn: engine.runner_key(t) for t in targets if engine.runner_key(t) in EXECUTED_ELSEWHERE}
    # only the tools of the stacks checked here: nothing is prepared or installed for the others
    runners = {tool: engine.runners(tool) for tool in sorted({t.tool for t in targets if t.fqn not in elsewhere})}

    def check(target: StackTarget) -> StackResult:
        if target.fqn in elsewhere:
            return StackResult.for_target(target, Operation.DRIFT, Status.SKIPPED)
        return runners[target.tool].run(target, Operation.DRIFT)

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="drift") as pool:
        stacks = [StackDrift(t, r, executed_by=elsewhere.get(t.fqn)) for t, r in zip(targets, pool.map(check, targets))]
        fix = [s for s in stacks if remediate and s.state == "drifted" and may_remediate(s.target)]
        if fix:
            remediated = (remediator or remediate_in_processes(engine))([s.target for s in fix], parallel)  # type: ignore[misc]
            for stack, result in zip(fix, remediated):
                result.finished_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                stack.remediation = result
            checked_again = list(pool.map(check, [s.target for s in fix if s.remediation.ok]))  # type: ignore[union-attr]
            for stack, again in zip([s for s in fix if s.remediation.ok], checked_again):  # type: ignore[union-attr]
                stack.after_remediation = again
    return DriftReport(stacks=stacks, parallel=parallel, duration_s=time.monotonic() - started)


def remediate_in_processes(engine: Engine) -> Remediator:
    """Put the desired state back, one ``engine up --refresh`` process per stack, ``parallel`` at a time.

    The child plans like any ``up`` (consumed upstream outputs included: without them remediation
    would tear down peerings) and refreshes first, so changes made outside the tools are seen and undone.
    """
    def run(targets: list[StackTarget], parallel: int) -> list[StackResult]:
        settings = {"ENGINE_CATALOG": str(engine.catalog.root), "ENGINE_HOME": str(engine.home.root)}

        def one(target: StackTarget) -> StackResult:
            worker = fanout.run_worker(["up", target.customer, "--env", target.environment, "--refresh"], settings, engine.catalog.root)
            stacks = (worker.result or {}).get("environments") or {}
            if target.environment in stacks:
                return StackResult.from_dict(stacks[target.environment])
            return StackResult.for_target(target, Operation.REMEDIATE, Status.FAILED, error=f"not remediated: {worker.error}")

        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="remediate") as pool:
            return list(pool.map(one, targets))

    return run
