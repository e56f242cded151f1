"""The Pulumi runner: the only module that starts ``pulumi`` (through the Automation API).

One stack per customer × environment.  Each customer's stacks live in that customer's
own backend location with that customer's own passphrase; each stack gets its own
work directory, so two operations never share workspace files.  Programs run inline
(in this process), so the Python language host plugin is never needed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Optional

from pulumi import automation as auto
from pulumi.automation import errors as auto_errors
from pulumi.automation._cmd import CommandResult, OnOutput
from semver import VersionInfo

import programs
from engine import process, toolchain
from engine.backups import BackupStore, Stamp
from engine.errors import EngineError, ToolchainError
from engine.home import EngineHome
from engine.planning import StackTarget
from engine.diffs import changed_paths, value_diffs
from engine.plan_document import PulumiStep, from_pulumi_preview, step_from_event
from engine.results import SECRET_MASK, Changes, Operation, ResourceChange, StackInfo, StackResult, Status
from engine.runners.base import Gate, StackLockHeld, exclusive, locked_result, state_file
from engine.stream import EventStream, Notice, ResourceStep, StackStarted
from engine.toolchain import Tool

PROJECT_ROOT = Path(programs.__file__).resolve().parent.parent  # where the dynamic providers' plugin imports `programs` from

_ACTIONS = {"create": "create", "update": "update", "delete": "delete", "replace": "replace",
            "create-replacement": "replace", "delete-replaced": None, "same": None, "read": None,
            "refresh": "update", "discard": "delete"}


class EnginePulumiCommand(auto.PulumiCommand):
    """The SDK's handle on our pinned CLI, starting it through ``engine.process``.

    The SDK's constructor runs ``pulumi version`` on every engine start (~0.15 s of a 116 MB
    binary starting); the toolchain already checked that exact version when it installed or
    found the binary.  ``run`` is the SDK's documented seam for how the CLI is started: here
    with the scrubbed tool environment and a timeout, in its own process group.
    """

    def __init__(self, tool: Tool, timeout: float | None = process.DEFAULT_TIMEOUT):  # noqa: D107 - no super(): see above
        self.command = str(tool.executable)
        self.version = VersionInfo.parse(tool.version)
        self.bin_dir = tool.bin_dir
        self.timeout = timeout
        if not os.access(self.command, os.X_OK):
            raise ToolchainError(f"cannot start pulumi from {tool.bin_dir}", hint="run `engine tools install`")

    def run(self, args: list[str], cwd: str, additional_env: Mapping[str, str], on_output: Optional[OnOutput] = None,
            on_error: Optional[OnOutput] = None) -> CommandResult:
        sep = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:sep]:
            args.insert(0, "--non-interactive")
        env = process.tool_env({**additional_env, "PULUMI_AUTOMATION_API": "true"}, path_first=[self.bin_dir])
        done = process.run([self.command, *args], cwd=cwd, env=env, timeout=self.timeout, on_stdout=on_output, on_stderr=on_error)
        result = CommandResult(stdout=done.stdout.rstrip("\n"), stderr=done.stderr.rstrip("\n"), code=done.returncode)
        if done.returncode != 0:
            raise auto_errors.create_command_error(result)
        return result


class PulumiRunner:
    """Runs one operation on one stack target and returns a ``StackResult``.

    Never raises for an operation that ran and failed (the result says so); raises
    ``ToolchainError`` only when pulumi itself cannot be started.
    """

    tool = "pulumi"

    def __init__(self, home: EngineHome, stream: EventStream | None = None, lock_timeout: float = 0.0,
                 find_tool: Callable[[], Tool] = lambda: toolchain.ensure("pulumi"),
                 backups: Callable[[StackTarget], BackupStore] | None = None):
        self.home = home
        self.backups = backups  # where each stack's state backups go (engine/backups.py); None: none kept
        self.stream = stream or EventStream()
        self.lock_timeout = lock_timeout
        self._find_tool = find_tool  # resolved on first use: deployed_with and prepare need no binary
        self._command: EnginePulumiCommand | None = None

    # -- workspace -------------------------------------------------------

    def _pulumi_command(self) -> EnginePulumiCommand:
        if self._command is None:
            self._command = EnginePulumiCommand(self._find_tool())
        return self._command

    def _env(self, target: StackTarget) -> dict[str, str]:
        env = {
            "PULUMI_CONFIG_PASSPHRASE": self.home.passphrase(target.customer),
            "PULUMI_CONFIG_PASSPHRASE_FILE": "",
            "PULUMI_BACKEND_URL": target.backend_url,
            "PULUMI_PYTHON_CMD": sys.executable,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_ACCESS_TOKEN": "",
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        return env

    def _workspace_options(self, target: StackTarget, settings: dict | None) -> auto.LocalWorkspaceOptions:
        work_dir = self.home.work_dir(target.customer, target.environment)
        work_dir.mkdir(parents=True, exist_ok=True)
        self.home.ensure_state_dir(target.backend_url)
        self.home.pulumi_home.mkdir(parents=True, exist_ok=True)
        program = None
        if settings is not None:
            run = programs.load(target.program)
            program = lambda: run(settings)  # noqa: E731 - the inline program closes over the planner's settings
        return auto.LocalWorkspaceOptions(
            work_dir=str(work_dir),
            pulumi_home=str(self.home.pulumi_home),
            program=program,
            env_vars=self._env(target),
            secrets_provider="passphrase",
            project_settings=auto.ProjectSettings(
                name=target.project,
                runtime="python",
                description=f"managed infrastructure of customer {target.customer}",
                backend=auto.ProjectBackend(url=target.backend_url),
            ),
            pulumi_command=self._pulumi_command(),
        )

    def _stack(self, target: StackTarget, create: bool) -> auto.Stack | None:
        opts = self._workspace_options(target, target.config)
        program = opts.program
        try:
            if create:
                return auto.create_or_select_stack(stack_name=target.stack, project_name=target.project, program=program, opts=opts)
            return auto.select_stack(stack_name=target.stack, project_name=target.project, program=program, opts=opts)
        except auto_errors.StackNotFoundError:
            return None

    # -- operations ------------------------------------------------------

    def prepare(self, targets: list[StackTarget]) -> None:
        """Every Pulumi target runs on the pinned CLI: make sure it is there before the first stack starts."""
        if targets:
            self._pulumi_command()

    def deployed_with(self, target: StackTarget) -> bool:
        """True when the stack's Pulumi state (file:// backends) holds resources."""
        root = state_file(target.backend_url)
        if root is None:
            return False
        try:
            data = json.loads((root / ".pulumi" / "stacks" / target.project / f"{target.stack}.json").read_text())
        except (OSError, ValueError):
            return False
        return bool(((data.get("checkpoint") or {}).get("latest") or {}).get("resources"))

    def run(self, target: StackTarget, operation: Operation | str, gate: Gate | None = None) -> StackResult:
        """Run under the engine's stack lock (one writer per stack on this machine) and Pulumi's own.

        With a ``gate``, ``up`` previews first and passes the plan through it: a deny applies nothing."""
        operation = Operation(operation)
        started = time.monotonic()
        recovered: list[str] = []
        try:
            with exclusive(self.home, target, operation, self.lock_timeout, self.stream, recovered):
                kept = []
                if operation in BACKED_UP:
                    try:
                        kept.append(self._keep_backup(target, "before-up"))
                    except EngineError as exc:  # no backup, no deploy: nothing has changed yet
                        return StackResult.for_target(target, operation, Status.FAILED, error=exc.message, duration_s=time.monotonic() - started)
                result = self._run(target, operation, gate=gate)
                if operation == Operation.DESTROY and result.status == Status.SUCCEEDED and self.backups is not None:
                    self.backups(target).clear()  # nothing left to restore: a destroyed stack leaves nothing behind
                if operation in BACKED_UP and result.status == Status.SUCCEEDED:
                    try:
                        kept.append(self._keep_backup(target, "after-up"))
                    except EngineError as exc:  # deployed: the missing backup is a notice, not a failure
                        self.stream.publish(Notice(target, f"warning: {exc.message}"))
                result.backups = [b for b in kept if b]
        except StackLockHeld as exc:
            return locked_result(target, operation, exc.held, started)
        result.recovered = recovered + result.recovered
        return result

    # -- state: backups, restore, outputs for the post-deploy tests -------------------------------------------

    def export_state(self, target: StackTarget) -> bytes | None:
        """The stack's state as ``pulumi stack export`` writes it; None when the stack has none.  A file:// backend's
        checkpoint is read directly (the same deployment, without starting the CLI); remote backends are exported."""
        root = state_file(target.backend_url)
        if root is not None:
            path = root / ".pulumi" / "stacks" / target.project / f"{target.stack}.json"
            try:
                data = json.loads(path.read_bytes())
            except FileNotFoundError:
                return None
            except ValueError:
                raise DamagedState(f"{path} is not valid JSON") from None
            latest = (data.get("checkpoint") or {}).get("latest") if isinstance(data, dict) else None
            if not isinstance(latest, dict):
                raise DamagedState(f"{path} holds no deployment")
            return json.dumps({"version": 3, "deployment": latest}, sort_keys=True).encode()
        stack = self._stack(target, create=False)
        if stack is None:
            return None
        exported = stack.export_stack()
        return json.dumps({"version": exported.version, "deployment": exported.deployment}, sort_keys=True).encode()

    @staticmethod
    def stamp(state: bytes) -> Stamp:
        deployment = json.loads(state).get("deployment") or {}
        return Stamp(written_at=(deployment.get("manifest") or {}).get("time"), resources=len(deployment.get("resources") or []))

    def _keep_backup(self, target: StackTarget, reason: str) -> str | None:
        """Back up the stack's state (only a state holding resources); the backup's id, or None when none was needed."""
        if self.backups is None:
            return None
        try:
            state = self.export_state(target)
        except DamagedState:
            return None  # nothing restorable to keep
        if state is None or not self.stamp(state).resources:
            return None
        backup = self.backups(target).save(self.tool, state, reason, self.stamp(state))
        return backup.id if backup else None

    def restore(self, target: StackTarget, state: bytes, check: Callable[[Stamp | None, str | None], None]) -> StackResult:
        """Put ``state`` back as the stack's state, under the stack's lock, then refresh: the result shows what differs
        between that state and the real resources (and the state now records them).

        ``check(live stamp or None, why the live state is unreadable or None)`` runs first, under the lock, and raises
        to refuse (a newer live state).  The live state, if readable, is backed up before it is replaced."""
        started = time.monotonic()
        recovered: list[str] = []
        try:
            with exclusive(self.home, target, Operation.RESTORE, self.lock_timeout, self.stream, recovered):
                try:
                    live = self.export_state(target)
                    check(self.stamp(live) if live else None, None)
                except DamagedState as exc:
                    live = None
                    check(None, str(exc))
                kept = [self._keep_backup(target, "before-restore")] if live else []
                data = json.loads(state)
                root = state_file(target.backend_url)
                if root is not None:
                    # the checkpoint file itself: `stack import` cannot replace a checkpoint it cannot read
                    self._write_checkpoint(root / ".pulumi" / "stacks" / target.project / f"{target.stack}.json", target, data)
                else:
                    stack = self._stack(target, create=True)
                    stack.import_stack(auto.Deployment(version=data["version"], deployment=data["deployment"]))
                result = self._run(target, Operation.REFRESH)
                result.operation = Operation.RESTORE
                result.backups = [b for b in kept if b]
        except StackLockHeld as exc:
            return locked_result(target, Operation.RESTORE, exc.held, started)
        result.recovered = recovered + result.recovered
        result.duration_s = time.monotonic() - started
        return result

    @staticmethod
    def _write_checkpoint(path: Path, target: StackTarget, data: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        checkpoint = {"version": 3, "checkpoint": {"stack": f"organization/{target.project}/{target.stack}", "latest": data["deployment"]}}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(checkpoint, indent=4))
        os.replace(tmp, path)

    def reveal_outputs(self, target: StackTarget) -> dict[str, dict]:
        """Every output with its real value, ``{name: {"value", "secret"}}``: for the post-deploy tests only, which keep
        secret values out of everything they print.  Empty when the stack does not exist."""
        recovered: list[str] = []
        with exclusive(self.home, target, Operation.OUTPUTS, self.lock_timeout, self.stream, recovered):
            stack = self._stack(target, create=False)
            if stack is None:
                return {}
            return {k: {"value": v.value, "secret": bool(v.secret)} for k, v in stack.outputs().items()}

    def _run(self, target: StackTarget, operation: Operation, retried: bool = False, gate: Gate | None = None) -> StackResult:
        started = time.monotonic()
        result = StackResult.for_target(target, operation)
        events = _EventCollector(target, self.stream, plan=operation in (Operation.PREVIEW, Operation.UP))
        try:
            stack = self._stack(target, create=operation in (Operation.UP, Operation.PREVIEW))
            if stack is None:
                result.status = Status.NOT_DEPLOYED
                return result
            self.stream.publish(StackStarted(target, operation))
            verdict = None
            if gate is not None and operation == "up":
                # Pulumi has no saved plan to apply: preview (quietly: the update's own steps are the progress shown),
                # judge that plan, and update only if nothing denies it.
                planned = _EventCollector(target, EventStream(), plan=True)
                pre = stack.preview(on_event=planned, color="never", suppress_progress=True, diff=False)
                verdict = gate(from_pulumi_preview(planned.steps, target))
                if verdict.blocked:
                    result.changes, result.resources = Changes.from_counts(pre.change_summary), planned.changes
                    result.plan = from_pulumi_preview(planned.steps, target)
                    return verdict.apply(result)
            if operation in ("up", "remediate"):
                # remediate = refresh first, so changes made outside Pulumi are seen and put back
                up = stack.up(on_event=events, color="never", suppress_progress=True, refresh=operation == "remediate")
                result.changes = Changes.from_counts(up.summary.resource_changes)
                if events.plan:
                    result.plan = from_pulumi_preview(events.steps, target)  # what this update did, as a plan document
                result.outputs = _mask(up.outputs)
                if verdict is not None:
                    verdict.apply(result)
            elif operation == "preview":
                pre = stack.preview(on_event=events, color="never", suppress_progress=True, diff=False)
                result.changes = Changes.from_counts(pre.change_summary)
                result.plan = from_pulumi_preview(events.steps, target)
            elif operation == "refresh":
                ref = stack.refresh(on_event=events, color="never", suppress_progress=True)
                result.changes = Changes.from_counts(ref.summary.resource_changes)
            elif operation == "destroy":
                des = stack.destroy(on_event=events, color="never", suppress_progress=True)
                result.changes = Changes.from_counts(des.summary.resource_changes)
                stack.workspace.remove_stack(target.stack)
                self._forget_local(target)
            elif operation == "drift":
                # refresh --preview-only: reads the real resources, writes nothing
                pre = stack.preview_refresh(on_event=events, color="never", suppress_progress=True, show_secrets=False)
                result.changes = Changes.from_counts(pre.change_summary)
                _verify_counts(result, events.changes)
            elif operation == "outputs":
                result.outputs = _mask(stack.outputs())
            elif operation == "list":
                info = stack.info(show_secrets=False)
                summaries = [s for s in stack.workspace.list_stacks() if s.name == target.stack]
                result.info = StackInfo(
                    resource_count=summaries[0].resource_count if summaries else None,
                    last_update=info.start_time.isoformat() if info and info.start_time else None,
                    last_result=info.result if info else None,
                )
            else:
                raise ValueError(f"unknown operation {operation}")
            result.resources = events.changes
        except auto_errors.ConcurrentUpdateError as exc:
            notes = self._recover_from_crash(target, exc)
            if notes and not retried:
                self.stream.publish(Notice(target, "recovered: " + "; ".join(notes)))
                again = self._run(target, operation, retried=True, gate=gate)
                again.recovered = notes + again.recovered
                return again
            result.status = Status.FAILED
            result.error = _lock_message(target, exc)
        except auto_errors.CommandError as exc:
            result.status = Status.FAILED
            result.error = events.error_text() or _stderr_tail(exc)
            result.resources = events.changes
        finally:
            result.duration_s = time.monotonic() - started
        return result

    def _recover_from_crash(self, target: StackTarget, exc: auto_errors.CommandError) -> list[str]:
        """After a crash (kill -9) a stack keeps Pulumi's lock and the interrupted update's pending operations.

        Called under the engine's own lock for this stack, so no other engine process on this
        host is working on it.  A lock is cleared only when it names this host and its process
        is gone; anything else is left alone and reported with the command to run.
        """
        holders = _HOLDER.findall(_clean(str(exc)))
        if not holders:
            return []
        host = socket.gethostname()
        for who, pid, _when in holders:
            holder_host = who.rsplit("@", 1)[-1]
            if holder_host != host or process.pid_alive(int(pid)):
                return []  # a live holder, or another machine's: never cleared implicitly
        stack = self._stack(target, create=False)
        if stack is None:
            return []
        stack.cancel()
        notes = [f"cleared the lock of an interrupted run ({who} pid {pid} since {when.strip()}, no longer running)" for who, pid, when in holders]
        pending = (stack.export_stack().deployment or {}).get("pending_operations") or []
        if pending:
            kinds = sorted({p.get("type", "?") for p in pending})
            # refresh reads every resource back and drops pending creates; the next update re-creates
            # them idempotently (the local target's providers overwrite their own files).
            stack.refresh(clear_pending_creates=True, color="never", suppress_progress=True)
            notes.append(f"resolved {len(pending)} pending operation(s) ({', '.join(kinds)}) with refresh --clear-pending-creates")
        return notes

    def unlock(self, target: StackTarget, lock_id: str | None = None) -> str:
        """Clear the stack's lock (``pulumi cancel``) — only when no engine run holds the stack.

        Raises ``StackLockedError`` naming the holder while a run is going: cancelling its
        lock would let a second writer in.
        """
        from engine.errors import StackLockedError

        recovered: list[str] = []
        try:
            with exclusive(self.home, target, "unlock", self.lock_timeout, self.stream, recovered):
                stack = self._stack(target, create=False)
                if stack is None:
                    return f"stack {target.fqn} does not exist; nothing to unlock"
                try:
                    stack.cancel()
                except auto_errors.CommandError as exc:
                    text = _stderr_tail(exc)
                    if "no update" in text.lower() or "not currently" in text.lower():
                        return f"stack {target.fqn} was not locked"
                    raise ToolchainError(f"could not unlock {target.fqn}: {text}") from exc
        except StackLockHeld as exc:
            raise StackLockedError(f"{exc.held.describe()}: not unlocking a stack while a run is going",
                                   hint="wait for it to finish; `engine unlock` is for locks a crashed run left") from None
        return f"cleared the lock on {target.fqn}"

    def _forget_local(self, target: StackTarget) -> None:
        """After destroy: the stack's work dir has nothing worth keeping, nor have the copies a file backend keeps of a
        removed stack (checkpoint backups, update history, its .bak) or the CLI's logs of it: a stack destroyed and
        removed leaves nothing behind (a review stack's pull request may be long gone)."""
        import shutil

        work = self.home.work_dir(target.customer, target.environment)
        for name in ("Pulumi.yaml", f"Pulumi.{target.stack}.yaml"):
            (work / name).unlink(missing_ok=True)
        for directory in (work, work.parent):
            try:
                directory.rmdir()
            except OSError:
                break
        state = state_file(target.backend_url)
        if state is not None:
            meta = state / ".pulumi"
            for folder in (meta / "backups" / target.project / target.stack, meta / "history" / target.project / target.stack):
                shutil.rmtree(folder, ignore_errors=True)
            for copy in (meta / "stacks" / target.project).glob(f"{target.stack}.json.bak*"):
                if copy.name in (f"{target.stack}.json.bak", f"{target.stack}.json.bak.attrs"):
                    copy.unlink(missing_ok=True)
            try:
                (meta / "locks" / "organization" / target.project / target.stack).rmdir()  # empty unless someone holds it
            except OSError:
                pass
        logs = re.compile(rf"organization\+{re.escape(target.project)}\+{re.escape(target.stack)}-[0-9]{{8}}T[0-9]{{6}}\.log")
        for log in (self.home.pulumi_home / "logs").glob(f"organization+{target.project}+{target.stack}-*.log"):
            if logs.fullmatch(log.name):
                log.unlink(missing_ok=True)


