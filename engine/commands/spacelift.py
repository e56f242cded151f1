"""``engine spacelift sync|compliance``: one Spacelift stack per customer × environment, kept as the engine plans it."""

from __future__ import annotations

from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.options import ALL, CUSTOMERS, JSON, Verb, opt
from engine.errors import EXIT_FAILED, EXIT_OK, InputError
from engine.reporters.spacelift import render_compliance, render_sync
from engine.spacelift import compliance as spacelift_compliance
from engine.spacelift import sync as spacelift_sync
from engine.wiring import Wiring

EXIT_DRIFT = 3


def _tofu_version() -> str:
    from engine.toolchain import TOFU_VERSION

    return TOFU_VERSION


def sync(w: Wiring, customers: tuple[str, ...], all_customers: bool, prune: bool, dry_run: bool) -> Outcome:
    """Create the stacks that are missing, update what differs (naming each field), and delete (--prune) or report
    the engine's stacks whose tenant is gone.  A second run makes no mutation."""
    if bool(customers) == all_customers:
        raise InputError("name the customers to sync, or use --all")
    for customer in customers:
        check_customer_id(customer)
    settings = w.spacelift_settings(required=True)
    result = spacelift_sync.sync(w.engine(), settings, w.spacelift(), None if all_customers else list(customers),
                                 prune=prune, dry_run=dry_run, tofu_version=_tofu_version())
    data = result.to_dict()
    return Outcome(data, lambda: render_sync(data), EXIT_OK if result.ok else EXIT_FAILED, list(result.plan.warnings))


def compliance(w: Wiring) -> Outcome:
    """Tenants whose stack is missing, stacks that match no tenant, stacks changed in Spacelift.  Exit 3 when any."""
    data = spacelift_compliance.check(w.engine(), w.spacelift_settings(required=True), w.spacelift(), tofu_version=_tofu_version())
    return Outcome(data, lambda: render_compliance(data), EXIT_OK if data["compliant"] else EXIT_DRIFT)


VERBS = (
    Verb("sync", sync, (CUSTOMERS, ALL, opt("--prune", is_flag=True, help="Delete the engine's stacks whose tenant or environment is gone."),
                        opt("--dry-run", is_flag=True, help="Read everything, print every mutation instead of making it."), JSON),
         "Create or update one Spacelift stack per customer × environment from the planned targets (spacelift.yml).",
         group="spacelift"),
    Verb("compliance", compliance, (JSON,),
         "List tenants whose Spacelift stack is missing and Spacelift stacks that match no tenant (exit 3 when any).",
         group="spacelift"),
)
