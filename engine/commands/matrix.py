"""``engine matrix``: a GitHub Actions job matrix (customer × environment) to fan out across runners.

``--waves``: the same jobs cut into waves by position in each customer's file (``fanout.waves``), so a
rollout across runners applies every customer's environments in order.
"""

from __future__ import annotations

from pathlib import Path

from engine import fanout
from engine.commands import Outcome, to_json
from engine.commands.selection import select_customers
from engine.wiring import Wiring
from engine.commands.options import ALL, CHANGED, CUSTOMERS, ENV, Verb, opt


def run(w: Wiring, customers: tuple[str, ...], all_customers: bool, changed_from: Path | None, environments: tuple[str, ...],
        waves: bool = False) -> Outcome:
    engine = w.engine()
    names = select_customers(engine, customers, all_customers, changed_from)
    targets = [(t.customer, t.environment, t.tool) for t in engine.plan_many(names, list(environments) or None)]
    data = fanout.waves(targets) if waves else fanout.matrix(targets)
    return Outcome(data, to_json(data, compact=True))


VERBS = (
    Verb("matrix", run, (CUSTOMERS, ALL, CHANGED, ENV, opt("--waves", is_flag=True, help="Cut it into waves: wave i = every customer's i-th environment.")),
         "Print a GitHub Actions job matrix (customer × environment)."),
)
