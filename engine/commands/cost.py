"""``engine cost CUSTOMER``: each stack's monthly cost before → after → delta (a preview: changes nothing);
``engine cost --all``: the fleet's monthly cost per customer, from the customer files' desired state (no tool runs)."""

from __future__ import annotations

from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.operate import progress_wanted
from engine.commands.options import ALL, ENV, JSON, MAYBE_CUSTOMER, QUIET, Verb
from engine.commands.selection import select_customers
from engine.errors import EXIT_FAILED, EXIT_OK, InputError
from engine.governance import Sources, fleet_cost, govern
from engine.reporters.console import ConsoleProgress
from engine.reporters.governance import render_fleet_cost, render_governance
from engine.wiring import Wiring


def run(w: Wiring, customer: str | None, environments: tuple[str, ...] = (), all_customers: bool = False, quiet: bool = False) -> Outcome:
    engine = w.engine()
    sources = Sources.for_catalog(w.catalog_root)
    if all_customers:
        if customer:
            raise InputError("name one customer, or use --all")
        fleet = fleet_cost(engine, select_customers(engine, (), True, None), sources, list(environments) or None)
        return Outcome(fleet.to_dict(), lambda: render_fleet_cost(fleet), EXIT_FAILED if fleet.errors else EXIT_OK)
    if customer is None:
        raise InputError("name a customer, or use --all")
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted(quiet)))
    stacks = govern(engine, check_customer_id(customer), list(environments) or None, sources, decide=False)
    failed = any(s.problem for s in stacks)
    data = {"customer": customer, "ok": not failed, "environments": {s.environment: s.to_dict() for s in stacks}}
    return Outcome(data, lambda: render_governance(customer, stacks, decisions=False), EXIT_FAILED if failed else EXIT_OK)


VERBS = (
    Verb("cost", run, (MAYBE_CUSTOMER, ENV, JSON, QUIET, ALL),
         "Monthly cost of the customer's stacks before -> after -> delta (previews, changes nothing); "
         "--all: the fleet's monthly cost per customer from the customer files, without running a tool."),
)
