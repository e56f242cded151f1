"""``engine history``: recorded operations, newest first."""

from __future__ import annotations

import click
from engine import history as hist
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.reporters.history import render_table
from engine.wiring import Wiring
from engine.commands.options import JSON, MAYBE_CUSTOMER, Verb, opt


def run(w: Wiring, customer: str | None, environment: str | None, limit: int) -> Outcome:
    if customer is not None:
        check_customer_id(customer)
    where, rows = hist.query(w.home.root, customer, environment, limit)
    if not rows:
        text = f"no runs recorded{' for ' + customer if customer else ''}{' in ' + environment if environment else ''} ({where})"
    else:
        text = render_table(rows)
    return Outcome({"history": where, "runs": rows}, text)


VERBS = (
    Verb("history", run, (MAYBE_CUSTOMER, JSON, opt("--env", "environment", metavar="ENV", help="Only this environment."),
                          opt("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="At most this many runs.")),
         "Recorded operations, newest first ($ENGINE_HOME/history.sqlite3, or ENGINE_HISTORY_URL)."),
)
