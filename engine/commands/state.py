"""``engine state backups|restore CUSTOMER --env E``: the state backups kept before and after every deploy (engine/backups.py)."""

from __future__ import annotations

from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.operate import progress_wanted
from engine.errors import InputError
from engine.reporters.console import ConsoleProgress, render_stack
from engine.results import Status
from engine.stream import StackDone
from engine.wiring import Wiring
from engine.commands.options import CUSTOMER, JSON, LOCK, QUIET, YES, Verb, opt

ENV = opt("--env", "environment", required=True, metavar="ENV", help="The environment (stack).")


def _target(w: Wiring, customer: str, environment: str):
    engine = w.engine()
    (target,) = engine.plan(check_customer_id(customer), [environment])
    if engine.runner_key(target) != target.tool:
        raise InputError(f"{target.fqn} is deployed by {engine.runner_key(target)}: its state is not kept by this engine")
    return target


def backups(w: Wiring, customer: str, environment: str) -> Outcome:
    target = _target(w, customer, environment)
    store = w.backups(target)
    found = store.list()
    data = {"customer": customer, "environment": environment, "location": store.where, "backups": [b.to_dict() for b in found]}
    if not found:
        return Outcome(data, f"{target.fqn}: no state backups in {store.where}")
    lines = [f"{target.fqn}: {len(found)} state backup(s) in {store.where} (newest first)",
             f"{'ID':<28} {'TAKEN (UTC)':<21} {'REASON':<15} {'TOOL':<10} {'RESOURCES':>9}  STATE"]
    for b in found:
        stamp = f"serial {b.serial}" if b.serial is not None else (f"written {b.written_at[:19]}" if b.written_at else "")
        lines.append(f"{b.id:<28} {b.taken_at:<21} {b.reason:<15} {b.tool:<10} {b.resources if b.resources is not None else '?':>9}  {stamp}")
    return Outcome(data, "\n".join(lines))


def restore(w: Wiring, customer: str, environment: str, backup_id: str | None = None, force: bool = False, yes: bool = False,
            quiet: bool = False, lock_timeout: float = 0.0) -> Outcome:
    w.lock_timeout = lock_timeout
    target = _target(w, customer, environment)
    store = w.backups(target)
    backup = store.find(backup_id)
    if backup.tool != target.tool:
        raise InputError(f"backup {backup.id} holds {backup.tool} state, but {target.fqn} is deployed with {target.tool}")
    if not yes:
        raise InputError(f"restoring replaces the state of {target.fqn} with backup {backup.id} ({backup.reason}, {backup.taken_at})",
                         hint="the live state is backed up first; add --yes to restore")
    state = store.open(backup)  # decrypted now: a wrong passphrase fails before the stack is touched

    def check(live, unreadable: str | None) -> None:
        if live is None:
            return  # no live state, or an unreadable one: nothing newer to lose
        newer = live.newer_than(backup.stamp)
        if newer and not force:
            raise InputError(f"the live state of {target.fqn} is newer than backup {backup.id}: {newer}",
                             hint="restoring would forget what was deployed since; add --force to restore anyway (the live state is backed up first)")

    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted(quiet)))
    result = w.runner(target.tool).restore(target, state, check)
    w.stream.publish(StackDone(target, result))
    data = {"customer": customer, "environment": environment, "backup": backup.to_dict(), "result": result.to_dict()}
    if result.status == Status.SUCCEEDED:
        differs = result.changes.update + result.changes.delete + result.changes.create
        summary = (f"restored backup {backup.id}; the refresh found " +
                   (f"{differs} resource(s) differing from it (the state now records them as they are)" if differs else
                    "the real resources as the backup records them"))
    else:
        summary = f"restoring backup {backup.id} failed"
    return Outcome(data, "\n".join([*render_stack(result), "", summary]), 0 if result.status == Status.SUCCEEDED else 1)


VERBS = (
    Verb("backups", backups, (CUSTOMER, ENV, JSON), "List the state backups of a stack (kept before and after every deploy).", group="state"),
    Verb("restore", restore, (CUSTOMER, ENV, opt("--backup", "backup_id", metavar="ID", help="The backup to restore (default: the newest a deploy kept)."),
                              opt("--force", is_flag=True, help="Restore even when the live state is newer than the backup."),
                              YES, JSON, LOCK, QUIET),
         "Restore a stack's state from a backup (under the stack's lock), then refresh to show what differs.", group="state"),
)
