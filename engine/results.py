"""Results are data.  Console, JSON and (later) GitHub comments are renderings of these.

Secret values never enter a result: runners replace them with ``SECRET_MASK`` before
building one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from engine.errors import EXIT_FAILED, EXIT_OK

SECRET_MASK = "[secret]"

OPERATIONS = ("up", "preview", "refresh", "destroy", "outputs", "list", "drift", "remediate")
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker for a secret value in serialized state


def value_diffs(old: object, new: object, prefix: str = "", limit: int = 20, sensitive: object = False) -> list[dict]:
    """Leaf paths whose values differ, with old → new; secret or sensitive values masked."""
    def masked(value: object, flag: object) -> object:
        if flag is True or value == SECRET_MASK or (isinstance(value, dict) and SECRET_SIG in value):
            return SECRET_MASK
        return value

    if isinstance(old, str) and isinstance(new, str) and old.startswith("{") and new.startswith("{") and sensitive is not True:
        try:  # a JSON document held in one attribute (e.g. a file's content): diff inside it
            old, new = json.loads(old), json.loads(new)
        except ValueError:
            pass
    if isinstance(old, dict) and isinstance(new, dict) and SECRET_SIG not in old and SECRET_SIG not in new and sensitive is not True:
        out: list[dict] = []
        for key in sorted(set(old) | set(new)):
            if str(key).startswith("__"):
                continue
            flag = sensitive.get(key, False) if isinstance(sensitive, dict) else False
            out.extend(value_diffs(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key), limit, flag))
            if len(out) >= limit:
                break
        return out[:limit]
    if old == new:
        return []
    return [{"path": prefix or "(value)", "old": masked(old, sensitive), "new": masked(new, sensitive)}]

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


@dataclass
class StackResult:
    customer: str
    environment: str
    stack: str
    tool: str
    operation: str
    status: str  # succeeded | failed | skipped | not-deployed
    changes: Changes = field(default_factory=Changes)
    outputs: dict[str, object] = field(default_factory=dict)
    resources: list[ResourceChange] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    details: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "skipped")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 2)
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
