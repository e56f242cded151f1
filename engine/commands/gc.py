"""``engine gc``: destroy review stacks not deployed for longer than a TTL (engine/review_loop.py)."""

from __future__ import annotations

from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.operate import progress_wanted
from engine.reporters.console import ConsoleProgress
from engine.reporters.review import render_gc
from engine.review import parse_ttl
from engine.review_loop import Registry, collect
from engine.wiring import Wiring
from engine.commands.options import CUSTOMERS, JSON, QUIET, Verb, opt


def run(w: Wiring, customers: tuple[str, ...], ttl: str, dry_run: bool, quiet: bool = False) -> Outcome:
    ttl_s = parse_ttl(ttl)
    engine = w.engine()
    for customer in customers:
        engine.catalog.record(check_customer_id(customer))  # an unknown customer is bad input before anything runs
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted(quiet)))
    github = (lambda: w.github()) if w.has_github_credentials() else (lambda: None)
    result = collect(engine, Registry(w.history.store), ttl_s, customers=tuple(customers), dry_run=dry_run, github=github,
                     run_url=w.github_settings().run_url)
    return Outcome(result.to_dict(), lambda: render_gc(result), result.exit_code)


VERBS = (
    Verb("gc", run, (CUSTOMERS, JSON, QUIET,
                     opt("--ttl", default="72h", show_default=True, metavar="DURATION",
                         help="Destroy review stacks not deployed for longer than this: 30s, 90m, 72h, 3d."),
                     opt("--dry-run", is_flag=True, help="Destroy nothing: list what would be destroyed.")),
         "Destroy the review stacks (pr-<number>) not deployed for longer than --ttl, across the fleet or for CUSTOMERS."),
)
