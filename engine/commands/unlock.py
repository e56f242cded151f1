"""``engine unlock CUSTOMER --env ENV --yes``: clear a lock a crashed operation left (refused while a run holds the stack)."""

from __future__ import annotations

from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.errors import InputError
from engine.wiring import Wiring
from engine.commands.options import CUSTOMER, JSON, YES, Verb, opt


def run(w: Wiring, customer: str, environment: str, lock_id: str | None, yes: bool) -> Outcome:
    if not yes:
        raise InputError("clearing a lock while an operation runs can corrupt state", hint="check no operation is running, then add --yes")
    (target,) = w.engine().plan(check_customer_id(customer), [environment])
    message = w.runner(target.tool).unlock(target, lock_id)
    return Outcome({"ok": True, "customer": customer, "environment": environment, "message": message}, message)


VERBS = (
    Verb("unlock", run, (CUSTOMER, opt("--env", "environment", required=True, help="The environment whose lock to clear."), JSON,
                         opt("--lock-id", help="Terraform path: the lock ID shown in the lock error."), YES),
         "Clear a lock a crashed operation left (`pulumi cancel` / `tofu force-unlock`); refused while a run holds it."),
)
