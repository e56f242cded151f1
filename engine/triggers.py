"""From a GitHub event to a run with feedback: load → validate → plan targets → run → report.

The same data path as ``engine up``, with two differences: the customer file is read
from the customer's repository at the triggering commit, and the repository's custom
properties override the tenant record where the record allows it.  Everything the event
says was validated by ``engine.events``; which repository is read and written comes from
the tenant record.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.catalog import Tenant
from engine.config import CustomerConfig, Properties, TenantRecord, validate_document
from engine.documents import load_text
from engine.errors import ConfigError, InputError, Problem
from engine.events import RunRequest
from engine.github import GitHubAPI
from engine.operations import Engine
from engine.reporters.github import Feedback
from engine.results import RunResult
from engine.stream import StackDone


@dataclass
class TriggerOutcome:
    request: RunRequest
    result: RunResult
    feedback: Feedback

    def to_dict(self) -> dict:
        return {**self.result.to_dict(), "request": self.request.to_dict(), "feedback": {
            "repository": self.feedback.repository, "failed_calls": self.feedback.log,
            "dry_run_writes": [w.describe() for w in self.feedback.api.planned]}}


def _property_value(name: str, value: object) -> object:
    """GitHub returns strings (and lists for multi-select); convert to what the model expects."""
    if name == "infrastructure_tools" and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if name in ("spacelift_auto_deploy", "drift_auto_remediate") and isinstance(value, str):
        lowered = value.strip().lower()
        return True if lowered == "true" else False if lowered == "false" else value
    return value


def apply_custom_properties(record: TenantRecord, values: dict[str, object]) -> TenantRecord:
    """The tenant record with the repository's custom properties applied where it allows it."""
    allowed = {name: _property_value(name, values[name]) for name in record.property_overrides if values.get(name) is not None}
    if not allowed:
        return record
    merged = {**record.properties.model_dump(), **allowed}
    try:
        properties = Properties.model_validate(merged)
    except Exception as exc:  # pydantic ValidationError: report it against the properties, not a file
        problems = [Problem(f"{record.repository} custom properties", None, ".".join(str(p) for p in e["loc"]),
                            e["msg"].lower()) for e in getattr(exc, "errors", lambda **_: [])(include_url=False)]
        raise ConfigError(problems or [Problem(f"{record.repository} custom properties", None, "<document>", str(exc))]) from None
    return record.model_copy(update={"properties": properties})


def remote_tenant(api: GitHubAPI, record: TenantRecord, ref: str | None = None) -> Tenant:
    """The tenant with its customer file read from its repository (default branch unless ``ref``)
    and its custom properties applied.  Raises ``ConfigError`` naming the file, line and key."""
    record = apply_custom_properties(record, api.custom_properties(record.repository))
    shown = f"{record.repository}/{record.config_path}" + (f"@{ref[:7]}" if ref else "")
    raw = api.file_at(record.repository, record.config_path, ref)
    if raw is None:
        raise ConfigError([Problem(shown, None, "<document>", "file not found in the repository" + (" at this commit" if ref else ""))])
    config = validate_document(load_text(raw, shown), CustomerConfig)
    return Tenant(record=record, config=config, record_path=None, config_path=None)  # type: ignore[arg-type] - not local files


def handle(request: RunRequest, engine: Engine, api: GitHubAPI, run_url: str | None) -> TriggerOutcome:
    """Run what ``request`` asks and report it.  Raises ``InputError`` for bad input (after reporting it)."""
    record = engine.catalog.record(request.customer)
    if record.allowed_senders and request.sender not in record.allowed_senders:
        raise InputError(f"{request.sender or 'an unknown sender'} may not trigger runs for customer {record.customer!r}",
                         hint=f"allowed_senders in stacks/{record.customer}.yml lists who may")
    repository = request.feedback_repository or record.repository
    feedback = Feedback(api, repository, request.sha, request.pr, request.mode, run_url, requested_mode=request.requested_mode)

    if request.mode == "apply" and request.feedback_repository is None:
        # Only what is on the customer's default branch is applied — not a PR head a dispatch names, and
        # not an older commit whose run was queued behind a newer one.
        branch, head = api.default_branch_head(record.repository)
        if head != request.sha:
            feedback.status("apply", "failure", f"superseded: {request.sha[:7]} is not the head of {branch} ({head[:7]}); nothing applied")
            raise InputError(f"{request.sha[:12]} is not the head of {record.repository}'s {branch} ({head[:12]}): only the default branch is applied",
                             hint="this run was superseded by a newer commit, or the event named a commit that was never merged")
    # A customer PR is read at its commit; manager-repo events read the customer's default branch.
    ref = request.sha if request.feedback_repository is None else None
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
        result = engine.run(request.customer, request.operation, environments, tenant)
    except BaseException as exc:
        # Nothing may stay "pending" forever: customers' wait-for-infra jobs would hang.
        reason = exc.message if isinstance(exc, InputError) else f"run aborted: {type(exc).__name__}"
        for target in targets:
            if target.environment not in reported:
                feedback.status(target.environment, "error", reason)
        raise
    finally:
        unsubscribe()
    return TriggerOutcome(request=request, result=result, feedback=feedback)


def check_request(request: RunRequest) -> None:
    if request.mode == "apply" and not request.sha:
        raise InputError("apply needs the commit to deploy (sha)")
