"""Results are data.  Console, JSON and (later) GitHub comments are renderings of these.

Secret values never enter a result: runners replace them with ``SECRET_MASK`` before
building one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from engine.errors import EXIT_FAILED, EXIT_OK

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

    @property
    def changes_resources(self) -> bool:
        return self in (Operation.UP, Operation.DESTROY, Operation.REMEDIATE)

    @property
    def counts_changes(self) -> bool:
        """Operations whose result carries change counts worth showing."""
        return self in (Operation.UP, Operation.PREVIEW, Operation.REFRESH, Operation.DESTROY)


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_DEPLOYED = "not-deployed"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker for a secret value in serialized state


def marks_all(marker: object) -> bool:
    """The sensitivity marker says: this whole value is sensitive (``true``, in any spelling but a container)."""
    return not isinstance(marker, (dict, list)) and bool(marker)


def marks_any(marker: object) -> bool:
    """Anything at all is marked sensitive, at any depth of the marker."""
    if isinstance(marker, dict):
        return any(marks_any(v) for v in marker.values())
    if isinstance(marker, list):
        return any(marks_any(v) for v in marker)
    return marks_all(marker)


def child_marker(marker: object, key: object) -> object:
    """The marker of one element (``key``: a map key or a list index), by the marker's shape.

    Terraform shapes the marker like the value: ``true``, a map of markers (``false``
    entries omitted) or a list of markers.  Where the shapes disagree, the child counts
    as sensitive if the marker marks anything: masking too much is safe, too little is not.
    """
    if isinstance(marker, dict):
        return marker.get(key, False) if isinstance(key, str) else marks_any(marker)
    if isinstance(marker, list):
        return marker[key] if isinstance(key, int) and 0 <= key < len(marker) else marks_any(marker)
    return marks_all(marker)


def _fits(value: object, marker: object) -> bool:
    """Can ``marker`` be applied element by element to the container ``value``?"""
    if not marks_any(marker):
        return True
    return isinstance(value, dict) and isinstance(marker, dict) or isinstance(value, list) and isinstance(marker, list)


def _is_secret(value: object) -> bool:
    return value == SECRET_MASK or (isinstance(value, dict) and SECRET_SIG in value)


def _names_secret(value: object, secrets: frozenset[str]) -> bool:
    """``value`` is, or (for longer secrets) contains, a value known to be secret elsewhere."""
    if not secrets or not isinstance(value, str):
        return False
    return value in secrets or any(len(s) >= 8 and s in value for s in secrets)


def redact(value: object, sensitive: object = False, secrets: frozenset[str] = frozenset()) -> object:
    """A copy of ``value`` with every sensitive part replaced by ``SECRET_MASK``.

    ``sensitive`` is a Terraform-style marker (``true``, map or list of markers, nested);
    Pulumi secrets (``SECRET_SIG`` objects) are masked wherever they are.  A wholly
    sensitive map becomes one mask: its keys are not shown either.  ``secrets`` are values
    known to be sensitive from elsewhere (a tool may copy a sensitive value into an
    attribute it does not mark): a string equal to one, or containing a longer one, is masked.
    """
    if marks_all(sensitive) or _is_secret(value) or _names_secret(value, secrets):
        return SECRET_MASK
    if isinstance(value, (dict, list)) and not _fits(value, sensitive):
        return SECRET_MASK
    if isinstance(value, dict):
        if any(_names_secret(k, secrets) for k in value):
            return SECRET_MASK
        return {k: redact(v, child_marker(sensitive, k), secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, child_marker(sensitive, i), secrets) for i, v in enumerate(value)]
    return SECRET_MASK if marks_any(sensitive) else value


def value_diffs(old: object, new: object, prefix: str = "", limit: int = 20, sensitive: object = False,
                secrets: frozenset[str] = frozenset()) -> list[dict]:
    """Leaf paths whose values differ, with old → new; secret or sensitive values masked.

    ``sensitive`` marks what is sensitive in the shape of the values and ``secrets`` are
    values known to be sensitive (see ``redact``); diffs go down through maps and through
    lists of the same length (``path[i]``), but never into anything wholly sensitive, so
    neither its values nor its keys show.
    """
    out: list[dict] = []
    _value_diffs(old, new, prefix, sensitive, secrets, out, limit)
    return out[:limit]


def _value_diffs(old: object, new: object, path: str, marker: object, secrets: frozenset[str], out: list[dict], limit: int) -> None:
    if isinstance(old, str) and isinstance(new, str) and old.startswith("{") and new.startswith("{") and not marks_any(marker):
        try:  # a JSON document held in one attribute (e.g. a file's content): diff inside it
            old, new = json.loads(old), json.loads(new)
        except ValueError:
            pass
    if not marks_all(marker) and not _is_secret(old) and not _is_secret(new):
        if isinstance(old, dict) and isinstance(new, dict) and _fits(old, marker) and not any(_names_secret(k, secrets) for k in (*old, *new)):
            for key in sorted(set(old) | set(new), key=str):
                if str(key).startswith("__"):
                    continue
                _value_diffs(old.get(key), new.get(key), f"{path}.{key}" if path else str(key), child_marker(marker, key), secrets, out, limit)
                if len(out) >= limit:
                    return
            return
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and _fits(old, marker):
            for i, (o, n) in enumerate(zip(old, new)):
                _value_diffs(o, n, f"{path}[{i}]", child_marker(marker, i), secrets, out, limit)
                if len(out) >= limit:
                    return
            return
    if old != new:
        out.append({"path": path or "(value)", "old": redact(old, marker, secrets), "new": redact(new, marker, secrets)})


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
        return self.status not in (Status.FAILED, Status.SKIPPED)

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
                   info=StackInfo(**info) if info else None, finished_at=details.get("at"))

    def to_dict(self) -> dict:
        data = {
            "customer": self.customer, "environment": self.environment, "stack": self.stack, "tool": self.tool,
            "operation": str(self.operation), "status": str(self.status), "changes": asdict(self.changes),
            "outputs": self.outputs, "resources": [asdict(r) for r in self.resources], "error": self.error,
            "duration_s": round(self.duration_s, 2), "details": self.details,
        }
        return data


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
        return EXIT_OK if self.ok else EXIT_FAILED

    def to_dict(self) -> dict:
        return {
            "customer": self.customer,
            "operation": self.operation,
            "ok": self.ok,
            "environments": {s.environment: s.to_dict() for s in self.stacks},
        }