# Operations that write a stack's resources from its desired state: the state is backed up before (and after) each.
BACKED_UP = (Operation.UP, Operation.REMEDIATE)


class DamagedState(Exception):
    """The stack's state file exists but cannot be read (a hand edit gone wrong)."""


class _EventCollector:
    """Turns Pulumi's engine events into resource steps on the stream, a resource change list and error text."""

    def __init__(self, target: StackTarget, stream: EventStream, plan: bool = False):
        self.target = target
        self.stream = stream
        self.plan = plan  # keep every step's planned inputs (secrets masked as they arrive) for the plan document
        self.steps: list[PulumiStep] = []
        self.changes: list[ResourceChange] = []
        self.errors: list[str] = []
        self._seen: set[str] = set()
        self._failed: set[str] = set()

    def _record(self, meta, action: str, properties: list[str], diffs: list[dict] | None = None) -> None:
        self._seen.add(meta.urn)
        name = meta.urn.rsplit("::", 1)[-1]
        self.changes.append(ResourceChange(urn_name=name, type=_short_type(meta.type), action=action, properties=properties, diffs=diffs or []))
        self.stream.publish(ResourceStep(self.target, action, name, _short_type(meta.type), tuple(properties)))

    def __call__(self, event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is not None and self.plan:
            step = step_from_event(event)
            if step is not None:
                self.steps.append(step)
        if pre is not None:
            meta = pre.metadata
            op = _op(meta)
            action = _ACTIONS.get(op, "update")
            # refresh steps only say what they found in the outputs event (below)
            if op != "refresh" and action and not meta.type.startswith("pulumi:pulumi:Stack"):
                self._record(meta, action, list(meta.diffs or []))
        done = event.res_outputs_event
        if done is not None:
            meta = done.metadata
            op = _op(meta)
            if op in ("update", "delete") and meta.urn not in self._seen and not meta.type.startswith("pulumi:pulumi:Stack"):
                old = getattr(meta.old, "outputs", None) or {}
                new = getattr(meta.new, "outputs", None) or {}
                self._record(meta, op, changed_paths(old, new) if op == "update" else [],
                             value_diffs(old, new) if op == "update" else [])
        diag = event.diagnostic_event
        if diag is not None and diag.severity == "error":
            text = _summarize_error(diag.message)
            name = diag.urn.rsplit("::", 1)[-1] if diag.urn else ""
            if name and not (diag.urn or "").split("::")[-2:-1] == ["pulumi:pulumi:Stack"]:
                self._failed.add(name)
                text = f"{name}: {text}"
            if text and text not in self.errors:
                self.errors.append(text)
        failed = event.res_op_failed_event
        if failed is not None:
            name = failed.metadata.urn.rsplit("::", 1)[-1]
            if name not in self._failed:
                self._failed.add(name)
                self.errors.append(f"{name}: {_op(failed.metadata)} failed")

    def error_text(self) -> str:
        specific = [e for e in self.errors if e not in _GENERIC]
        return "\n".join((specific or self.errors)[:10])


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|<\{%[a-z]+%\}>")


def _clean(text: str) -> str:
    return _ANSI.sub("", text or "").strip()


_GENERIC = {"update failed", "preview failed", "refresh failed", "destroy failed"}


def _summarize_error(message: str) -> str:
    """A provider's Python traceback becomes its last line: the exception a user can act on."""
    text = _clean(message)
    if "Traceback (most recent call last)" in text:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        text = lines[-1] if lines else text
    return text


def _verify_counts(result: StackResult, changes: list[ResourceChange]) -> None:
    """refresh --preview-only has reported wrong counts (pulumi#19443): trust the per-resource events."""
    updates = sum(1 for c in changes if c.action == "update")
    deletes = sum(1 for c in changes if c.action == "delete")
    if (updates, deletes) != (result.changes.update, result.changes.delete):
        total = result.changes.total_changes + result.changes.same
        result.counts_corrected = {"reported": {"update": result.changes.update, "delete": result.changes.delete},
                                              "from_events": {"update": updates, "delete": deletes}}
        result.changes = Changes(update=updates, delete=deletes, same=max(total - updates - deletes, 0))


def _op(meta) -> str:
    return meta.op.value if hasattr(meta.op, "value") else str(meta.op)


def _short_type(type_: str) -> str:
    # pulumi-python:dynamic/local:Subnet -> local:Subnet ; aws:ec2/vpc:Vpc stays
    return type_.split("dynamic/", 1)[1] if "dynamic/" in type_ else type_


def _mask(outputs: dict) -> dict:
    masked = {}
    for key, out in (outputs or {}).items():
        masked[key] = SECRET_MASK if getattr(out, "secret", False) else getattr(out, "value", out)
    return masked


def _stderr_tail(exc: auto_errors.CommandError) -> str:
    text = _clean(str(exc))
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("code:", "stdout:"))]
    return "\n".join(lines[-8:]) or "pulumi failed without a message"


_HOLDER = re.compile(r"created by (?P<who>\S+) \(pid (?P<pid>\d+)\) at (?P<when>[0-9T:\-.+Z]+)")


def _lock_message(target: StackTarget, exc: auto_errors.CommandError) -> str:
    text = _clean(str(exc))
    match = _HOLDER.search(text)
    if match:
        holder = f"{match['who']} (pid {match['pid']}) since {match['when'].strip()}"
    else:
        holder = "another operation"
    return (
        f"stack {target.fqn} is locked by {holder}. Wait for it to finish; if that process is gone, "
        f"clear the lock with `engine unlock {target.customer} --env {target.environment} --yes`."
    )
