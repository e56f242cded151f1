"""A runner at the tool seam (engine/runners/base.py) that records calls instead of starting a tool."""

from __future__ import annotations

from engine.planning import StackTarget
from engine.results import Changes, StackResult


class FakeRunner:
    tool = "pulumi"

    def __init__(self, fail: set[str] = frozenset(), deployed: set[str] = frozenset()):
        self.calls: list[tuple[str, str]] = []
        self.fail = fail
        self.deployed = deployed  # environments whose state this "tool" holds

    def prepare(self, targets: list[StackTarget]) -> None:
        pass

    def run(self, target: StackTarget, operation: str) -> StackResult:
        self.calls.append((target.environment, str(operation)))
        status = "failed" if target.environment in self.fail else "succeeded"
        return StackResult.for_target(target, operation, status, changes=Changes(create=1), error="boom" if status == "failed" else None)

    def unlock(self, target: StackTarget, lock_id: str | None) -> str:
        return "unlocked"

    def deployed_with(self, target: StackTarget) -> bool:
        return target.environment in self.deployed
