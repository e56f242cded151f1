"""Rollback: apply an earlier successful deploy's snapshot again — its inputs, with its program/module revision.

``engine rollback`` (and ``rollback_on_failure`` after a failed post-deploy test) picks a snapshot from the run history
(engine/snapshots.py), refuses what cannot be done faithfully (another tool deploys the stack now; another program or
state location; the code of that revision is gone), and runs the stack's runner with the snapshot's settings:

- the same program/module code as now (the content digests match): the usual runner, in this process;
- other Terraform module code: a Terraform runner over that revision's ``terraform/``, materialized from git;
- other Pulumi program code: a child engine process (``python -m engine.rollback``) whose ``programs`` package is that
  revision's — Pulumi's inline programs and dynamic providers are imported by name, so one process holds one
  revision; the customer's passphrase reaches it on stdin, never in its environment or arguments.

A rollback is previewed first; it applies only when confirmed (``--yes``), is not gated by the policies again (it
re-applies what was deployed, like a drift repair) and is recorded as its own run (operation ``rollback``) naming its
source run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine import process, snapshots
from engine.errors import EngineError, InputError
from engine.history import HistoryStore
from engine.planning import StackTarget
from engine.results import Operation, RollbackInfo, StackResult, Status
from engine.stream import EventStream, Notice, ResourceStep, StackStarted

TOOL_LABELS = {"pulumi": "Pulumi", "terraform": "Terraform"}


@dataclass(frozen=True)
class Source:
    """The snapshot a rollback applies: its run in the history and what it recorded."""

    run_id: int
    finished_at: str
    operation: str
    sha: str | None
    snapshot: dict

    @property
    def revision(self) -> snapshots.Revision:
        return snapshots.Revision.from_dict(self.snapshot["revision"])

    def describe(self) -> str:
        commit = f", commit {self.sha[:7]}" if self.sha else ""
        return f"run {self.run_id} ({self.operation} of {self.finished_at}{commit}, {self.revision.label})"


def _source(row: dict) -> Source:
    return Source(run_id=row["run_id"], finished_at=row["finished_at"], operation=row["operation"],
                  sha=row.get("snapshot", {}).get("sha") or row.get("sha"), snapshot=row["snapshot"])


def choose(store: HistoryStore, customer: str, environment: str, to: int | None = None, previous: bool = False) -> Source:
    """The snapshot to roll back to: run ``to``, or (``previous``) the last good deploy before the current state — the
    newest snapshot when the stack's last deploy failed, the one before it when the last deploy is itself a snapshot."""
    if (to is None) == (not previous):
        raise InputError("name the deploy to roll back to: --to RUN_ID or --previous")
    rows = store.snapshots(customer, environment, limit=200)
    stack = f"{customer}/{environment}"
    if not rows:
        raise InputError(f"{stack} has no successful deploy recorded in the run history ({store.where}), so there is nothing to roll back to",
                         hint="every successful `engine up` is recorded; check ENGINE_HISTORY_URL")
    if to is not None:
        for row in rows:
            if row["run_id"] == to:
                return _source(row)
        raise InputError(f"run {to} is not a successful deploy of {stack}",
                         hint=f"its snapshots (newest first): {', '.join(str(r['run_id']) for r in rows[:10])}"
                              " — `engine rollback … --list` shows them")
    latest = store.latest_deploy(customer, environment)
    if latest is not None and latest["id"] == rows[0]["run_id"]:
        if len(rows) < 2:
            raise InputError(f"{stack} has only one successful deploy (run {rows[0]['run_id']}): there is no previous one to roll back to")
        return _source(rows[1])
    return _source(rows[0])


def rollback_target(current: StackTarget, source: Source) -> StackTarget:
    """``current`` with the snapshot's settings; ``InputError`` when the snapshot cannot be applied faithfully here."""
    recorded = source.snapshot["inputs"]["target"]
    stack = current.fqn
    if recorded["tool"] != current.tool:
        then, now = TOOL_LABELS.get(recorded["tool"], recorded["tool"]), TOOL_LABELS.get(current.tool, current.tool)
        raise InputError(f"{stack} was deployed with {then} at run {source.run_id}, but its tenant now selects {now}: a rollback across a "
                         "tool switch is refused (the two tools keep separate state; applying it would create a second copy)",
                         hint=f"roll back to a deploy made with {now}, or select {then} again (infrastructure_tools) first")
    if recorded["program"] != current.program:
        raise InputError(f"{stack} deployed the {recorded['program']!r} target at run {source.run_id}; it is {current.program!r} now: "
                         "a rollback across targets is refused")
    if recorded["backend_url"] != current.backend_url:
        raise InputError(f"{stack} kept its state elsewhere at run {source.run_id}; a rollback would apply it to another state location",
                         hint="move the state back, or deploy the current configuration")
    snapshots.customer_config(source.snapshot)  # the snapshot's customer file must still be valid input (ConfigError otherwise)
    return dataclasses.replace(current, config=dict(source.snapshot["inputs"]["settings"]))


def finish(result: StackResult, source: Source, reason: str | None) -> StackResult:
    """A runner's ``up`` result as the rollback run it is: operation, source, and a snapshot of its own."""
    result.operation = Operation.ROLLBACK
    result.rollback = RollbackInfo(source_run=source.run_id, source_sha=source.sha, source_finished_at=source.finished_at,
                                   reason=reason, revision=source.revision.label)
    if result.status == Status.SUCCEEDED:
        result.snapshot = {**{k: v for k, v in source.snapshot.items() if k != "sha"}, "outputs": dict(result.outputs),
                           "rollback_of": source.run_id}
    return result


