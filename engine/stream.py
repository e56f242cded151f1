"""The engine's event stream: what happens during a run, as typed events, for every reporter.

Runners and the engine *publish*; reporters *subscribe*.  Console progress, GitHub
feedback and the run history are subscribers, and so is any new sink (Slack, Teams, a
portal feed): adding one never touches a runner.

A subscriber that raises is logged and dropped from that event only — reporting never
changes the outcome of a deployment.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Union

if TYPE_CHECKING:
    from engine.planning import StackTarget
    from engine.results import RunResult, StackResult


@dataclass(frozen=True)
class RunStarted:
    """A command is about to run ``operation`` on these targets (all validated and planned)."""

    customer: str
    operation: str
    targets: tuple["StackTarget", ...]


@dataclass(frozen=True)
class StackStarted:
    target: "StackTarget"
    operation: str
    tool_label: str = ""  # e.g. "OpenTofu v1.10.6"


@dataclass(frozen=True)
class ResourceStep:
    """One resource (or configuration task) an operation is touching."""

    target: "StackTarget"
    action: str  # create | update | delete | replace | … ; "task" for a configuration step
    name: str
    type: str
    properties: tuple[str, ...] = ()
    status: str = ""  # "" while planned/started, "done", "failed", "changed", "ok"


@dataclass(frozen=True)
class Notice:
    """Something a person should know about a stack that is not a resource step (e.g. a recovered lock)."""

    target: "StackTarget"
    text: str


@dataclass(frozen=True)
class StackDone:
    target: "StackTarget | None"
    result: "StackResult"


@dataclass(frozen=True)
class RunDone:
    result: "RunResult"


@dataclass(frozen=True)
class DriftOpened:
    """``engine drift`` found changes made outside the engine on a stack that was not drifted at its previous check."""

    target: "StackTarget"
    result: "StackResult"  # the check: drifted resources and their diffs (secret values masked)


@dataclass(frozen=True)
class DriftResolved:
    """``engine drift`` found in sync (or put back: ``remediated``) a stack that was drifted."""

    target: "StackTarget"
    result: "StackResult"
    remediated: bool = False


@dataclass(frozen=True)
class ComplianceViolation:
    """``engine compliance``: a customer repository's custom properties break the provider's policy or source of truth."""

    customer: str
    repository: str
    findings: tuple[dict, ...]  # {"property", "actual", "expected", "reason"}
    remediated: bool = False  # written back by ``engine compliance --remediate``


Event = Union[RunStarted, StackStarted, ResourceStep, Notice, StackDone, RunDone, DriftOpened, DriftResolved, ComplianceViolation]
Subscriber = Callable[[Event], None]


@dataclass
class EventStream:
    """Publish/subscribe, in order, thread-safe (drift checks several stacks at once)."""

    subscribers: list[Subscriber] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it again."""
        self.subscribers.append(subscriber)
        return lambda: self.subscribers.remove(subscriber) if subscriber in self.subscribers else None

    def publish(self, event: Event) -> None:
        with self._lock:
            for subscriber in list(self.subscribers):
                try:
                    subscriber(event)
                except Exception as exc:  # noqa: BLE001 - a reporter never changes a run's outcome
                    print(f"warning: a reporter failed ({type(subscriber).__name__}): {type(exc).__name__}: {exc}", file=sys.stderr)
