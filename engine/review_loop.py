"""Review stacks at work: deployed with a pull request's plan, destroyed when it closes, collected by ``engine gc``.

``engine/review.py`` decides (names, slots, the review stack's configuration, which stacks are live); this module
runs review stacks through the ordinary ``Engine`` and reports them through the ordinary ``Feedback``: status
``infra/pr-<number>``, its own PR comment (one per customer × environment) with the outputs, a deployment.  The run
history is the record of which review stacks exist (``Registry``): every up and destroy of one is a row there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from engine import locks
from engine.catalog import Tenant
from engine.config import CustomerConfig, TenantRecord
from engine.errors import EngineError, OperationError
from engine.events import DISPATCHES, RunRequest
from engine.home import EngineHome
from engine.planning import select_tool
from engine.reporters.github import Feedback
from engine.reporters.review import render_destroyed
from engine.results import Operation, RunResult, StackResult, Status
from engine.review import HistoryRow, ReviewStack, environment_name, preferred_slot, replay, review_config, slot_for
from engine.stream import StackDone

if TYPE_CHECKING:
    from engine.github import GitHubAPI
    from engine.history import HistoryStore
    from engine.operations import Engine

_ROWS = ("SELECT id, customer, environment, operation, status, finished_at, sha FROM runs "
         "WHERE environment LIKE ? AND operation IN ('up', 'destroy')")


class Registry:
    """Which review stacks exist: replayed from the run history (``engine.review.replay``)."""

    def __init__(self, store: "HistoryStore | None"):
        self.store = store

    def live(self, customer: str | None = None) -> dict[tuple[str, str], ReviewStack]:
        """The live review stacks (of ``customer``, or of the fleet).  Raises ``OperationError`` when the history cannot be read."""
        if self.store is None:
            raise OperationError("the run history is not available, so which review stacks exist is unknown",
                                 hint="review stacks need a readable run history: check ENGINE_HISTORY_URL")
        text, params = _ROWS, ["pr-%"]
        if customer is not None:
            text, params = text + " AND customer = ?", [*params, customer]
        try:
            rows = self.store.select(text + " ORDER BY id", tuple(params))
        except Exception as exc:  # noqa: BLE001 - any driver error: the message names the store, never its password
            raise OperationError(f"cannot read the run history in {self.store.where}: {self.store.describe_error(exc)}",
                                 hint="check ENGINE_HISTORY_URL (or $ENGINE_HOME/history.sqlite3)") from None
        return replay([HistoryRow(**row) for row in rows])


def wanted(request: RunRequest, record: TenantRecord, manager: str | None) -> bool:
    """A customer's pull request plan (a dispatch from its repository) of a tenant with review stacks."""
    return (record.review_stacks and request.event in DISPATCHES and manager is None and request.pr is not None
            and request.mode == "plan" and request.requested_mode == "plan")


def _refused(record: TenantRecord, environment: str, operation: Operation, reason: str) -> StackResult:
    return StackResult(customer=record.customer, environment=environment, stack=f"{record.customer}/{environment}",
                       tool=select_tool(record), operation=operation, status=Status.FAILED, error=reason)


def _with_config(tenant: Tenant, config: CustomerConfig) -> Tenant:
    return dataclasses.replace(tenant, config=config)


def deploy(request: RunRequest, tenant: Tenant, engine: "Engine", api: "GitHubAPI", run_url: str | None, registry: Registry,
           pull: dict | None, *, dry_run: bool = False) -> tuple[StackResult | None, Feedback]:
    """Create or update the review stack of ``request``'s pull request (a preview under ``dry_run``), reported on the
    pull request.  None for a pull request from a fork: it never gets one.  A refusal (no free slot, no history) is a
    failed result with the reason, reported the same way — and not recorded, so it holds no slot."""
    assert request.pr is not None
    record, environment = tenant.record, environment_name(request.pr)
    feedback = Feedback(api, record.repository, request.sha, request.pr, "plan" if dry_run else "apply", run_url,
                        requested_mode="plan" if dry_run else "apply")
    head = ((pull or {}).get("head") or {}).get("repo") or {}
    if head.get("full_name") != record.repository:
        return None, feedback
    operation = Operation.PREVIEW if dry_run else Operation.UP
    try:
        slot = slot_for(record.customer, request.pr, registry.live(record.customer))
    except OperationError as exc:
        slot = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    if isinstance(slot, str):
        refused = _refused(record, environment, operation, slot)
        feedback.stack_done(refused)
        return refused, feedback
    review = _with_config(tenant, review_config(tenant.config, request.pr, slot))
    try:
        targets = engine.plan(record.customer, [environment], review)
        if any(engine.runner_key(t) == "spacelift" for t in targets):
            raise OperationError("review stacks are not available for tenants Spacelift executes")
    except EngineError as exc:
        refused = _refused(record, environment, operation, exc.message)
        feedback.stack_done(refused)
        return refused, feedback
    feedback.started(targets)
    unsubscribe = engine.stream.subscribe(lambda event: feedback.stack_done(event.result) if isinstance(event, StackDone) else None)
    try:
        result = engine.run(record.customer, operation, [environment], review)
    except EngineError as exc:
        refused = _refused(record, environment, operation, exc.message)
        feedback.stack_done(refused)
        return refused, feedback
    finally:
        unsubscribe()
    return result.stacks[0], feedback


