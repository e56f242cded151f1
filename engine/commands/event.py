"""``engine event NAME PAYLOAD``: handle a GitHub event — plan or apply, and report to the customer's repository."""

from __future__ import annotations

from pathlib import Path

from engine import triggers
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.operate import progress_wanted
from engine.events import NothingToDo, load_event
from engine.reporters.console import ConsoleProgress, render_run
from engine.wiring import Wiring


def run(w: Wiring, event_name: str, payload_path: Path, customer: str | None, mode: str | None,
        environments: tuple[str, ...], dry_run: bool, lock_timeout: float = 0.0) -> Outcome:
    w.lock_timeout = lock_timeout
    if customer is not None:
        check_customer_id(customer)
    request = load_event(event_name, payload_path, customer=customer, mode=mode, environments=environments)
    if isinstance(request, NothingToDo):  # a deleted ref, a tag, a labeled pull request…: nothing is read, run or written
        return Outcome(request.to_dict(), f"nothing to do: {request.reason}")
    triggers.check_request(request)
    w.history.sha = request.sha
    settings = w.github_settings()
    engine = w.engine()
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted()))
    outcome = triggers.handle(request, engine, w.github(dry_run=dry_run), settings.run_url,
                              on_commit=lambda sha: setattr(w.history, "sha", sha))
    warnings = [f"GitHub feedback call failed (the run's result is unaffected): {line}" for line in outcome.feedback.log]
    return Outcome(outcome.to_dict(), lambda: render_run(outcome.result), outcome.result.exit_code, warnings)
