"""``engine list [CUSTOMER]``: onboarded customers, or one customer's stacks with their last update."""

from __future__ import annotations

from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.reporters.console import render_customers, render_stacks
from engine.results import Operation
from engine.wiring import Wiring
from engine.commands.options import JSON, MAYBE_CUSTOMER, Verb


def run(w: Wiring, customer: str | None) -> Outcome:
    engine = w.engine()
    if customer is None:
        rows = [{"customer": r.customer, "repository": r.repository, "target": r.target,
                 "tools": r.properties.infrastructure_tools, "state": "s3" if r.state else "file"} for r in engine.catalog.all_records()]
        return Outcome({"customers": rows}, lambda: render_customers(rows))
    result = engine.run(check_customer_id(customer), Operation.LIST)
    return Outcome(result.to_dict(), lambda: render_stacks(result), result.exit_code)


VERBS = (Verb("list", run, (MAYBE_CUSTOMER, JSON), "List onboarded customers, or one customer's stacks with their last update."),)
