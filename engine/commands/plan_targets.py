"""``engine plan-targets CUSTOMER``: the resolved stack targets as JSON; runs nothing."""

from __future__ import annotations

from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.wiring import Wiring
from engine.commands.options import CUSTOMER, ENV, Verb


def run(w: Wiring, customer: str, environments: tuple[str, ...] = ()) -> Outcome:
    targets = w.engine().plan(check_customer_id(customer), list(environments) or None)
    return Outcome([t.to_dict() for t in targets], json_only=True)


VERBS = (Verb("plan-targets", run, (CUSTOMER, ENV), "Print the resolved stack targets (tool, program, backend, config) as JSON; runs nothing."),)
