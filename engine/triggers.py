"""From a GitHub event to a run with feedback: load → validate → plan targets → run → report.

The same data path as ``engine up``, with two differences: the customer file is read
from the customer's repository at the triggering commit, and the repository's custom
properties override the tenant record where the record allows it.  Everything the event
says was validated by ``engine.events``; which repository is read and written comes from
the tenant record.

Before anything is written to GitHub, a dispatch must prove it comes from the tenant's
repository (``authenticate``: an HMAC-SHA256 signature made with the tenant's dispatch
secret, see docs/SETUP.md), and a pull request it names must be an open pull request of
that repository whose head is the dispatched commit (``check_pull_request``).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine import dry_run as dry_run_mod
from engine.catalog import Tenant

from engine.config import TenantRecord
from engine.properties import apply_custom_properties
from engine.validation import validate_customer_file
from engine.documents import load_text
from engine.errors import ConfigError, InputError, Problem
from engine.events import DISPATCHES, RunRequest
from engine.github import GitHubAPI
from engine.operations import Engine
from engine.reporters.github import Feedback
from engine.dry_run import DryRunViolation
from engine.results import Operation, RunResult
from engine.stream import StackDone

if TYPE_CHECKING:
    from engine.review_loop import Registry


@dataclass
class TriggerOutcome:
    request: RunRequest
    result: RunResult
    feedback: Feedback
    dry_run: dict | None = None  # a dry run: what ran instead, what a real run would refuse, apply and write

    def to_dict(self) -> dict:
        data = {**self.result.to_dict(), "request": self.request.to_dict(), "feedback": {
            "repository": self.feedback.repository, "failed_calls": self.feedback.log,
            "dry_run_writes": [w.describe() for w in self.feedback.api.planned]}}
        if self.dry_run is not None:
            data["dry_run"] = {**self.dry_run, "would_write": {**self.dry_run["would_write"], "github": data["feedback"]["dry_run_writes"]}}
        return data


def remote_tenant(api: GitHubAPI, record: TenantRecord, ref: str | None = None) -> Tenant:
    """The tenant with its customer file read from its repository (default branch unless ``ref``)
    and its custom properties applied.  Raises ``ConfigError`` naming the file, line and key."""
    record = apply_custom_properties(record, api.custom_properties(record.repository))
    # the offline stand-in names the file in the local checkout; any other API the way GitHubAPI does
    shown = getattr(api, "file_name", lambda *where: GitHubAPI.file_name(api, *where))(record.repository, record.config_path, ref)
    raw = api.file_at(record.repository, record.config_path, ref)
    if raw is None:
        raise ConfigError([Problem(shown, None, "<document>", "file not found in the repository" + (" at this commit" if ref else ""))])
    config = validate_customer_file(load_text(raw, shown), record.target)  # and deployable on the tenant's target
    return Tenant(record=record, config=config, record_path=None, config_path=None)  # type: ignore[arg-type] - not local files


# JSON object {"<customer>": "<that customer's dispatch secret>", …}; during a rotation an entry may be a
# list ["<new>", "<old>"] (a dispatch signed with any of them is accepted).
DISPATCH_SECRETS = "ENGINE_DISPATCH_SECRETS"
MIN_SECRET_LENGTH = 32
# A signature stays valid as long as GitHub may still run the job it started: a production approval can
# wait up to 30 days, and a run can be re-run for 30 days.  Signatures from the future allow for clock skew.
MAX_SIGNATURE_AGE = 30 * 24 * 3600
MAX_CLOCK_SKEW = 300


def dispatch_secrets(customer: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The customer's dispatch secret(s) from ``ENGINE_DISPATCH_SECRETS``.  Raises ``InputError``; never shows a secret."""
    env = os.environ if env is None else env
    refused = f"dispatch for customer {customer!r} refused"
    raw = env.get(DISPATCH_SECRETS) or ""
    if not raw:
        raise InputError(f"{refused}: {DISPATCH_SECRETS} is not set, so no dispatch can be verified (docs/SETUP.md, dispatch authentication)")
    try:
        table = json.loads(raw)
    except (ValueError, RecursionError):
        table = None
    if not isinstance(table, dict):
        raise InputError(f'{refused}: {DISPATCH_SECRETS} is not a JSON object {{"customer-id": "secret", …}}')
    entry = table.get(customer)
    if entry is None:
        raise InputError(f"{refused}: {DISPATCH_SECRETS} has no entry for {customer!r}")
    secrets = entry if isinstance(entry, list) and entry else [entry]
    if not all(isinstance(secret, str) and len(secret) >= MIN_SECRET_LENGTH for secret in secrets):
        raise InputError(f"{refused}: its entry in {DISPATCH_SECRETS} is not a string (or a list of strings) of at least "
                         f"{MIN_SECRET_LENGTH} characters")
    return secrets


