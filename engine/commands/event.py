"""``engine event NAME PAYLOAD``: handle a GitHub event — plan or apply, and report to the customer's repository."""

from __future__ import annotations

import click
from pathlib import Path

from engine import triggers
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.operate import progress_wanted
from engine.events import NothingToDo, load_event
from engine.errors import InputError
from engine.reporters.console import ConsoleProgress, render_run
from engine.reporters.dry_run import render_event as render_dry_run
from engine.results import Operation
from engine.wiring import Wiring
from engine.commands.options import ENV, FILE, JSON, LOCK, Verb, arg, opt


def run(w: Wiring, event_name: str, payload_path: Path, customer: str | None, mode: str | None,
        environments: tuple[str, ...], dry_run: bool, lock_timeout: float = 0.0, source: Path | None = None) -> Outcome:
    """``dry_run``: previews instead of deployments, every write printed instead of made (engine/dry_run.py);
    ``source``: a local checkout of the customer's repository standing in for GitHub (dry runs only)."""
    w.lock_timeout = lock_timeout
    if source is not None and not dry_run:
        raise InputError("--source is only for --dry-run", hint="a real run reads the customer file from GitHub, at the event's commit")
    if customer is not None:
        check_customer_id(customer)
    request = load_event(event_name, payload_path, customer=customer, mode=mode, environments=environments)
    if isinstance(request, NothingToDo):  # a deleted ref, a tag, a labeled pull request…: nothing is read, run or written
        return Outcome(request.to_dict(), f"nothing to do: {request.reason}")
    triggers.check_request(request)
    settings = w.github_settings()
    if dry_run and source is None and not settings.has_credentials:
        raise InputError("--dry-run without GitHub credentials needs --source PATH (a local checkout of the customer's repository)",
                         hint="pass --source PATH to read the customer file from PATH and the custom properties from the tenant record, "
                              "or set ENGINE_GITHUB_TOKEN (or GITHUB_TOKEN) to read them from GitHub")
    w.dry_run = dry_run  # every runner only reads and previews
    w.history.sha = request.sha
    engine = w.engine()
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted()))
    api = w.github(dry_run=dry_run, source=source, head=request.sha)
    # the command decides what runs: under --dry-run an apply is previewed, never run
    operation = Operation.PREVIEW if dry_run else Operation(request.operation)
    def on_commit(sha: str) -> None:  # the history records the commit and when it was made (lead time, docs/PORTAL.md)
        w.history.sha = sha
        read = getattr(api, "commit_time", None)  # a local checkout standing in for GitHub (--source) has no commit times
        repository = request.feedback_repository or engine.catalog.record(request.customer).repository
        w.history.committed_at = read(repository, sha) if read and not dry_run else None

    from engine.review_loop import Registry  # which review stacks exist: the run history says

    outcome = triggers.handle(request, engine, api, settings.run_url, operation=operation, on_commit=on_commit,
                              reviews=Registry(w.history.store))
    warnings = [f"GitHub feedback call failed (the run's result is unaffected): {line}" for line in outcome.feedback.log]
    if outcome.dry_run is None:
        return Outcome(outcome.to_dict(), lambda: render_run(outcome.result), outcome.result.exit_code, warnings)
    warnings += [f"a real run would refuse this event: {refusal}" for refusal in outcome.dry_run["would_refuse"]]
    text = lambda: render_run(outcome.result) + "\n" + render_dry_run(outcome.dry_run, api.planned, outcome.feedback.repository)  # noqa: E731
    return Outcome(outcome.to_dict(), text, outcome.result.exit_code, warnings)


VERBS = (
    Verb("event", run, (arg("event_name"), arg("payload_path", type=FILE), ENV, LOCK, JSON,
                        opt("--dry-run", is_flag=True, help="Change nothing: preview instead of apply; print every GitHub write and "
                                                             "state write a real run would make."),
                        opt("--source", type=click.Path(file_okay=False, path_type=Path), metavar="PATH",
                            help="With --dry-run: a local checkout of the customer's repository stands in for GitHub (no credentials "
                                 "needed; custom properties from the tenant record)."),
                        opt("--customer", help="For pull_request/push events of the manager repository: the customer to run."),
                        opt("--mode", type=click.Choice(["plan", "apply"]),
                            help="Override the mode the event asks for (plan or apply; a close is never overridden).")),
         'Handle a GitHub event: plan or apply, and report to the customer\'s repository ("$GITHUB_EVENT_NAME" "$GITHUB_EVENT_PATH").'),
)
