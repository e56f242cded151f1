"""``engine up|preview|refresh|destroy|outputs``: one customer's stacks, or a fleet (--all, --changed-from)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from engine import fanout
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.selection import select_customers
from engine.errors import InputError
from engine.reporters.console import ConsoleProgress, render_run
from engine.reporters.fleet import FleetProgress, render_table
from engine.results import Operation
from engine.wiring import Wiring
from engine.commands.options import FLEET, OPERATION, YES, Verb, opt

FLEET_OPERATIONS = {Operation.UP, Operation.PREVIEW, Operation.REFRESH, Operation.REMEDIATE}
CONFIRM = {Operation.DESTROY}


def progress_wanted(quiet: bool = False) -> bool:
    return not quiet and (sys.stderr.isatty() or bool(os.environ.get("ENGINE_PROGRESS")))


def run(w: Wiring, operation: str, customer: str | None, environments: tuple[str, ...] = (), *, yes: bool = False,
        all_customers: bool = False, changed_from: Path | None = None, parallel: int = 1, quiet: bool = False,
        lock_timeout: float = 0.0, refresh: bool = False) -> Outcome:
    op = Operation(operation)
    if refresh:  # up --refresh: read the real resources first, so changes made outside the tools are put back
        op = Operation.REMEDIATE
    w.lock_timeout = lock_timeout
    if all_customers or changed_from:
        if op not in FLEET_OPERATIONS:
            raise InputError(f"`engine {op}` works on one customer at a time")
        if customer:
            raise InputError("name one customer, or use --all / --changed-from")
        return fleet(w, op, all_customers, changed_from, environments, parallel, quiet)
    if customer is None:
        raise InputError("name a customer, or use --all / --changed-from")
    check_customer_id(customer)
    if op in CONFIRM and not yes:
        raise InputError(f"`engine {op}` deletes every resource of {customer}'s selected stacks", hint="add --yes to confirm")
    engine = w.engine()
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted(quiet)))
    result = engine.run(customer, op, list(environments) or None)
    return Outcome(result.to_dict(), lambda: render_run(result), result.exit_code)


def fleet(w: Wiring, op: Operation, all_customers: bool, changed_from: Path | None, environments: tuple[str, ...],
          parallel: int, quiet: bool) -> Outcome:
    """The same operation over many customers, each in its own process, ``parallel`` at a time."""
    engine = w.engine()
    customers = select_customers(engine, (), all_customers, changed_from)
    # everything is loaded, validated and planned before the first process starts
    targets = engine.plan_many(customers, list(environments) or None)
    # each runner the children will use, prepared once: tools installed before they start (children never race
    # on installs), Spacelift's credentials checked; the stacks Spacelift executes need no local tool
    for key in sorted({engine.runner_key(t) for t in targets}):
        w.runner(key).prepare([t for t in targets if engine.runner_key(t) == key])
    extra = [a for e in environments for a in ("--env", e)] + ["--lock-timeout", str(w.lock_timeout)]
    settings = {"ENGINE_CATALOG": str(engine.catalog.root), "ENGINE_HOME": str(w.home.root)}
    if op == Operation.REMEDIATE:
        extra.append("--refresh")
    result = fanout.run_fleet(customers, "up" if op == Operation.REMEDIATE else str(op), parallel=parallel, extra_args=extra, settings=settings, cwd=engine.catalog.root,
                              progress=FleetProgress(enabled=not quiet, total=len(customers)))
    return Outcome(result.to_dict(), lambda: render_table(result) if customers else "no customers selected", result.exit_code)


VERBS = (
    Verb("up", functools.partial(run, operation="up"),
         (*FLEET, opt("--refresh", is_flag=True, help="Read the real resources first, so changes made outside the tools are put back.")),
         "Create or update the customer's stacks (one per environment), or every customer's with --all."),
    Verb("preview", functools.partial(run, operation="preview"), FLEET, "Show what `up` would change, without changing anything."),
    Verb("refresh", functools.partial(run, operation="refresh"), FLEET,
         "Read the real resources and update the state to match (shows out-of-band changes)."),
    Verb("destroy", functools.partial(run, operation="destroy"), (*OPERATION, YES),
         "Delete every resource of the customer's stacks, then the stacks themselves (needs --yes)."),
    Verb("outputs", functools.partial(run, operation="outputs"), OPERATION, "Print the outputs of the customer's stacks (secret values masked)."),
)
