"""The runner protocol: the one seam between the engine and a tool.

A runner is the only code that starts its tool or reads its tool's files (state, locks,
plans).  The engine asks it to ``prepare`` (refuse before anything runs), ``run`` an
operation, ``unlock`` a stack, and whether a stack is ``deployed_with`` it.  Runners
publish what happens on the engine's event stream; they never print.

A new tool (Spacelift, a cloud's own CLI) is one new module implementing this protocol,
registered in ``engine/wiring.py``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

from engine import locks, process
from engine.home import EngineHome
from engine.planning import StackTarget
from engine.results import Operation, StackResult, Status
from engine.stream import EventStream, Notice

if TYPE_CHECKING:
    from engine.governance import Verdict
    from engine.plan_document import PlanDocument

# Policy and cost between plan and apply (engine/governance.py Gate): the plan document in, a verdict out.
Gate = Callable[["PlanDocument"], "Verdict"]


class Runner(Protocol):
    tool: str

    def prepare(self, targets: list[StackTarget]) -> None:
        """Raise ``InputError`` (exit 2) if any target can't be served — before anything runs."""

    def run(self, target: StackTarget, operation: Operation, gate: Gate | None = None) -> StackResult:
        """Run one operation on one stack.  A tool that ran and failed is a failed result, not an exception.

        ``gate`` (``up`` only): the plan passes through it before anything is applied; a blocked verdict
        applies nothing and the result is BLOCKED (``verdict.apply(result)``)."""

    def unlock(self, target: StackTarget, lock_id: str | None) -> str:
        """Clear a lock a crashed run left; refuses while the engine's own lock is held.  Returns what was done."""

    def deployed_with(self, target: StackTarget) -> bool:
        """True when this tool's state for ``target`` holds resources.  Reads files only: no binary needed."""


class Step(Protocol):
    """Runs after a successful deploy (configuration management); updates the result."""

    def run(self, target: StackTarget, result: StackResult) -> StackResult: ...


class StackLockHeld(Exception):
    """Raised inside ``exclusive`` when another process holds the stack (the runner turns it into a failed result)."""

    def __init__(self, held: locks.Held):
        super().__init__(held.describe())
        self.held = held


@contextmanager
def exclusive(home: EngineHome, target: StackTarget, operation: str, timeout: float, stream: EventStream,
              recovered: list[str]) -> Iterator[locks.Lease]:
    """Hold the engine's lock of ``target`` for the block; first stop what a crashed holder left running.

    A crashed run's tools (and their plugins, mid-create) must be gone before anyone resolves
    its locks and pending operations — otherwise they would create resources no state tracks.
    What was stopped is appended to ``recovered`` and published as a notice.
    """
    lease = locks.acquire(home.root / "locks", target.customer, target.environment, operation, timeout)
    if isinstance(lease, locks.Held):
        raise StackLockHeld(lease)
    with lease:
        previous = lease.previous
        if previous is not None and previous.children and not process.pid_alive(previous.pid):
            stopped = process.stop_leftovers(previous.children)
            if stopped:
                note = f"stopped {len(stopped)} process(es) the interrupted run (pid {previous.pid}) left running: " + "; ".join(stopped)
                recovered.append(note)
                stream.publish(Notice(target, note))
        yield lease


def locked_result(target: StackTarget, operation: Operation | str, held: locks.Held, started: float) -> StackResult:
    return StackResult.for_target(target, operation, Status.FAILED, error=f"{held.describe()}. {held.hint}",
                                  duration_s=time.monotonic() - started)


def state_file(backend_url: str) -> Path | None:
    """The local directory of a file:// backend (decoded), or None for remote state."""
    from engine.home import state_path  # one decoding for everyone (percent-encoding, '..')

    return state_path(backend_url)
