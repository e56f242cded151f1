"""``engine drift``: check stacks for changes made outside the engine, optionally remediate and report to GitHub.

Exit 0 in sync, 3 drift found, 1 errors.
"""

from __future__ import annotations

import functools

import click
import os

from engine import drift as drift_mod
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.operate import progress_wanted
from engine.commands.selection import select_customers
from engine.errors import InputError
from engine.reporters.console import ConsoleProgress
from engine.reporters.drift import render_console, render_markdown
from engine.reporters.dry_run import render_drift as render_dry_run
from engine.wiring import Wiring
from engine.commands.options import ALL, CUSTOMERS, ENV, JSON, PARALLEL, Verb, opt


def run(w: Wiring, customers: tuple[str, ...], all_customers: bool, environments: tuple[str, ...], shard: str, parallel: int,
        remediate: bool, markdown: bool, report_to: str, dry_run: bool) -> Outcome:
    if all_customers and customers:
        raise InputError("name customers or pass --all, not both")
    if not all_customers and not customers:
        raise InputError("name the customers to check, or pass --all")
    w.dry_run = dry_run  # checks only read; nothing is remediated (the would-be remediations are listed instead)
    engine = w.engine()
    for customer in customers:  # a customer that does not exist is bad input (exit 2), not a failed check
        engine.catalog.record(check_customer_id(customer))
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted()))
    names = select_customers(engine, customers, all_customers, None)
    index, total = drift_mod.parse_shard(shard)
    load_errors: list = []
    targets = drift_mod.select_targets(engine, names, list(environments) or None, (index, total), load_errors)
    # the tenant's effective properties: for a tenant read from GitHub, its repository's drift_auto_remediate counts
    # when the record's property_overrides lists it (docs/CUSTOM-PROPERTIES.md); loaded once per customer
    effective = functools.lru_cache(maxsize=None)(lambda customer: engine.load(customer).record.properties.drift_auto_remediate)
    may_remediate = lambda t: effective(t.customer)  # noqa: E731
    report = drift_mod.scan(engine, targets, parallel=parallel, remediate=remediate and not dry_run, may_remediate=may_remediate)
    report.stacks += [drift_mod.StackDrift(None, r) for r in load_errors]
    report.shard = f"{index}/{total}"
    previous = _previous_states(w, report)  # read before this scan is recorded
    for stack in report.stacks:
        w.history.drift_done(stack)
        _publish_drift(w, stack, previous.get((stack.result.customer, stack.result.environment)))
    data = report.to_dict()
    warnings: list[str] = []
    if report_to == "github":
        github = _report_to_github(w, report, dry_run)
        data["github"] = github
        warnings = [f"GitHub call failed (the scan's result is unaffected): {line}" for line in github["failed_calls"]]
    if not dry_run:
        text = (lambda: render_markdown(report)) if markdown else (lambda: render_console(report))
        return Outcome(data, text, report.exit_code, warnings)
    data["dry_run"] = _held_back(report, remediate, may_remediate, report_to, data.get("github", {}).get("dry_run_writes", []))
    planned = w.github(dry_run=True).planned if report_to == "github" else []
    text = lambda: (render_markdown(report) if markdown else render_console(report)) + "\n" + render_dry_run(data["dry_run"], planned)  # noqa: E731
    return Outcome(data, text, report.exit_code, warnings)


def _previous_states(w: Wiring, report: drift_mod.DriftReport) -> dict[tuple[str, str], str]:
    """Each checked stack's state at its previous check, from the run history (unknown stacks are left out)."""
    store = w.history.store
    out: dict[tuple[str, str], str] = {}
    if store is None:
        return out
    for stack in report.stacks:
        if stack.target is None:
            continue
        key = (stack.target.customer, stack.target.environment)
        try:
            rows = store.query(*key, limit=50)
        except Exception:  # noqa: BLE001 - best effort: unknown, as if never checked (the recorder warns about the store)
            continue
        state = next((r["status"] for r in rows if r["operation"] == "drift"), None)
        if state is not None:
            out[key] = state
    return out


