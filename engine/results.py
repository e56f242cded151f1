"""Results are data.  Console, JSON and (later) GitHub comments are renderings of these.

Secret values never enter a result: runners replace them with ``SECRET_MASK`` before
building one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from engine.errors import EXIT_BLOCKED, EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from engine.plan_document import PlanDocument

SECRET_MASK = "[secret]"


class Operation(StrEnum):
    """What a runner can do to a stack.  String-valued: JSON and comparisons with text keep working."""

    UP = "up"
    PREVIEW = "preview"
    REFRESH = "refresh"
    DESTROY = "destroy"
    OUTPUTS = "outputs"
    LIST = "list"
    DRIFT = "drift"
    REMEDIATE = "remediate"  # refresh, then put the desired state back
    ROLLBACK = "rollback"  # an earlier successful deploy's inputs applied again (engine/rollback.py)
    RESTORE = "restore"  # a state backup put back, then refreshed (engine/backups.py)
    TEST = "test"  # the provider's post-deploy tests against the deployed stack (engine/post_deploy.py)

    @property
    def changes_resources(self) -> bool:
        return self in (Operation.UP, Operation.DESTROY, Operation.REMEDIATE, Operation.ROLLBACK)

    @property
    def counts_changes(self) -> bool:
        """Operations whose result carries change counts worth showing."""
        return self in (Operation.UP, Operation.PREVIEW, Operation.REFRESH, Operation.DESTROY, Operation.ROLLBACK, Operation.RESTORE)


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_DEPLOYED = "not-deployed"
    BLOCKED = "blocked"  # a policy denied the plan: nothing was applied


# Pulumi reports these op names; the engine folds them into five counts.
_OP_KEYS = {
    "create": "create",
    "update": "update",
    "delete": "delete",
    "same": "same",
    "replace": "replace",
    "create-replacement": "replace",
    "delete-replaced": None,  # counted once, as the replace
    "discard": "delete",
    "read": "same",
    "refresh": "same",
    "import": "create",
}


@dataclass
class Changes:
    create: int = 0
    update: int = 0
    delete: int = 0
    replace: int = 0
    same: int = 0

    @classmethod
    def from_counts(cls, counts: dict[str, int] | None) -> "Changes":
        out = cls()
        for op, n in (counts or {}).items():
            key = _OP_KEYS.get(op, "update")
            if key:
                setattr(out, key, getattr(out, key) + int(n))
        return out

    @property
    def total_changes(self) -> int:
        return self.create + self.update + self.delete + self.replace

    def describe(self) -> str:
        if not self.total_changes:
            return f"no changes ({self.same} unchanged)"
        parts = [f"{n} {k}" for k, n in (("create", self.create), ("update", self.update), ("replace", self.replace), ("delete", self.delete)) if n]
        return ", ".join(parts) + (f", {self.same} unchanged" if self.same else "")


@dataclass
class ResourceChange:
    """One resource an operation touched (or would touch)."""

    urn_name: str  # Pulumi: the resource name; Terraform: the resource address
    type: str
    action: str  # create | update | delete | replace | move
    properties: list[str] = field(default_factory=list)  # names only, never values
    moved_from: str | None = None
    # Drift only: what changed outside the tool, [{"path", "old", "new"}], secret values masked.
    diffs: list[dict] = field(default_factory=list)
    # Terraform only: why this action (``action_reason``: replace_because_tainted, delete_because_no_resource_config, …)
    action_reason: str | None = None


@dataclass
class StepOutcome:
    """A configuration step that ran after a deploy (Ansible)."""

    status: str  # succeeded | failed
    changed: int = 0
    tasks: int = 0
    artifacts: str = ""
    duration_s: float = 0.0


@dataclass
class FailedTest:
    """One post-deploy test that failed: its name (``tests/test_x.py::test_y``) and the first lines of why (secrets masked)."""

    name: str
    message: str


@dataclass
class PostDeployOutcome:
    """The provider's post-deploy tests after a deploy (engine/post_deploy.py)."""

    status: str  # passed | failed | error (the tests could not run)
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[FailedTest] = field(default_factory=list)
    directory: str = ""  # where the tests were read from
    duration_s: float = 0.0

    def describe(self) -> str:
        if self.status == "passed":
            return f"{self.passed} passed" + (f", {self.skipped} skipped" if self.skipped else "")
        if self.failures:
            first = self.failures[0]
            more = len(self.failures) - 1
            return f"post-deploy test {first.name} failed: {first.message.splitlines()[0] if first.message else 'failed'}" + (
                f" (+{more} more)" if more else "")
        return "post-deploy tests could not run"


