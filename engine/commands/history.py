"""``engine history``: recorded operations, newest first."""

from __future__ import annotations

from engine import history as hist
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.reporters.history import render_table
from engine.wiring import Wiring


def run(w: Wiring, customer: str | None, environment: str | None, limit: int) -> Outcome:
    if customer is not None:
        check_customer_id(customer)
    where, rows = hist.query(w.home.root, customer, environment, limit)
    if not rows:
        text = f"no runs recorded{' for ' + customer if customer else ''}{' in ' + environment if environment else ''} ({where})"
    else:
        text = render_table(rows)
    return Outcome({"history": where, "runs": rows}, text)
