"""``engine rollout plan|apply|report``: a provider change (programs, modules, playbooks, tenant records) rolled out
to every customer it affects, with ONE summary comment on the manager pull request.

- ``plan --changed-from FILE --pr N``: preview every affected customer × environment (each customer in its
  own process, ``--parallel`` at a time) and write the summary comment on pull request N.
- ``apply CUSTOMER --env E [--after P --results DIR]``: one stack of the rollout (one job of the workflow's
  matrix): applied only when the customer's previous environment P succeeded (its result is in DIR), else
  reported as not run — a customer's production never goes ahead of its staging.
- ``report --changed-from FILE --results DIR --pr N``: the results of every job, collected, in the same
  comment; a stack whose job left no result is reported as failed.

Exit 0 everything succeeded, 1 a stack failed (the others went on), 2 bad input.
"""

from __future__ import annotations

import click
import os
from pathlib import Path

from engine import fanout
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.operate import progress_wanted
from engine.commands.selection import select_customers
from engine.errors import InputError
from engine.reporters.console import ConsoleProgress, render_run
from engine.reporters.fleet import FleetProgress, render_table
from engine.reporters.rollout import SummaryComment, render_details, render_summary
from engine.results import Operation, RunResult, StackResult, Status
from engine.wiring import Wiring
from engine.commands.options import CUSTOMER, DRY_RUN, ENV, FILE, JSON, LOCK, PARALLEL, QUIET, Verb, opt


def plan(w: Wiring, changed_from: Path, pr: int | None, parallel: int, details: Path | None, dry_run: bool, quiet: bool = False) -> Outcome:
    engine = w.engine()
    customers = select_customers(engine, (), False, changed_from)
    targets = engine.plan_many(customers)  # everything is loaded, validated and planned before the first process starts
    for tool in sorted({t.tool for t in targets}):
        w.runner(tool).prepare([t for t in targets if t.tool == tool])  # tools resolved once: children never race on installs
    settings = {"ENGINE_CATALOG": str(engine.catalog.root), "ENGINE_HOME": str(w.home.root)}
    fleet = fanout.run_fleet(customers, "preview", parallel=parallel, extra_args=["--lock-timeout", str(w.lock_timeout)],
                             settings=settings, cwd=engine.catalog.root, progress=FleetProgress(enabled=not quiet, total=len(customers)))
    return _report(w, fleet, "plan", pr, details, dry_run)


def apply(w: Wiring, customer: str, environments: tuple[str, ...], after: str | None, results: Path | None,
          lock_timeout: float = 0.0, quiet: bool = False) -> Outcome:
    check_customer_id(customer)
    if len(environments) != 1:
        raise InputError("name the one environment this job applies: --env ENV")
    if after and results is None:
        raise InputError("--after needs --results DIR (where the previous environment's job left its result)")
    w.lock_timeout = lock_timeout
    engine = w.engine()
    tenant = engine.load(customer)  # read once (a tenant without a local source: from its repository)
    (target,) = engine.plan(customer, list(environments), tenant)
    if after:
        if after not in tenant.config.environments:
            raise InputError(f"customer {customer!r} has no environment {after!r} (--after)")
        previous = fanout.stack_results(results).get((customer, after))  # type: ignore[arg-type]
        if previous is None or previous.get("status") != Status.SUCCEEDED:
            why = f"{after} {previous['status']}" if previous else f"{after} left no result"
            result = RunResult(customer, Operation.UP, [StackResult.for_target(target, Operation.UP, Status.SKIPPED, error=f"not run because {why}")])
            return Outcome(result.to_dict(), lambda: render_run(result), 0, [f"{customer}/{target.environment} not applied: {why}"])
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted(quiet)))
    result = engine.run(customer, Operation.UP, list(environments), tenant)
    return Outcome(result.to_dict(), lambda: render_run(result), result.exit_code)


def report(w: Wiring, changed_from: Path, results: Path, pr: int | None, details: Path | None, dry_run: bool) -> Outcome:
    engine = w.engine()
    if not results.is_dir():
        raise InputError(f"--results {results} is not a directory")
    targets = engine.plan_many(select_customers(engine, (), False, changed_from))
    fleet = fanout.fleet_from_results("up", [(t.customer, t.environment, t.tool) for t in targets], fanout.stack_results(results))
    return _report(w, fleet, "apply", pr, details, dry_run)


def _report(w: Wiring, fleet: fanout.FleetResult, mode: str, pr: int | None, details: Path | None, dry_run: bool) -> Outcome:
    run_url = w.github_settings().run_url
    data = fleet.to_dict()
    warnings: list[str] = []
    if details is not None:
        try:
            with open(details, "a", encoding="utf-8") as fh:
                fh.write(render_details(fleet, mode=mode, run_url=run_url) + "\n")
        except OSError as exc:
            warnings.append(f"cannot write the details to {details}: {exc.strerror}")
    if pr is not None:
        manager = os.environ.get("GITHUB_REPOSITORY")
        if not manager:
            raise InputError("--pr needs GITHUB_REPOSITORY (the manager repository whose pull request gets the summary)")
        comment = SummaryComment(w.github(dry_run=dry_run), manager, None, pr, mode, run_url)
        data["comment"] = {"repository": manager, "pr": pr, "action": comment.upsert(render_summary(fleet, mode=mode, run_url=run_url)),
                           "failed_calls": comment.log, "dry_run_writes": [x.describe() for x in comment.api.planned]}
        warnings += [f"GitHub call failed (the rollout's result is unaffected): {line}" for line in comment.log]
    return Outcome(data, lambda: render_table(fleet) if fleet.runs else "no customer's stacks are affected", fleet.exit_code, warnings)


PR = opt("--pr", type=click.IntRange(1, 10**9), metavar="N", help="Write the summary comment on this pull request of $GITHUB_REPOSITORY.")
DETAILS = opt("--details", type=FILE, metavar="FILE", help='Append every stack\'s full plan or result (Markdown) to FILE, e.g. "$GITHUB_STEP_SUMMARY".')
CHANGED = opt("--changed-from", type=FILE, metavar="FILE", required=True,
              help="The changed files (e.g. `git diff --name-only`): customers whose stacks they affect.")
RESULTS = click.Path(file_okay=False, path_type=Path)
VERBS = (
    Verb("plan", plan, (CHANGED, PR, PARALLEL, DETAILS, DRY_RUN, JSON, QUIET),
         "Preview every customer × environment a provider change affects; ONE summary comment on the pull request.", group="rollout"),
    Verb("apply", apply, (CUSTOMER, ENV, JSON, LOCK, QUIET,
                          opt("--results", type=RESULTS, metavar="DIR", help="Where the rollout's jobs left their results."),
                          opt("--after", metavar="ENV", help="Apply only if this environment's job succeeded (its result is in --results).")),
         "Apply one stack of a rollout (one matrix job), after the customer's previous environment succeeded.", group="rollout"),
    Verb("report", report, (CHANGED, opt("--results", type=RESULTS, metavar="DIR", required=True, help="Where the rollout's jobs left their results."),
                            PR, DETAILS, DRY_RUN, JSON),
         "Collect a rollout's results into the summary comment; a stack without a result counts as failed.", group="rollout"),
)
