"""The Spacelift runner: a tenant's operations run as Spacelift runs on its stack, reported like local runs.

For a tenant Spacelift executes (``spacelift.yml`` or ``spacelift`` in ``infrastructure_tools``), ``up``
and ``preview`` first bring the tenant's stack up to date (the same reconciliation as ``engine spacelift
sync``, for this one stack: the inputs of this run are its environment variables), then trigger a
tracked (``up``) or proposed (``preview``) run for the manager repository's commit, wait for it with
progress on the event stream, and map its outcome, resource changes and outputs into the same
``StackResult`` the engine's own runners return — so statuses, comments, deployments and history look
the same.

Confirmation follows the engine's own rules: a run waiting for confirmation (``UNCONFIRMED``) is
confirmed when the tenant's ``spacelift_auto_deploy`` is true — for a protected environment
(production) that is only ever asked after the environment's reviewers approved the deploy job, as
today.  With ``spacelift_auto_deploy: false`` the run is left for a person to confirm in Spacelift and
the environment is reported failed "waiting for confirmation", which stops the environments after it.
A run that fails, is discarded or stopped, or outlasts ``run_timeout_s`` is reported as such.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from engine.errors import EngineError, InputError
from engine.home import EngineHome
from engine.planning import StackTarget
from engine.results import SECRET_MASK, Changes, Operation, ResourceChange, StackResult, Status
from engine.runners.base import StackLockHeld, exclusive, locked_result
from engine.spacelift.client import Run, SpaceliftAPI
from engine.spacelift.settings import SpaceliftSettings
from engine.spacelift.sync import SyncPlan, apply, desired_stack, plan_stack, stack_id
from engine.stream import EventStream, Notice, ResourceStep, StackStarted

# Spacelift's per-resource change → the engine's resource action
ACTIONS = {"ADDED": "create", "CHANGED": "update", "DELETED": "delete", "REPLACED": "replace", "MOVED": "move"}
BEFORE_PLAN = {"QUEUED", "READY", "PREPARING", "INITIALIZING", "PLANNING", "PENDING", "UNKNOWN"}
ENDED = {"FINISHED": "finished", "FAILED": "failed", "DISCARDED": "was discarded", "STOPPED": "was stopped",
         "CANCELED": "was canceled", "SKIPPED": "was skipped"}
RUN_TYPES = {Operation.UP: "TRACKED", Operation.REMEDIATE: "TRACKED", Operation.PREVIEW: "PROPOSED"}


class SpaceliftRunner:
    tool = "spacelift"

    def __init__(self, home: EngineHome, stream: EventStream | None = None, *, settings: SpaceliftSettings,
                 api: Callable[[], SpaceliftAPI], auto_deploy: Callable[[str], bool], lock_timeout: float = 0.0,
                 tofu_version: str | None = None, dry_run: bool = False, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.home = home
        self.stream = stream or EventStream()
        self.settings = settings
        self._api = api
        self.auto_deploy = auto_deploy  # customer -> its spacelift_auto_deploy, as the engine loaded the tenant
        self.lock_timeout = lock_timeout
        self.tofu_version = tofu_version
        self.dry_run = dry_run  # --dry-run: the stack is never changed, only what would change is said
        self._sleep = sleep
        self._clock = clock

    @property
    def api(self) -> SpaceliftAPI:
        return self._api()

    def commit(self) -> str | None:
        """The manager repository's commit to run: ``ENGINE_SPACELIFT_COMMIT``, or the workflow's own commit when
        the workflow runs in the manager repository; else Spacelift runs the tracked branch's head."""
        if os.environ.get("ENGINE_SPACELIFT_COMMIT"):
            return os.environ["ENGINE_SPACELIFT_COMMIT"]
        if os.environ.get("GITHUB_REPOSITORY", "").lower() == self.settings.repository.lower():
            return os.environ.get("GITHUB_SHA") or None
        return None

    # -- the runner protocol --

    def prepare(self, targets: list[StackTarget]) -> None:
        for target in targets:
            if target.upstreams:
                raise InputError(f"{target.fqn} consumes other tenants' outputs, which Spacelift-executed stacks do not receive yet",
                                 hint="run this tenant with the engine's own runners (remove it from spacelift.yml `execute`)")
        if targets:
            self.api  # noqa: B018 - credentials are checked before anything runs (exit 2 when missing)

    def deployed_with(self, target: StackTarget) -> bool:
        return False  # the state lives where the stack's vendor settings say; nothing on this machine

    def unlock(self, target: StackTarget, lock_id: str | None) -> str:
        return f"nothing to unlock for {target.fqn}: Spacelift serializes the runs of a stack itself"

    def run(self, target: StackTarget, operation: Operation | str, gate=None) -> StackResult:
        """``gate``: not applied — a Spacelift-executed stack's plan is judged by the provider's Spacelift policies
        (docs/SPACELIFT.md); the engine never sees the plan before Spacelift applies it."""
        operation = Operation(operation)
        started = self._clock()
        label = self._label(target)
        self.stream.publish(StackStarted(target, str(operation), tool_label=label))
        try:
            if operation == Operation.OUTPUTS:
                return self._result(target, operation, Status.SUCCEEDED, started, outputs=self._outputs(target))
            if operation not in RUN_TYPES:
                return self._result(target, operation, Status.FAILED, started, error=(
                    f"`{operation}` of a Spacelift-executed stack runs in Spacelift, not through the engine: "
                    + ("delete the stack with its resources there, then `engine spacelift sync --prune`" if operation == Operation.DESTROY
                       else "use the stack's drift detection and tasks in Spacelift")))
            recovered: list[str] = []
            with exclusive(self.home, target, str(operation), self.lock_timeout, self.stream, recovered):
                return self._run(target, operation, started, label)
        except StackLockHeld as exc:
            return locked_result(target, operation, exc.held, started)
        except EngineError as exc:
            return self._result(target, operation, Status.FAILED, started, error=exc.message)

    # -- one run --

    def _run(self, target: StackTarget, operation: Operation, started: float, label: str) -> StackResult:
        sid = stack_id(target.customer, target.environment)
        auto = self.auto_deploy(target.customer)
        desired = desired_stack(self.settings, target, auto_deploy=auto, passphrase=self.home.passphrase,
                                tofu_version=self.tofu_version or _tofu_version())
        plan = plan_stack(desired, self.api.stack(sid))
        if plan.action == "conflict":
            return self._result(target, operation, Status.FAILED, started, error=plan.error)
        if plan.mutations and self.dry_run:
            would = ", ".join(plan.fields + plan.variables_set) or "with its settings"
            self.stream.publish(Notice(target, f"dry run: would {plan.action} Spacelift stack {sid} ({would})"))
            if plan.action == "create":
                return self._result(target, operation, Status.NOT_DEPLOYED, started)
        elif plan.mutations:
            apply(self.api, SyncPlan([plan]))
            if plan.error:
                return self._result(target, operation, Status.FAILED, started, error=f"could not update stack {sid}: {plan.error}")
            changed = ", ".join(plan.fields + plan.variables_set) or "created"
            self.stream.publish(Notice(target, f"Spacelift stack {sid} {plan.action}d ({changed})" if plan.action != "create"
                                       else f"Spacelift stack {sid} created"))
        run = self.api.trigger_run(sid, self.commit(), RUN_TYPES[operation])
        url = f"{self.api.credentials.endpoint}/stack/{sid}/run/{run.id}"
        self.stream.publish(Notice(target, f"Spacelift run {run.id} ({RUN_TYPES[operation].lower()}): {url}"))
        deadline = self._clock() + self.settings.run_timeout_s  # the run's own time, from its trigger
        seen: set[str] = set()
        resources: list[ResourceChange] | None = None
        confirmed = False
        while True:
            current = self.api.run(sid, run.id)
            if current is None:
                return self._result(target, operation, Status.FAILED, started, error=f"Spacelift run {run.id} on {sid} disappeared")
            run = current
            for state in [h["state"] for h in run.history] + [run.state]:
                if state not in seen:
                    seen.add(state)
                    self.stream.publish(Notice(target, f"Spacelift run {run.id}: {state.lower()}"))
            if resources is None and run.state not in BEFORE_PLAN:
                resources = self._changes(target, sid, run)
            if run.state == "UNCONFIRMED" and not confirmed:
                if not auto:
                    return self._result(target, operation, Status.FAILED, started, resources=resources or [],
                                        changes=_changes(resources, run), binary=label,
                                        error=f"waiting for confirmation: Spacelift run {run.id} on {sid} planned its changes and waits "
                                              f"for a person to confirm it in Spacelift (spacelift_auto_deploy is false): {url}")
                self.api.confirm_run(sid, run.id, note="confirmed by the engine (spacelift_auto_deploy; the environment's approval passed)")
                confirmed = True
                self.stream.publish(Notice(target, f"Spacelift run {run.id}: confirmed by the engine"))
                continue
            if run.state in ENDED:
                break
            if self._clock() >= deadline:
                return self._result(target, operation, Status.FAILED, started, resources=resources or [], binary=label,
                                    error=f"timed out after {self.settings.run_timeout_s:g} s waiting for Spacelift run {run.id} on {sid} "
                                          f"(last state {run.state}); it goes on in Spacelift: {url}")
            self._sleep(self.settings.poll_interval_s)
        resources = resources if resources is not None else self._changes(target, sid, run)
        if run.state != "FINISHED":
            where = next((h["state"] for h in reversed(run.history[:-1]) if h["state"] not in ENDED), None)
            note = next((h.get("note") for h in reversed(run.history) if h.get("note")), None)
            return self._result(target, operation, Status.FAILED, started, resources=resources, changes=_changes(resources, run), binary=label,
                                error=f"Spacelift run {run.id} on {sid} {ENDED[run.state]}" + (f" while {where.lower()}" if where else "")
                                      + (f": {note}" if note else "") + f" ({url})")
        if operation != Operation.PREVIEW:
            for change in resources:
                self.stream.publish(ResourceStep(target, change.action, change.urn_name, change.type, status="done"))
        outputs = self._outputs(target) if operation != Operation.PREVIEW else {}
        return self._result(target, operation, Status.SUCCEEDED, started, resources=resources, changes=_changes(resources, run),
                            outputs=outputs, binary=label)

    def _changes(self, target: StackTarget, sid: str, run: Run) -> list[ResourceChange]:
        changes = []
        for change in self.api.run_changes(sid, run.id):
            action = ACTIONS.get(change.change.upper())
            if action is None:
                continue
            changes.append(ResourceChange(urn_name=change.address, type=_resource_type(change.address), action=action,
                                          moved_from=change.previous_address if action == "move" else None))
            self.stream.publish(ResourceStep(target, action, change.address, _resource_type(change.address)))
        return changes

    def _outputs(self, target: StackTarget) -> dict[str, object]:
        return {o.id: SECRET_MASK if o.sensitive else o.value for o in self.api.outputs(stack_id(target.customer, target.environment))}

    def _label(self, target: StackTarget) -> str:
        if target.tool == "pulumi":
            return "Spacelift (Pulumi)"
        if target.tool_version:
            return f"Spacelift (Terraform {target.tool_version})"
        return f"Spacelift (OpenTofu {self.tofu_version or _tofu_version()})"

    def _result(self, target: StackTarget, operation: Operation, status: Status, started: float, **fields) -> StackResult:
        if target.tool != "terraform":
            fields.pop("binary", None)  # a local Pulumi result has no binary either: the same JSON shape
        return StackResult.for_target(target, operation, status, duration_s=self._clock() - started, **fields)


def _changes(resources: list[ResourceChange] | None, run: Run) -> Changes:
    """Counts from the per-resource list; Spacelift's ``delta`` when the list is empty."""
    out = Changes()
    for r in resources or []:
        if r.action in ("create", "update", "delete", "replace"):
            setattr(out, r.action, getattr(out, r.action) + 1)
    if not resources and run.delta:
        out.create, out.update, out.delete = run.delta["addCount"], run.delta["changeCount"], run.delta["deleteCount"]
    return out


def _resource_type(address: str) -> str:
    """``module.x.aws_instance.web[0]`` → ``aws_instance`` (Terraform addresses; Pulumi's are names)."""
    parts = [p for p in address.split(".") if not p.startswith(("module", "data"))]
    return parts[-2] if len(parts) >= 2 else ""


def _tofu_version() -> str:
    from engine.toolchain import TOFU_VERSION

    return TOFU_VERSION