def authenticate(request: RunRequest, record: TenantRecord, env: Mapping[str, str] | None = None, now: float | None = None) -> None:
    """Refuse an event that does not prove it may run ``record``'s stacks.  Raises ``InputError`` (exit 2), writes nothing.

    ``allowed_senders`` (when set) restricts every event.  A dispatch must also carry a valid signature
    made with the tenant's dispatch secret, unless the record opts out (``dispatch_auth: allowed_senders``).
    """
    refused = f"dispatch for customer {record.customer!r} refused"
    if record.allowed_senders and request.sender not in record.allowed_senders:
        raise InputError(f"{request.sender or 'an unknown sender'} may not trigger runs for customer {record.customer!r}"
                         f" (allowed_senders in stacks/{record.customer}.yml lists who may)")
    if request.event not in DISPATCHES or record.dispatch_auth == "allowed_senders":
        return
    signature = request.signature
    key = "client_payload.signature" if request.event == "repository_dispatch" else "inputs.signature"
    if signature is None:
        raise InputError(f"{refused}: it is not signed ({key} is missing; docs/SETUP.md, dispatch authentication)")
    # Every candidate is compared, in constant time, so the time taken says nothing about which one matched.
    matches = [hmac.compare_digest(hmac.new(secret.encode(), signature.message, "sha256").hexdigest().encode(), signature.mac.encode())
               for secret in dispatch_secrets(record.customer, env)]
    if not any(matches):
        raise InputError(f"{refused}: {key} does not match (signed with another secret, or the payload was changed after signing)")
    age = (time.time() if now is None else now) - signature.timestamp
    if age > MAX_SIGNATURE_AGE:
        raise InputError(f"{refused}: it was signed {int(age // 86400)} days ago; signatures are accepted for {MAX_SIGNATURE_AGE // 86400} days")
    if age < -MAX_CLOCK_SKEW:
        raise InputError(f"{refused}: it is signed {int(-age)} seconds in the future")


def check_pull_request(request: RunRequest, record: TenantRecord, api: GitHubAPI) -> dict | None:
    """A pull request a dispatch names must be an open pull request of the tenant's repository whose head is
    the dispatched commit: otherwise a dispatch could aim comments at any issue or pull request.  (A ``close``
    names a closed one.)  Returns the pull request as GitHub describes it, None when the event names none."""
    if request.event not in DISPATCHES or request.pr is None:
        return None
    refused = f"dispatch for customer {record.customer!r} refused"
    if not request.sha:
        raise InputError(f"{refused}: pull request #{request.pr} needs the commit (sha) it is about")
    pull = api.pull_request(record.repository, request.pr)
    if pull is None:
        raise InputError(f"{refused}: {record.repository} has no pull request #{request.pr}")
    state = "closed" if request.mode == "close" else "open"
    if pull.get("state") != state:
        raise InputError(f"{refused}: pull request #{request.pr} of {record.repository} is {pull.get('state')}, not {state}")
    head = (pull.get("head") or {}).get("sha")
    if head != request.sha:
        raise InputError(f"{refused}: the head of pull request #{request.pr} of {record.repository} is "
                         f"{str(head)[:12]}, not the dispatched commit {request.sha[:12]}")
    return pull