def stand_in_config(customer: str) -> CustomerConfig:
    """A customer file for destroying a review stack whose own file cannot be read any more (deleted, invalid): a destroy
    deletes what the state holds, whatever the settings say."""
    return CustomerConfig.model_validate({"project_name": customer, "environments": {"staging": {"instance_type": "t3.micro"}}})


def destroy(engine: "Engine", tenant: Tenant | None, record: TenantRecord, stack: ReviewStack | None, pr: int, *,
            dry_run: bool = False) -> StackResult:
    """Destroy ``pr``'s review stack with the base settings of ``tenant``'s customer file (a stand-in when it could not be
    read), then remove what the engine kept for it on this machine.  A dry run destroys nothing: the result says what
    would be."""
    environment = environment_name(pr)
    record = tenant.record if tenant is not None else record  # with the repository's custom properties, when read from GitHub
    config = tenant.config if tenant is not None else stand_in_config(record.customer)
    slot = stack.slot if stack is not None and stack.slot is not None else preferred_slot(pr)
    review = Tenant(record=record, config=review_config(config, pr, slot), record_path=None, config_path=None)  # type: ignore[arg-type]
    if dry_run:
        return StackResult(customer=record.customer, environment=environment, stack=f"{record.customer}/{environment}",
                           tool=select_tool(record), operation=Operation.DESTROY, status=Status.SKIPPED,
                           error=f"dry run: {record.customer}/{environment} would be destroyed")
    try:
        result = engine.run(record.customer, Operation.DESTROY, [environment], review)
    except EngineError as exc:
        return _refused(record, environment, Operation.DESTROY, exc.message)
    (done,) = result.stacks
    if done.status in (Status.SUCCEEDED, Status.NOT_DEPLOYED):
        forget(engine.home, record, environment)
    return done


def forget(home: EngineHome, record: TenantRecord, environment: str) -> None:
    """After a review stack is destroyed: its lock file and the empty folders the local target and the tools leave.

    Only empty folders are removed (a file left in one would be a leak worth seeing, not hiding), and the lock file
    only while this process holds it."""
    lease = locks.acquire(home.root / "locks", record.customer, environment, "forget", 0)
    if isinstance(lease, locks.Lease):
        with lease:
            lease.path.unlink(missing_ok=True)
    for folder in (home.local_root / record.customer / environment, home.work_dir(record.customer, environment)):
        _remove_empty(folder)


def _remove_empty(folder: Path) -> None:
    if not folder.is_dir() or folder.is_symlink():
        return
    for child in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir() and not child.is_symlink():
            try:
                child.rmdir()
            except OSError:
                pass
    try:
        folder.rmdir()
    except OSError:
        pass


def report_destroyed(feedback: Feedback, result: StackResult, why: str, *, comment: bool = True) -> None:
    """The review stack's status, its comment's last edit and its deployment marked inactive (best effort)."""
    gone = result.status in (Status.SUCCEEDED, Status.NOT_DEPLOYED)
    if gone:
        feedback.status(result.environment, "success", f"review stack destroyed {why}")
    else:
        feedback.status(result.environment, "failure", f"destroy failed: {(result.error or 'failed').splitlines()[0]}")
    if feedback.pr and comment:
        feedback.upsert_comment(result.customer, result.environment,
                                render_destroyed(result, why=why, sha=feedback.sha, run_url=feedback.run_url))
    if gone and feedback.sha:
        deployments = feedback._try("read deployments", lambda: feedback.api.deployments(feedback.repository, feedback.sha, result.environment))
        for deployment in deployments or []:
            body = {"state": "inactive", "description": f"review stack destroyed {why}"[:140]}
            feedback._try(f"deployment status {result.environment}",
                          lambda: feedback.api.create_deployment_status(feedback.repository, deployment["id"], body))


