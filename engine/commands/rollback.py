"""``engine rollback CUSTOMER --env E [--to RUN_ID | --previous] [--dry-run] [--yes]``: apply an earlier successful deploy again.

The snapshot's inputs are applied with the program/module revision of that run (engine/rollback.py).  The rollback
is always previewed first and the preview shown; it applies only with ``--yes``.  ``--list`` shows the snapshots.
``--github`` reports the rollback to the customer's repository: the ``infra/<env>`` status of the commit rolled back
to and a deployment of it (the manager workflow ``infra-rollback.yml`` runs it that way).
"""

from __future__ import annotations

from engine import rollback
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.operate import progress_wanted
from engine.errors import InputError
from engine.reporters.console import ConsoleProgress, render_stack
from engine.results import Operation, Status
from engine.stream import StackDone
from engine.untrusted import escape_inline
from engine.wiring import Wiring
from engine.commands.options import CUSTOMER, JSON, LOCK, QUIET, YES, Verb, opt


def _store(w: Wiring):
    store = w.history_store()
    if store is None:
        raise InputError("the run history cannot be read, so there is no snapshot to roll back to", hint="check ENGINE_HISTORY_URL")
    return store


def list_snapshots(w: Wiring, customer: str, environment: str) -> Outcome:
    w.engine().plan(customer, [environment])  # a known customer and environment
    rows = _store(w).snapshots(customer, environment, limit=50)
    data = [{"run_id": r["run_id"], "finished_at": r["finished_at"], "operation": r["operation"], "sha": r["snapshot"].get("sha"),
             "revision": r["revision"], "tool": r["tool"], "tool_version": r["tool_version"], "rollback_of": r["rollback_of"],
             "inputs_sha256": r["snapshot"]["inputs"]["customer_file"]["validated_sha256"], "outputs": r["snapshot"].get("outputs", {})}
            for r in rows]
    lines = [f"{'RUN':>6}  {'FINISHED (UTC)':<24} {'OPERATION':<9} {'COMMIT':<8} {'REVISION':<19} TOOL"]
    for d in data:
        lines.append(f"{d['run_id']:>6}  {d['finished_at']:<24} {d['operation']:<9} {(d['sha'] or '-')[:7]:<8} {d['revision']:<19} "
                     f"{escape_inline(d['tool_version'] or d['tool'])}" + (f"  (rollback to {d['rollback_of']})" if d["rollback_of"] else ""))
    text = "\n".join(lines) if data else f"{customer}/{environment}: no successful deploy recorded"
    return Outcome({"customer": customer, "environment": environment, "snapshots": data}, text)


def run(w: Wiring, customer: str, environment: str, to: int | None = None, previous: bool = False, dry_run: bool = False,
        yes: bool = False, list_only: bool = False, github: bool = False, quiet: bool = False, lock_timeout: float = 0.0) -> Outcome:
    check_customer_id(customer)
    w.lock_timeout = lock_timeout
    if list_only:
        return list_snapshots(w, customer, environment)
    engine = w.engine()
    (target,) = engine.plan(customer, [environment])
    if engine.runner_key(target) != target.tool:
        raise InputError(f"{target.fqn} is deployed by {engine.runner_key(target)}, not by this engine: roll it back there")
    engine._refuse_tool_switch(target)  # the stack's state must be the tool's the tenant selects now
    source = rollback.choose(_store(w), customer, environment, to=to, previous=previous)
    plan = rollback.prepare(target, source, w.revision_of(target), w.runner_at)
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted(quiet)))
    try:
        plan.runner.prepare([plan.target])
        preview = plan.runner.run(plan.target, Operation.PREVIEW)
        data = {"customer": customer, "environment": environment, "source": _source_data(source), "preview": preview.to_dict(), "applied": False}
        head = f"Rollback of {target.fqn} to {source.describe()}"
        if preview.status != Status.SUCCEEDED or dry_run or not yes:
            note = ("the preview failed: nothing applied" if preview.status != Status.SUCCEEDED else
                    "dry run: nothing applied" if dry_run else
                    f"not applied: this is what the rollback would change; run it with --yes "
                    f"(`engine rollback {customer} --env {environment} --to {source.run_id} --yes`)")
            text = "\n".join([head, "", *render_stack(preview), "", note])
            return Outcome(data, text, 1 if preview.status != Status.SUCCEEDED else 0)
        if github:
            _report_to_github(w, engine, customer, source)
        result = rollback.apply(plan)
        w.stream.publish(StackDone(plan.target, result))  # the run history records it (with its source); GitHub and Slack hear of it
    finally:
        plan.cleanup()
    data.update(applied=True, rollback=result.to_dict())
    text = "\n".join([head, "", "preview:", *render_stack(preview), "", *render_stack(result)])
    return Outcome(data, text, 0 if result.status == Status.SUCCEEDED else 1)


def _source_data(source: rollback.Source) -> dict:
    return {"run_id": source.run_id, "finished_at": source.finished_at, "operation": source.operation, "sha": source.sha,
            "revision": source.revision.label, "tool_version": (source.snapshot.get("tool") or {}).get("version")}


def _report_to_github(w: Wiring, engine, customer: str, source: rollback.Source) -> None:
    """The customer sees the rollback: the status of the commit rolled back to, a deployment of it (best effort)."""
    from engine.reporters.github import Feedback

    if not source.sha:
        raise InputError(f"run {source.run_id} deployed no recorded commit of the customer's repository, so --github has nothing to report on",
                         hint="leave out --github (the rollback still runs and is recorded)")
    settings = w.github_settings()
    record = engine.catalog.record(customer)
    feedback = Feedback(w.github(), record.repository, source.sha, None, "apply", settings.run_url)
    w.stream.subscribe(lambda event: feedback.stack_done(event.result) if isinstance(event, StackDone) else None)


VERBS = (
    Verb("rollback", run, (CUSTOMER, opt("--env", "environment", required=True, metavar="ENV", help="The environment to roll back."),
                           opt("--to", type=int, metavar="RUN_ID", help="The successful deploy (its run id in `engine history`) to return to."),
                           opt("--previous", is_flag=True, help="The last good deploy before the current state."),
                           opt("--dry-run", is_flag=True, help="Only preview the rollback."),
                           opt("--list", "list_only", is_flag=True, help="List the environment's snapshots (successful deploys) and stop."),
                           opt("--github", is_flag=True, help="Report to the customer's repository: status and deployment of the commit rolled back to."),
                           YES, JSON, LOCK, QUIET),
         "Apply an earlier successful deploy again (its inputs, its program/module revision); previewed first, applied with --yes."),
)
