"""``engine not-applied CUSTOMER --at SHA --env E… --reason TEXT``: report environments a deploy workflow did not apply.

``engine up`` stops at the first failed environment and reports the rest as not run. The deploy workflow
applies each environment in its own job, chained in file order; when one fails (or its approval is
rejected, or the run is cancelled) GitHub skips the later ones, which would leave their commit status
``infra/<env>`` pending forever — and the customer's wait-for-infra job waiting for it. This writes the
final answer instead: ``error``, "not run: REASON", for each environment named.
"""

from __future__ import annotations

import re

from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.config import ENVIRONMENT_PATTERN
from engine.errors import InputError
from engine.reporters.github import Feedback
from engine.untrusted import escape_inline
from engine.wiring import Wiring
from engine.commands.options import CUSTOMER, DRY_RUN, JSON, Verb, opt


def run(w: Wiring, customer: str, at: str, environments: tuple[str, ...], reason: str, dry_run: bool) -> Outcome:
    check_customer_id(customer)
    if at and not re.fullmatch(r"[0-9a-f]{40}", at):
        raise InputError(f"--at {at[:60]!r} is not a commit (40 hexadecimal characters; empty = the default branch's head)")
    bad = [e for e in environments if not re.fullmatch(ENVIRONMENT_PATTERN, e)]
    if not environments or bad:
        raise InputError(f"--env {bad[0][:40]!r} is not an environment name" if bad else "name the environments that were not applied: --env ENV")
    reason = " ".join(reason.split())
    if not reason:
        raise InputError("--reason is empty: say why the environments were not applied")
    record = w.engine().catalog.record(customer)
    api = w.github(dry_run=dry_run)
    sha = at or api.default_branch_head(record.repository)[1]
    feedback = Feedback(api, record.repository, sha, None, "apply", w.github_settings().run_url)
    for environment in environments:
        feedback.status(environment, "error", f"not run: {reason}")
    data = {"customer": customer, "repository": record.repository, "sha": sha, "environments": list(environments), "reason": reason,
            "failed_calls": feedback.log, "dry_run_writes": [x.describe() for x in api.planned]}
    text = f"{record.repository}@{sha[:7]}: " + ", ".join(f"infra/{e}" for e in environments) + f" = error (not run: {escape_inline(reason)})"
    return Outcome(data, text, 1 if feedback.log else 0, [f"GitHub call failed: {line}" for line in feedback.log])


VERBS = (
    Verb("not-applied", run, (CUSTOMER, opt("--env", "environments", multiple=True, required=True, metavar="ENV",
                                            help="An environment that was not applied (repeatable)."), JSON, DRY_RUN,
                              opt("--at", default="", metavar="SHA", help="The customer's commit (empty = its default branch's head)."),
                              opt("--reason", required=True, help="Why: shown as the status description \"not run: REASON\".")),
         "Report environments a deploy did not apply: commit status infra/<env> = error, so nothing waits for them."),
)