def close(request: RunRequest, record: TenantRecord, engine: "Engine", api: "GitHubAPI", run_url: str | None, registry: Registry,
          load: Callable[[], Tenant], *, dry_run: bool = False) -> tuple[RunResult, Feedback]:
    """A closed (or merged) pull request: destroy its review stack and say so on it.

    A tenant without review stacks has nothing to destroy unless the history shows one (review_stacks was turned off
    while it lived); with them, the destroy always runs — finding nothing is quick, and a stack whose history row was
    lost is not left behind."""
    assert request.pr is not None
    environment = environment_name(request.pr)
    feedback = Feedback(api, record.repository, request.sha, request.pr, "apply", run_url, requested_mode="apply")
    result = RunResult(customer=record.customer, operation=str(Operation.DESTROY))
    try:
        known = registry.live(record.customer).get((record.customer, environment))
    except OperationError:
        if not record.review_stacks:
            raise
        known = None
    if known is None and not record.review_stacks:
        return result, feedback
    try:
        tenant = load()
    except EngineError:
        tenant = None  # the stand-in: the pull request's customer file may be invalid; the stack goes all the same
    done = destroy(engine, tenant, record, known, request.pr, dry_run=dry_run)
    result.stacks.append(done)
    if known is not None or done.status not in (Status.NOT_DEPLOYED, Status.SKIPPED):
        report_destroyed(feedback, done, f"when pull request #{request.pr} was closed")
    return result, feedback


# -- engine gc ---------------------------------------------------------------------------------------------------


@dataclass
class Collected:
    """One live review stack seen by ``engine gc``: kept (younger than the TTL), destroyed, would-destroy or failed."""

    stack: ReviewStack
    age_s: float
    action: str
    result: StackResult | None = None

    def to_dict(self) -> dict:
        data = {**self.stack.to_dict(), "age_s": round(self.age_s), "action": self.action}
        if self.result is not None:
            data["error"] = self.result.error if self.result.status not in (Status.SUCCEEDED, Status.NOT_DEPLOYED) else None
            data["deleted"] = self.result.changes.delete
        return data


@dataclass
class GcResult:
    ttl_s: int
    dry_run: bool
    stacks: list[Collected] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if any(c.action == "failed" for c in self.stacks) else 0

    def count(self, action: str) -> int:
        return sum(1 for c in self.stacks if c.action == action)

    def to_dict(self) -> dict:
        return {"ok": self.exit_code == 0, "ttl_s": self.ttl_s, "dry_run": self.dry_run,
                "destroyed": self.count("destroyed"), "failed": self.count("failed"), "kept": self.count("kept"),
                "stacks": [c.to_dict() for c in self.stacks]}


def _age(stack: ReviewStack, now: dt.datetime) -> float:
    deployed = dt.datetime.fromisoformat(stack.deployed_at.replace("Z", "+00:00"))
    return (now - deployed).total_seconds()


def collect(engine: "Engine", registry: Registry, ttl_s: int, *, customers: tuple[str, ...] = (), dry_run: bool = False,
            now: dt.datetime | None = None, github: "Callable[[], GitHubAPI | None]" = lambda: None,
            run_url: str | None = None) -> GcResult:
    """Destroy every live review stack (of ``customers``, or of the fleet) not deployed for longer than ``ttl_s``.

    Its customer file is read as for any run (local source, else the repository's default branch); when it cannot be,
    the stack is destroyed with a stand-in.  With GitHub credentials (``github``), the pull request hears of it: its
    status, the comment's last edit, the deployment marked inactive.  Raises ``OperationError`` when the history cannot
    be read."""
    now = now or dt.datetime.now(dt.timezone.utc)
    live = registry.live(customers[0]) if len(customers) == 1 else registry.live()
    result = GcResult(ttl_s=ttl_s, dry_run=dry_run)
    for key in sorted(live, key=lambda k: (k[0], live[k].pr)):
        stack = live[key]
        if customers and stack.customer not in customers:
            continue
        age = _age(stack, now)
        if age <= ttl_s:
            result.stacks.append(Collected(stack, age, "kept"))
            continue
        try:
            record = engine.catalog.record(stack.customer)
        except EngineError as exc:
            failed = StackResult(customer=stack.customer, environment=stack.environment, stack=f"{stack.customer}/{stack.environment}",
                                 tool="?", operation=Operation.DESTROY, status=Status.FAILED, error=exc.message)
            result.stacks.append(Collected(stack, age, "failed", failed))
            continue
        try:
            tenant = engine.load(stack.customer)
        except EngineError:
            tenant = None
        done = destroy(engine, tenant, tenant.record if tenant is not None else record, stack, stack.pr, dry_run=dry_run)
        action = "would-destroy" if dry_run else ("destroyed" if done.status in (Status.SUCCEEDED, Status.NOT_DEPLOYED) else "failed")
        result.stacks.append(Collected(stack, age, action, done))
        api = None if dry_run else github()
        if api is not None:
            feedback = Feedback(api, record.repository, stack.sha, stack.pr, "apply", run_url, requested_mode="apply")
            report_destroyed(feedback, done, f"after {_duration(age)} without a deploy (engine gc, TTL {_duration(ttl_s)})")
    return result


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
