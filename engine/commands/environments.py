"""``engine environments CUSTOMER [--at SHA]``: the customer's environments in file order, as JSON for a workflow.

The deploy workflow applies one GitHub environment per infrastructure environment, in this order
(``stages``), each after the one before it succeeded — what ``engine up`` does in one process.
With ``--at`` the customer file is read from the customer's repository at that commit through
the GitHub API, as ``engine event`` reads it (an empty value: the default branch).
"""

from __future__ import annotations

import re

from engine.catalog import check_customer_id
from engine.commands import Outcome, to_json
from engine.errors import InputError
from engine.fanout import PRODUCTION_ENVIRONMENTS
from engine.wiring import Wiring
from engine.commands.options import CUSTOMER, ENV, Verb, opt


def run(w: Wiring, customer: str, at: str | None, environments: tuple[str, ...]) -> Outcome:
    check_customer_id(customer)
    if at and not re.fullmatch(r"[0-9a-f]{40}", at):
        raise InputError(f"--at {at[:60]!r} is not a commit (40 hexadecimal characters; empty = the default branch)")
    engine = w.engine()
    tenant = None
    if at is not None:
        from engine.triggers import remote_tenant

        tenant = remote_tenant(w.github(), engine.catalog.record(customer), at or None)
    names = [t.environment for t in engine.plan(customer, list(environments) or None, tenant)]
    stages = [{"environment": name, "after": names[i - 1] if i else "", "production": name in PRODUCTION_ENVIRONMENTS}
              for i, name in enumerate(names)]
    data = {"customer": customer, "sha": at or None, "count": len(stages), "environments": names, "stages": stages}
    return Outcome(data, to_json(data, compact=True))


VERBS = (
    Verb("environments", run, (CUSTOMER, ENV, opt("--at", metavar="SHA", help="Read the customer file at this commit of the "
                                                  "customer's repository (GitHub API; empty = its default branch).")),
         "Print the customer's environments in file order as JSON (the deploy workflow's stages)."),
)