def summary(result: StackResult) -> dict:
    """What a failed deploy's result says about the automatic rollback that followed it (JSON, the PR comment)."""
    info = result.rollback
    return {"status": str(result.status), "source_run": info.source_run if info else None, "source_sha": info.source_sha if info else None,
            "revision": info.revision if info else None, "changes": dataclasses.asdict(result.changes), "error": result.error,
            "outputs": dict(result.outputs), "run_id": result.run_id}


# -- another revision's Pulumi program: a child engine process -----------------------------------------------------------

class RevisionPulumiRunner:
    """The Pulumi runner over another revision's ``programs/`` (a directory from ``snapshots.materialize``): every
    operation runs in a child engine process that imports that revision's programs; its events and result come back as
    JSON lines."""

    tool = "pulumi"

    def __init__(self, source_root: Path, home, stream: EventStream, passphrase: Callable[[str], str], lock_timeout: float = 0.0):
        self.source_root, self.home, self.stream, self.lock_timeout = source_root, home, stream, lock_timeout
        self._passphrase = passphrase

    def prepare(self, targets: list[StackTarget]) -> None:
        pass

    def deployed_with(self, target: StackTarget) -> bool:
        return False

    def run(self, target: StackTarget, operation: Operation | str, gate=None) -> StackResult:
        job = {"home": str(self.home.root), "lock_timeout": self.lock_timeout, "operation": str(operation),
               "target": target.to_dict(), "passphrase": self._passphrase(target.customer)}
        engine_root = Path(__file__).resolve().parent.parent
        env = process.engine_env({"PYTHONPATH": os.pathsep.join([str(self.source_root), str(engine_root)])},
                                 drop=("ENGINE_GITHUB_TOKEN", "GITHUB_TOKEN", "ENGINE_GITHUB_APP_PRIVATE_KEY", "ENGINE_PASSPHRASES",
                                       "ENGINE_DISPATCH_SECRETS"))
        env = {k: v for k, v in env.items() if not k.startswith("ENGINE_PASSPHRASE_")}
        result: dict | None = None

        def on_line(line: str) -> None:
            nonlocal result
            try:
                message = json.loads(line)
            except ValueError:
                return
            if "step" in message:
                s = message["step"]
                self.stream.publish(ResourceStep(target, s["action"], s["name"], s["type"], tuple(s.get("properties") or ()), s.get("status", "")))
            elif "notice" in message:
                self.stream.publish(Notice(target, message["notice"]))
            elif "started" in message:
                self.stream.publish(StackStarted(target, message["started"]))
            elif "result" in message:
                result = message["result"]

        proc = process.run([sys.executable, "-m", "engine.rollback"], input=json.dumps(job), cwd=self.source_root, env=env, on_stdout=on_line)
        if result is None:
            tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1][:300]
            return StackResult.for_target(target, operation, Status.FAILED, error=f"the rollback's pulumi process failed: {tail}")
        return StackResult.from_dict(result)


def _child() -> int:
    """In the child: one Pulumi operation with this process's ``programs`` (the revision's), reported as JSON lines."""
    job = json.loads(sys.stdin.read())
    target_data = job["target"]
    from engine.home import EngineHome
    from engine.planning import UpstreamRef
    from engine.runners.pulumi import PulumiRunner
    from engine.wiring import Wiring

    os.environ["ENGINE_PASSPHRASE_" + target_data["customer"].upper().replace("-", "_")] = job.pop("passphrase")
    target = StackTarget(**{**target_data, "post_steps": tuple(target_data.get("post_steps") or ()),
                            "upstreams": tuple(UpstreamRef(u["customer"], u["environment"], tuple(u["outputs"])) for u in target_data.get("upstreams") or ())})
    stream = EventStream()

    def emit(event) -> None:
        if isinstance(event, ResourceStep):
            line = {"step": {"action": event.action, "name": event.name, "type": event.type, "properties": list(event.properties), "status": event.status}}
        elif isinstance(event, Notice):
            line = {"notice": event.text}
        elif isinstance(event, StackStarted):
            line = {"started": str(event.operation)}
        else:
            return
        print(json.dumps(line), flush=True)

    stream.subscribe(emit)
    home = EngineHome(Path(job["home"]))
    wiring = Wiring(catalog_root=Path.cwd(), home=home)
    runner = PulumiRunner(home, stream, lock_timeout=float(job["lock_timeout"]), backups=wiring.backups)
    try:
        result = runner.run(target, Operation(job["operation"]))
    except EngineError as exc:
        result = StackResult.for_target(target, job["operation"], Status.FAILED, error=exc.message)
    print(json.dumps({"result": result.to_dict()}), flush=True)
    return 0


# -- the operation ---------------------------------------------------------------------------------------------------

@dataclass
class Plan:
    """A rollback ready to run: the target with the snapshot's settings, and the runner for its revision."""

    target: StackTarget
    source: Source
    runner: object
    cleanup: Callable[[], None]


def prepare(current: StackTarget, source: Source, current_revision: snapshots.Revision,
            runner_for: Callable[[str, Path | None], object]) -> Plan:
    """Check the snapshot can be applied here and pick the runner of its revision (materialized when it differs)."""
    target = rollback_target(current, source)
    directory = snapshots.materialize(source.revision, current_revision)
    cleanup = (lambda: shutil.rmtree(directory, ignore_errors=True)) if directory else (lambda: None)
    try:
        runner = runner_for(current.tool, directory)
    except BaseException:
        cleanup()
        raise
    return Plan(target, source, runner, cleanup)


def apply(plan: Plan, reason: str | None = None) -> StackResult:
    """Apply the snapshot (no policy gate: it re-applies what was deployed); the result is the rollback run."""
    started = time.monotonic()
    result = plan.runner.run(plan.target, Operation.UP)
    result.duration_s = time.monotonic() - started
    return finish(result, plan.source, reason)


if __name__ == "__main__":
    sys.exit(_child())