@dataclass
class RollbackInfo:
    """Which earlier deploy a rollback applied again (its run in the history), and why it ran."""

    source_run: int  # the run whose snapshot was applied
    source_sha: str | None = None  # the customer's commit that run deployed
    source_finished_at: str | None = None
    reason: str | None = None  # automatic rollbacks: what failed ("post-deploy test … failed: …")
    revision: str | None = None  # the program/module revision applied (git commit or content digest)


@dataclass
class StackInfo:
    """What ``list`` knows about a deployed stack."""

    resource_count: int | None = None
    last_update: str | None = None
    last_result: str | None = None


@dataclass
class StackResult:
    customer: str
    environment: str
    stack: str
    tool: str
    operation: Operation | str
    status: Status | str
    changes: Changes = field(default_factory=Changes)
    outputs: dict[str, object] = field(default_factory=dict)
    resources: list[ResourceChange] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    # What else happened, by kind (shown under "details" in JSON):
    binary: str | None = None  # Terraform path: which binary served terraform_version
    recovered: list[str] = field(default_factory=list)  # locks/pending operations a crashed run left, now resolved
    counts_corrected: dict | None = None  # the tool's counts disagreed with its per-resource events
    ansible: StepOutcome | None = None
    info: StackInfo | None = None  # list
    finished_at: str | None = None  # remediation: when the desired state was put back
    # preview (and up): the normalized, secret-free plan that policy and cost read (engine/plan_document.py).
    # Not part of to_dict: `--json` output keeps its shape; `engine policy eval --json` shows it.
    plan: "PlanDocument | None" = None
    # what the provider's policies decided about this plan ({"deny": [...], "warn": [...]}) and what it costs
    # (monthly before → after → delta); both JSON-safe, secret-free summaries (engine/governance.py).
    policy: dict | None = None
    cost: dict | None = None
    tests: PostDeployOutcome | None = None  # post-deploy tests (engine/post_deploy.py)
    rollback: RollbackInfo | None = None  # operation rollback: what it applied again
    rolled_back: dict | None = None  # a failed deploy that was rolled back automatically: the rollback's summary
    backups: list[str] = field(default_factory=list)  # state backups this operation kept (ids, engine/backups.py)
    run_id: int | None = None  # its row in the run history, once recorded
    # A successful deploy's snapshot (engine/snapshots.py): inputs, revision, tool version; recorded by the history, not JSON.
    snapshot: dict | None = None

    def __post_init__(self) -> None:
        self.operation = Operation(self.operation)
        self.status = Status(self.status)

    @classmethod
    def for_target(cls, target, operation: Operation | str, status: Status | str = Status.SUCCEEDED, **fields) -> "StackResult":
        """A result for ``target`` (a ``StackTarget``) — one constructor for every runner and the engine."""
        return cls(customer=target.customer, environment=target.environment, stack=f"{target.project}/{target.stack}",
                   tool=target.tool, operation=operation, status=status, **fields)

    @property
    def ok(self) -> bool:
        return self.status not in (Status.FAILED, Status.SKIPPED, Status.BLOCKED)

    @property
    def details(self) -> dict[str, object]:
        """The optional facts as one mapping (the JSON shape of earlier versions)."""
        out: dict[str, object] = {}
        if self.binary is not None:
            out["binary"] = self.binary
        if self.recovered:
            out["recovered"] = list(self.recovered)
        if self.counts_corrected is not None:
            out["counts_corrected"] = self.counts_corrected
        if self.ansible is not None:
            out["ansible"] = asdict(self.ansible)
        if self.info is not None:
            out.update(asdict(self.info))
        if self.finished_at is not None:
            out["at"] = self.finished_at
        if self.tests is not None:
            out["tests"] = asdict(self.tests)
        if self.rollback is not None:
            out["rollback_of"] = asdict(self.rollback)
        if self.rolled_back is not None:
            out["rolled_back"] = self.rolled_back
        if self.backups:
            out["backups"] = list(self.backups)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "StackResult":
        """A result as a worker process printed it (``to_dict``), e.g. a remediation run in its own process."""
        details = data.get("details") or {}
        info = {k: details[k] for k in ("resource_count", "last_update", "last_result") if k in details}
        return cls(customer=data["customer"], environment=data["environment"], stack=data["stack"], tool=data["tool"],
                   operation=data["operation"], status=data["status"], changes=Changes(**data.get("changes") or {}),
                   outputs=data.get("outputs") or {}, resources=[ResourceChange(**r) for r in data.get("resources") or []],
                   error=data.get("error"), duration_s=float(data.get("duration_s") or 0), binary=details.get("binary"),
                   recovered=list(details.get("recovered") or []), counts_corrected=details.get("counts_corrected"),
                   ansible=StepOutcome(**details["ansible"]) if details.get("ansible") else None,
                   info=StackInfo(**info) if info else None, finished_at=details.get("at"), policy=data.get("policy"),
                   cost=data.get("cost"), tests=_tests_from(details.get("tests")),
                   rollback=RollbackInfo(**details["rollback_of"]) if details.get("rollback_of") else None,
                   rolled_back=details.get("rolled_back"), backups=list(details.get("backups") or []), run_id=data.get("run_id"))

    def to_dict(self) -> dict:
        data = {
            "customer": self.customer, "environment": self.environment, "stack": self.stack, "tool": self.tool,
            "operation": str(self.operation), "status": str(self.status), "changes": asdict(self.changes),
            "outputs": self.outputs, "resources": [asdict(r) for r in self.resources], "error": self.error,
            "duration_s": round(self.duration_s, 2), "details": self.details,
            "run_id": self.run_id,  # its row in the run history (`engine rollback --to`); null when not recorded
        }
        if self.policy is not None:
            data["policy"] = self.policy
        if self.cost is not None:
            data["cost"] = self.cost
        return data


def _tests_from(data: dict | None) -> PostDeployOutcome | None:
    if not data:
        return None
    return PostDeployOutcome(**{**data, "failures": [FailedTest(**f) for f in data.get("failures") or []]})


@dataclass
class RunResult:
    """The result of one engine command for one customer."""

    customer: str
    operation: str
    stacks: list[StackResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stacks)

    @property
    def exit_code(self) -> int:
        """0 all ok; 1 a stack failed (or was skipped for another reason); 4 blocked by policy, nothing else failed."""
        return exit_code_of(self.stacks)

    def to_dict(self) -> dict:
        return {
            "customer": self.customer,
            "operation": self.operation,
            "ok": self.ok,
            "environments": {s.environment: s.to_dict() for s in self.stacks},
        }


def exit_code_of(stacks: list[StackResult]) -> int:
    statuses = {s.status for s in stacks}
    if Status.FAILED in statuses:
        return EXIT_FAILED
    if Status.BLOCKED in statuses:
        return EXIT_BLOCKED  # later environments skipped because of the block are part of it
    return EXIT_OK if all(s.ok for s in stacks) else EXIT_FAILED
