"""A runner at the tool seam (engine/runners/base.py) that records calls instead of starting a tool."""

from __future__ import annotations

from engine.planning import StackTarget
from engine.results import Changes, StackResult


class FakeRunner:
    tool = "pulumi"

    def __init__(self, fail: set[str] = frozenset(), deployed: set[str] = frozenset(), plans: dict | None = None):
        self.calls: list[tuple[str, str]] = []
        self.fail = fail
        self.deployed = deployed  # environments whose state this "tool" holds
        self.plans = plans or {}  # environment -> a function of the target giving its plan document (previews and ups)

    def prepare(self, targets: list[StackTarget]) -> None:
        pass

    def run(self, target: StackTarget, operation: str, gate=None) -> StackResult:
        self.calls.append((target.environment, str(operation)))
        status = "failed" if target.environment in self.fail else "succeeded"
        result = StackResult.for_target(target, operation, status, changes=Changes(create=1), error="boom" if status == "failed" else None)
        if target.environment in self.plans and str(operation) in ("preview", "up"):
            result.plan = self.plans[target.environment](target)
            if gate is not None:  # like the real runners: judged between plan and apply
                self.calls.append((target.environment, "gate"))
                gate(result.plan).apply(result)
        return result

    def unlock(self, target: StackTarget, lock_id: str | None) -> str:
        return "unlocked"

    def deployed_with(self, target: StackTarget) -> bool:
        return target.environment in self.deployed
