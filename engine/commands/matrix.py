"""``engine matrix``: a GitHub Actions job matrix (customer × environment) to fan out across runners."""

from __future__ import annotations

from pathlib import Path

from engine import fanout
from engine.commands import Outcome, to_json
from engine.commands.selection import select_customers
from engine.wiring import Wiring


def run(w: Wiring, customers: tuple[str, ...], all_customers: bool, changed_from: Path | None, environments: tuple[str, ...]) -> Outcome:
    engine = w.engine()
    names = select_customers(engine, customers, all_customers, changed_from)
    data = fanout.matrix([(t.customer, t.environment, t.tool) for t in engine.plan_many(names, list(environments) or None)])
    return Outcome(data, to_json(data, compact=True))