def _publish_drift(w: Wiring, stack: drift_mod.StackDrift, previous: str | None) -> None:
    """Drift as a lifecycle on the event stream (notifications): opened when found on a stack that was not drifted
    at its previous check, resolved when a drifted stack is back in sync or was put back."""
    from engine.stream import DriftOpened, DriftResolved

    if stack.target is None:
        return
    if stack.state in ("drifted", "remediated") and previous != "drifted":
        w.stream.publish(DriftOpened(stack.target, stack.result))
    if stack.state == "remediated" or (stack.state == "in-sync" and previous == "drifted"):
        w.stream.publish(DriftResolved(stack.target, stack.after_remediation or stack.result, remediated=stack.state == "remediated"))


def _held_back(report: drift_mod.DriftReport, remediate: bool, may_remediate, report_to: str, github_writes: list[str]) -> dict:
    """What a real run would have done that this dry run did not: remediations (with what each puts back) and GitHub writes."""
    would, left = [], []
    for stack in report.stacks:
        if not remediate or stack.target is None or stack.state != "drifted":
            continue
        t = stack.target
        if may_remediate(t):
            would.append({"stack": t.fqn, "command": f"engine up {t.customer} --env {t.environment} --refresh",
                          "resources": [{"name": c.urn_name, "type": c.type, "action": c.action, "diffs": c.diffs} for c in stack.result.resources]})
        else:
            left.append({"stack": t.fqn, "reason": f"drift_auto_remediate is not set in stacks/{t.customer}.yml"})
    return {"remediate": remediate, "report": report_to, "would_remediate": would, "left_drifted": left,
            "would_write": {"github": github_writes, "state": [f"{w['stack']}: the remediation's apply" for w in would]}}


def _report_to_github(w: Wiring, report: drift_mod.DriftReport, dry_run: bool) -> dict:
    """One issue per stack: opened/updated when drifted, closed when back in sync.  The repository is the
    tenant record's choice (``drift_issues``): the customer's, or the manager's own."""
    from engine.reporters.drift_issues import DriftIssues

    catalog = w.engine().catalog
    issues = DriftIssues(w.github(dry_run=dry_run), w.github_settings().run_url)
    manager = os.environ.get("GITHUB_REPOSITORY")
    for stack in report.stacks:
        if stack.target is None:
            continue
        record = catalog.record(stack.target.customer)
        repository = manager if record.drift_issues == "manager" else record.repository
        if repository is None:
            issues.log.append(f"{stack.target.fqn}: drift_issues is 'manager' but GITHUB_REPOSITORY is not set")
        elif stack.state == "drifted":
            issues.sync(repository, stack.result, drifted=True)
        elif stack.state in ("in-sync", "remediated"):
            issues.sync(repository, stack.result, drifted=False)
    return {"issues": issues.actions, "failed_calls": issues.log, "dry_run_writes": [x.describe() for x in issues.api.planned]}


VERBS = (
    Verb("drift", run, (CUSTOMERS, ALL, ENV, PARALLEL, JSON,
                        opt("--dry-run", is_flag=True, help="Change nothing: list the remediations and GitHub writes instead of making them."),
                        opt("--shard", default="1/1", show_default=True, metavar="I/N", help="Check only the I-th of N equal shares."),
                        opt("--remediate", is_flag=True, help="Re-apply the desired state where the tenant allows it (drift_auto_remediate)."),
                        opt("--markdown", is_flag=True, help="Print a Markdown table (for job summaries)."),
                        opt("--report", "report_to", type=click.Choice(["none", "github"]), default="none", show_default=True,
                            help="github: open/update/close one drift issue per stack.")),
         "Check stacks for changes made outside the engine, without writing state. Exit 0 in sync, 3 drift found, 1 errors."),
)