def resolve_commit(request: RunRequest, record: TenantRecord, api: GitHubAPI) -> RunRequest:
    """``request`` with its commit: a manual dispatch that names none (an empty ``sha``, documented as "the
    default branch") runs the head of the customer's default branch, for a plan as for an apply.  One read;
    called only after ``authenticate``, so a refused dispatch reads nothing."""
    if request.sha or request.event != "workflow_dispatch":
        return request
    _branch, head = api.default_branch_head(record.repository)
    return dataclasses.replace(request, sha=head)


def feedback_repository(request: RunRequest, env: Mapping[str, str] | None = None) -> str | None:
    """Where a manager-repository event reports: the repository this run belongs to (GITHUB_REPOSITORY),
    which the event's own repository must match; only outside GitHub Actions is the event's taken."""
    if request.feedback_repository is None:
        return None
    env = os.environ if env is None else env
    manager = env.get("GITHUB_REPOSITORY")
    if manager and manager != request.feedback_repository:
        raise InputError(f"the {request.event} event is for {request.feedback_repository}, but this run belongs to {manager}")
    return manager or request.feedback_repository


def _settle_superseded(api: GitHubAPI, record: TenantRecord, request: RunRequest, feedback: Feedback, reason: str) -> None:
    """The plan step of this commit left ``infra/<env>`` pending ("waiting for apply"); it will never be applied,
    so say so — branch protection and customers' wait jobs must not wait on it forever.  Best effort."""
    try:
        environments = list(request.environments) or list(remote_tenant(api, record, request.sha).config.environments)
    except Exception:  # noqa: BLE001 - the commit's file may not even validate: the apply status already says why
        return
    for environment in environments:
        feedback.status(environment, "error", reason)


