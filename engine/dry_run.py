"""What ``--dry-run`` means: nothing changes anywhere — no resource, no state, no GitHub write.

A dry run reads everything a real run reads and runs previews where the real run would deploy or
remediate.  Every write it would make is reported instead: GitHub writes (``GitHubAPI`` in dry-run
mode records them), state writes (which stacks an apply would record), remediations.

``PreviewOnly`` is the runner a dry run gets (``engine/wiring.py``): reads and previews pass to
the real runner; anything that writes state or resources is refused, whoever asks.  Pulumi's
preview needs the stack to exist and creates it when it does not; so a stack that was never
deployed is previewed against an empty scratch state, thrown away afterwards — the preview of
an empty stack, and nothing is left in the real state.  (OpenTofu's plan never writes state.)
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from engine.planning import StackTarget
from engine.results import Operation, StackResult, Status
from engine.stream import EventStream, Notice

READ_ONLY = frozenset({Operation.PREVIEW, Operation.OUTPUTS, Operation.LIST, Operation.DRIFT})


class DryRunViolation(RuntimeError):
    """Something asked a dry run to change a stack: a bug, never a user error."""


class PreviewOnly:
    """A runner that only reads and previews (see the module docstring)."""

    def __init__(self, inner, stream: EventStream | None = None):
        self.inner = inner
        self.tool = inner.tool
        self.stream = stream or EventStream()

    def prepare(self, targets: list[StackTarget]) -> None:
        self.inner.prepare(targets)

    def deployed_with(self, target: StackTarget) -> bool:
        return self.inner.deployed_with(target)

    def unlock(self, target: StackTarget, lock_id: str | None) -> str:
        raise DryRunViolation(f"a dry run never unlocks {target.fqn}")

    def run(self, target: StackTarget, operation: Operation | str) -> StackResult:
        operation = Operation(operation)
        if operation not in READ_ONLY:
            raise DryRunViolation(f"a dry run must not {operation} {target.fqn}")
        if operation == Operation.PREVIEW and self.tool == "pulumi" and not self._exists(target):
            with tempfile.TemporaryDirectory(prefix="engine-dry-run-") as scratch:
                result = self.inner.run(dataclasses.replace(target, backend_url=Path(scratch).as_uri()), operation)
            self.stream.publish(Notice(target, "not deployed yet: previewed against an empty state (nothing was created)"))
            return result
        return self.inner.run(target, operation)

    def _exists(self, target: StackTarget) -> bool:
        """Whether the stack holds anything a preview must diff against.  Local state is answered from its files
        (even asking Pulumi would initialize a fresh backend directory); other backends are asked (a read)."""
        if self.inner.deployed_with(target):
            return True
        if target.backend_url.startswith("file:"):
            return False  # no stack, or an empty one: an empty scratch state previews the same
        return self.inner.run(target, Operation.LIST).status != Status.NOT_DEPLOYED


def would_apply(result: StackResult, backend_url: str | None) -> dict:
    """What an apply of this stack would have changed and written, from its preview."""
    entry: dict = {"stack": f"{result.customer}/{result.environment}", "environment": result.environment, "tool": result.tool, "preview": str(result.status)}
    if result.status == Status.SUCCEEDED:
        entry["changes"] = dataclasses.asdict(result.changes)
        entry["summary"] = result.changes.describe()
        entry["state"] = f"would record the apply in the stack's state ({backend_url})" if backend_url else "would record the apply in the stack's state"
    elif result.error:
        entry["error"] = result.error.splitlines()[0] if result.error.strip() else result.error
    return entry