def handle(request: RunRequest, engine: Engine, api: GitHubAPI, run_url: str | None, *, env: Mapping[str, str] | None = None,
           on_commit: Callable[[str], None] | None = None, operation: Operation | str | None = None,
           reviews: "Registry | None" = None) -> TriggerOutcome:
    """Run what ``request`` asks (or ``operation``) and report it.  Raises ``InputError`` for bad input (after
    reporting it, except when the event is not authentic: then nothing at all is written).

    With a dry-run ``api`` nothing may change: the operation is a preview (an apply is previewed, never run;
    an operation that changes resources raises ``DryRunViolation``), every write is planned, and an event a
    real run would refuse as not authentic is still previewed, the refusal reported in ``TriggerOutcome.dry_run``
    (a dry run shows what would happen; that a real run would refuse is part of it).

    A manual dispatch without a commit runs the head of the customer's default branch; ``on_commit``
    is told the commit that runs once it is known (the run history records it).

    Review stacks (``reviews``: which exist, engine/review_loop.py): a pull request's plan also deploys its review
    stack when the tenant has them, and a ``close`` destroys it."""
    dry_run = api.dry_run
    operation = Operation(operation or (Operation.PREVIEW if dry_run else request.operation))
    if dry_run and operation.changes_resources:
        raise DryRunViolation(f"a dry run must not {operation} {request.customer}")
    record = engine.catalog.record(request.customer)
    refusals: list[str] = []
    try:
        authenticate(request, record, env)
    except InputError as exc:
        if not dry_run:
            raise
        refusals.append(exc.message)
    check_request(request)
    request = resolve_commit(request, record, api)
    if on_commit is not None and request.sha:
        on_commit(request.sha)
    manager = feedback_repository(request, env)
    pull = check_pull_request(request, record, api)
    repository = manager or record.repository
    if request.mode == "close":  # a closed pull request: its review stack goes, nothing is planned
        from engine.review_loop import Registry, close

        closed, feedback = close(request, record, engine, api, run_url, reviews or Registry(None), lambda: remote_tenant(api, record, request.sha),
                                 dry_run=dry_run)
        return TriggerOutcome(request=request, result=closed, feedback=feedback)
    feedback = Feedback(api, repository, request.sha, request.pr, request.mode, run_url, requested_mode=request.requested_mode)

    if request.mode == "apply" and manager is None:
        # Only what is on the customer's default branch is applied — not a PR head a dispatch names, and
        # not an older commit whose run was queued behind a newer one.
        branch, head = api.default_branch_head(record.repository)
        if head != request.sha:
            _settle_superseded(api, record, request, feedback, f"superseded by {head[:7]} on {branch}: not applied")
            feedback.status("apply", "failure", f"superseded: {request.sha[:7]} is not the head of {branch} ({head[:7]}); nothing applied")
            raise InputError(f"{request.sha[:12]} is not the head of {record.repository}'s {branch} ({head[:12]}): only the default branch is applied",
                             hint="this run was superseded by a newer commit, or the event named a commit that was never merged")
    # A customer PR is read at its commit; manager-repo events read the customer's default branch.
    ref = request.sha if manager is None else None
    try:
        tenant = remote_tenant(api, record, ref)
    except ConfigError as exc:
        feedback.config_rejected(record.customer, record.config_path, exc.problems)
        raise

    environments = list(request.environments) or None
    targets = engine.plan(request.customer, environments, tenant)
    feedback.started(targets)
    reported: set[str] = set()

    def done(event) -> None:
        if isinstance(event, StackDone):
            reported.add(event.result.environment)
            feedback.stack_done(event.result)

    unsubscribe = engine.stream.subscribe(done)  # GitHub feedback is one more subscriber of the run's events
    try:
        result = engine.run(request.customer, operation, environments, tenant)
    except BaseException as exc:
        # Nothing may stay "pending" forever: customers' wait-for-infra jobs would hang.
        reason = exc.message if isinstance(exc, InputError) else f"run aborted: {type(exc).__name__}"
        for target in targets:
            if target.environment not in reported:
                feedback.status(target.environment, "error", reason)
        raise
    finally:
        unsubscribe()
    if reviews is not None:
        from engine.review_loop import deploy, wanted

        if wanted(request, tenant.record, manager):
            stack, review_feedback = deploy(request, tenant, engine, api, run_url, reviews, pull, dry_run=dry_run)
            if stack is not None:
                result.stacks.append(stack)
                feedback.log.extend(review_feedback.log)
    if not dry_run:
        return TriggerOutcome(request=request, result=result, feedback=feedback)
    backends = {t.environment: t.backend_url for t in targets}
    would_apply = [dry_run_mod.would_apply(s, backends.get(s.environment)) for s in result.stacks] if request.mode == "apply" else []
    return TriggerOutcome(request=request, result=result, feedback=feedback, dry_run={
        "requested": str(request.operation), "ran": str(operation),
        "summary": (f"dry run: {operation} ran instead of {request.operation}" if operation != request.operation else f"dry run: {operation}")
                   + "; nothing was applied and no GitHub write was made",
        "would_refuse": refusals, "notes": list(getattr(api, "notes", [])), "would_apply": would_apply,
        "would_write": {"state": [f"{w['stack']}: {w['state']}" for w in would_apply if "state" in w]}})


def check_request(request: RunRequest) -> None:
    """What an event must say, whoever sent it (checked again by ``handle``).

    A ``workflow_dispatch`` may leave the commit out: it means the head of the default branch (``resolve_commit``)."""
    if request.mode == "apply" and not request.sha and request.event != "workflow_dispatch":
        raise InputError("apply needs the commit to deploy (sha)")
    if request.pr is not None and not request.sha:
        raise InputError(f"pull request #{request.pr} needs the commit (sha) it is about")
    if request.mode == "close" and request.pr is None:
        raise InputError("close needs the pull request (pr) whose review stack to destroy")
