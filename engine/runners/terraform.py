"""The Terraform runner: the only module that starts ``tofu`` (or ``terraform``).

Terraform-tagged customers look exactly like Pulumi customers from the outside: the
same operations, the same ``StackResult``.  Inside, each customer × environment gets
its own work dir (a copy of the provider's module, a generated ``terraform.tfvars.json``
from the validated customer file, a generated backend override) and its own state
(``<customer backend>/terraform/<env>.tfstate``).  ``up`` plans to a file, summarizes
the saved plan, and applies exactly that plan.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from engine import process, tfplan, toolchain
from engine.errors import InputError, StackLockedError
from engine.home import EngineHome
from engine.planning import StackTarget
from engine.results import SECRET_MASK, Operation, StackInfo, StackResult, Status
from engine.runners.base import StackLockHeld, exclusive, locked_result, state_file
from engine.stream import EventStream, ResourceStep, StackStarted
from engine.toolchain import TOFU_VERSION, Tool

MODULES_ROOT = Path(__file__).resolve().parent.parent.parent / "terraform"  # a source checkout's; the provider's catalog may hold its own
# Compatibility range of the pinned OpenTofu: it forked from Terraform 1.6 and tracks its language.
TOFU_COVERS = ((1, 6), tuple(int(p) for p in TOFU_VERSION.split(".")[:2]))


@dataclass(frozen=True)
class Binary:
    path: str
    label: str  # "OpenTofu v1.10.6" | "Terraform v1.6.6"


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def select_binary(requested: str | None, tofu: Tool, terraform_on_path: tuple[str, str] | None) -> Binary:
    """Which binary serves ``terraform_version`` (a custom property such as "1.6").

    A ``terraform`` on PATH whose version starts with the requested one wins; otherwise
    the pinned OpenTofu serves any version in its compatibility range.  Anything else
    raises ``InputError`` (exit 2) saying why.  ``tofu`` may be a not-yet-installed
    placeholder: choosing needs only its version.
    """
    tofu_binary = Binary(str(tofu.executable), f"OpenTofu v{tofu.version}")
    if requested is None:
        return tofu_binary
    if terraform_on_path is not None:
        path, version = terraform_on_path
        if version == requested or version.startswith(requested + "."):
            return Binary(path, f"Terraform v{version}")
    want = _parse_version(requested)[:2]
    low, high = TOFU_COVERS
    if low <= want <= high:
        return tofu_binary
    found = f"; terraform on PATH is v{terraform_on_path[1]}" if terraform_on_path else "; no terraform on PATH"
    raise InputError(
        f"terraform_version {requested} cannot be satisfied: OpenTofu v{tofu.version} covers "
        f"{low[0]}.{low[1]}–{high[0]}.{high[1]}{found}",
        hint=f"set the repository's terraform_version custom property to a version between {low[0]}.{low[1]} and {high[0]}.{high[1]}, "
             f"or install terraform {requested} on PATH",
    )


def terraform_on_path() -> tuple[str, str] | None:
    """A ``terraform`` on PATH and its version — asked with the same scrubbed environment as every tool start."""
    found = shutil.which("terraform")
    if not found:
        return None
    try:
        out = process.run([found, "version", "-json"], env=process.tool_env({"CHECKPOINT_DISABLE": "1"}), timeout=30)
        return found, json.loads(out.stdout)["terraform_version"]
    except (InputError, ValueError, KeyError, TypeError):
        return None
    except Exception:  # noqa: BLE001 - a broken terraform on PATH is the same as none
        return None


def backend_config(target: StackTarget) -> dict:
    """The backend block for this stack: under the customer's own state location."""
    url = urlsplit(target.backend_url)
    if url.scheme == "file":
        return {"local": {"path": f"{state_file(target.backend_url)}/terraform/{target.environment}.tfstate"}}
    if url.scheme == "s3":
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        config: dict = {
            "bucket": url.netloc,
            "key": f"{unquote(url.path).strip('/')}/terraform/{target.environment}.tfstate",
            "region": query.get("region", "us-east-1"),
            "use_lockfile": True,
        }
        if "endpoint" in query:
            config.update({"endpoints": {"s3": query["endpoint"]}, "skip_credentials_validation": True,
                           "skip_requesting_account_id": True, "skip_metadata_api_check": True, "skip_region_validation": True})
        if query.get("use_path_style") == "true":
            config["use_path_style"] = True
        return {"s3": config}
    raise InputError(f"unsupported state URL scheme {url.scheme!r} for the Terraform path")


class TerraformRunner:
    """Runs one operation on one stack target with tofu/terraform; returns a ``StackResult``."""

    tool = "terraform"

    def __init__(self, home: EngineHome, stream: EventStream | None = None, lock_timeout: float = 0.0, tf_lock_timeout: str = "60s",
                 find_tofu: Callable[[], Tool] = lambda: toolchain.ensure("tofu"),
                 find_mirror: Callable[[], Path] = lambda: toolchain.ensure_provider_mirror(),
                 find_terraform: Callable[[], tuple[str, str] | None] = terraform_on_path, modules_root: Path = MODULES_ROOT):
        self.home = home
        self.modules_root = modules_root
        self.stream = stream or EventStream()
        self.lock_timeout = lock_timeout
        self.tf_lock_timeout = tf_lock_timeout
        self._find_tofu, self._find_mirror, self._find_terraform = find_tofu, find_mirror, find_terraform
        self._tofu: Tool | None = None
        self._mirror: Path | None = None
        self._terraform: tuple[str, str] | None | bool = False  # False: not looked for yet

    # -- tools, resolved on first use (deployed_with needs none) ---------

    @property
    def tofu(self) -> Tool:
        if self._tofu is None:
            self._tofu = self._find_tofu()
        return self._tofu

    @property
    def provider_mirror(self) -> Path:
        if self._mirror is None:
            self._mirror = self._find_mirror()
        return self._mirror

    def _terraform_on_path(self) -> tuple[str, str] | None:
        if self._terraform is False:
            self._terraform = self._find_terraform()
        return self._terraform  # type: ignore[return-value]

    # -- preparation (before anything runs) ------------------------------

    def prepare(self, targets: list[StackTarget]) -> None:
        """Fail with exit 2 before any target runs if a binary can't be selected; then make sure the tools exist."""
        placeholder = Tool("tofu", TOFU_VERSION, Path("(not installed yet)"), "pending")
        for target in targets:
            select_binary(target.tool_version, self._tofu or placeholder, self._terraform_on_path())
        if targets:
            self.tofu, self.provider_mirror  # noqa: B018 - resolve (install) before the first stack starts

    def binary(self, target: StackTarget) -> Binary:
        return select_binary(target.tool_version, self.tofu, self._terraform_on_path())

    def deployed_with(self, target: StackTarget) -> bool:
        """True when the stack's Terraform state (file:// backends) holds resources."""
        local = backend_config(target).get("local")
        if not local:
            return False
        try:
            return bool(json.loads(Path(local["path"]).read_text()).get("resources"))
        except (OSError, ValueError):
            return False

    # -- the single place that starts the tool ---------------------------

    def _tf(self, binary: Binary, args: list[str], cwd: Path, env: dict, stream: Callable[[str], None] | None = None) -> process.Completed:
        # apply -json: one JSON object per line, turned into live progress by ``stream``
        return process.run([binary.path, *args], cwd=cwd, env=env, on_stdout=stream)

    def _env(self) -> dict:
        """The scrubbed tool environment (no TF_LOG, TF_CLI_ARGS, TF_VAR_*, engine secrets) plus the engine's settings."""
        return process.tool_env({
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_CLI_CONFIG_FILE": str(self._cli_config()),
        }, path_first=[self.tofu.bin_dir])

    def _cli_config(self) -> Path:
        """Providers come from the engine's filesystem mirror; a shared plugin cache (OpenTofu locks it)."""
        directory = self.home.root / "tofu"
        cache = directory / "plugin-cache"
        cache.mkdir(parents=True, exist_ok=True)
        path = directory / "cli.tfrc"
        text = (
            f'plugin_cache_dir = "{cache}"\n'
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{self.provider_mirror}"\n    include = ["registry.opentofu.org/engine/*"]\n  }}\n'
            '  direct {\n    exclude = ["registry.opentofu.org/engine/*"]\n  }\n'
            "}\n"
        )
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        return path

    # -- work dir ----------------------------------------------------------

    def _workdir(self, target: StackTarget) -> Path:
        """Copy the module, write tfvars and the backend override; returns the dir."""
        module = self.modules_root / ("local" if target.program == "local" else ".")
        if not any(module.glob("*.tf")):
            raise InputError(f"no Terraform module for target {target.program!r} in {module}",
                             hint="the provider repository (--catalog) holds the modules under terraform/")
        work = self.home.work_dir(target.customer, target.environment) / "terraform"
        work.mkdir(parents=True, exist_ok=True)
        wanted = {p.name for p in module.glob("*.tf")}
        for old in work.glob("*.tf"):
            if old.name not in wanted:
                old.unlink()
        for src in sorted(module.glob("*.tf")):
            dst = work / src.name
            if not dst.exists() or dst.read_bytes() != src.read_bytes():
                shutil.copyfile(src, dst)
        variables = dict(target.config)
        if target.program != "local":
            variables.pop("local_root", None)
        (work / "terraform.tfvars.json").write_text(json.dumps(variables, indent=2, sort_keys=True))
        (work / "zz_engine_backend_override.tf.json").write_text(json.dumps({"terraform": {"backend": backend_config(target)}}, indent=2))
        self.home.ensure_state_dir(target.backend_url)
        return work

    @contextmanager
    def _cache_guard(self, writes: bool) -> Iterator[None]:
        """Inits that may write the shared plugin cache run alone; inits that only read it run together.

        Without a dependency lock file, every init re-installs the providers into the shared cache,
        replacing the entry other inits are reading (tofu crashed in ``LinkFromOtherCache``, plans
        beside it found "Required plugins are not installed").  With the lock file in place, init
        only verifies and links — safe in parallel.
        """
        path = self.home.root / "tofu" / "init.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX if writes else fcntl.LOCK_SH)
            yield

    def _init(self, binary: Binary, work: Path, env: dict, module: str) -> None:
        digest = hashlib.sha256()
        for path in sorted(work.glob("*.tf")) + [work / "zz_engine_backend_override.tf.json"]:
            digest.update(path.name.encode() + path.read_bytes())
        digest.update(binary.label.encode() + str(self.provider_mirror).encode())
        marker = work / ".terraform" / "engine-init.sha256"
        if marker.is_file() and marker.read_text() == digest.hexdigest():
            return  # same module, backend and binary as last time: init would change nothing
        # The dependency lock file of this module + binary + provider build, shared by every work dir using it.
        key = hashlib.sha256(f"{module}|{binary.label}|{self.provider_mirror}".encode()).hexdigest()[:16]
        template = self.home.root / "tofu" / "lockfiles" / f"{key}.hcl"
        lock_file = work / ".terraform.lock.hcl"
        args = ["init", "-input=false", "-no-color", "-reconfigure", f"-lock-timeout={self.tf_lock_timeout}"]
        if not lock_file.is_file() and template.is_file():
            shutil.copyfile(template, lock_file)
        writes = not lock_file.is_file()
        with self._cache_guard(writes):
            if writes and template.is_file():
                shutil.copyfile(template, lock_file)  # made while this one waited: now this init only links too
            proc = self._tf(binary, args, work, env)
        if proc.returncode != 0 and not writes:
            with self._cache_guard(True):  # e.g. the cache was emptied since the lock file was made
                proc = self._tf(binary, args, work, env)
        if proc.returncode != 0:
            raise _ToolFailure(_error_text(proc))
        if not template.is_file() and lock_file.is_file():
            template.parent.mkdir(parents=True, exist_ok=True)
            tmp = template.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(lock_file, tmp)
            os.replace(tmp, template)
        marker.write_text(digest.hexdigest())

    # -- operations ------------------------------------------------------

    def run(self, target: StackTarget, operation: Operation | str) -> StackResult:
        operation = Operation(operation)
        started = time.monotonic()
        binary = self.binary(target)
        result = StackResult.for_target(target, operation, binary=binary.label)
        try:
            with exclusive(self.home, target, operation, self.lock_timeout, self.stream, result.recovered):
                self.stream.publish(StackStarted(target, operation, binary.label))
                work = self._workdir(target)
                env = self._env()
                self._init(binary, work, env, module=target.program)
                operations = {Operation.UP: self._up, Operation.PREVIEW: self._preview, Operation.REFRESH: self._refresh,
                              Operation.DESTROY: self._destroy, Operation.OUTPUTS: self._outputs_operation, Operation.LIST: self._list,
                              Operation.DRIFT: self._drift,
                              Operation.REMEDIATE: self._up}  # plan refreshes first: drift is seen and put back
                operations[operation](target, binary, work, env, result)
        except StackLockHeld as exc:
            failed = locked_result(target, operation, exc.held, started)
            failed.binary = binary.label
            return failed
        except _ToolFailure as exc:
            result.status = Status.FAILED
            result.error = str(exc).replace("engine unlock CUSTOMER --env ENV", f"engine unlock {target.customer} --env {target.environment}")
        finally:
            result.duration_s = time.monotonic() - started
        return result

    def _plan(self, binary: Binary, work: Path, env: dict, extra: list[str]) -> dict:
        plan_file = work / "engine.tfplan"
        plan_file.unlink(missing_ok=True)
        proc = self._tf(binary, ["plan", "-input=false", "-no-color", f"-lock-timeout={self.tf_lock_timeout}", "-out=engine.tfplan", *extra], work, env)
        if proc.returncode != 0:
            raise _ToolFailure(_error_text(proc))
        show = self._tf(binary, ["show", "-json", "engine.tfplan"], work, env)
        if show.returncode != 0:
            raise _ToolFailure(_error_text(show))
        return json.loads(show.stdout)

    def _apply_saved(self, target: StackTarget, binary: Binary, work: Path, env: dict) -> None:
        def stream(line: str) -> None:
            try:
                msg = json.loads(line)
            except ValueError:
                return
            if msg.get("type") in ("apply_complete", "apply_errored"):
                hook = msg.get("hook", {})
                resource = hook.get("resource", {})
                self.stream.publish(ResourceStep(target, hook.get("action", "?"), resource.get("addr", "?"), resource.get("resource_type", ""),
                                                 status="done" if msg["type"] == "apply_complete" else "failed"))

        proc = self._tf(binary, ["apply", "-input=false", "-no-color", "-json", f"-lock-timeout={self.tf_lock_timeout}", "engine.tfplan"], work, env, stream)
        if proc.returncode != 0:
            raise _ToolFailure(_json_error_text(proc))

    def _outputs(self, binary: Binary, work: Path, env: dict) -> dict:
        proc = self._tf(binary, ["output", "-json", "-no-color"], work, env)
        if proc.returncode != 0:
            raise _ToolFailure(_error_text(proc))
        return tfplan.outputs(json.loads(proc.stdout or "{}"), SECRET_MASK)

    def _resource_count(self, binary: Binary, work: Path, env: dict) -> int:
        proc = self._tf(binary, ["state", "list"], work, env)
        if proc.returncode != 0:
            if "No state file was found" in proc.stderr:
                return 0
            raise _ToolFailure(_error_text(proc))
        return len([ln for ln in proc.stdout.splitlines() if ln.strip() and not ln.startswith("data.")])

    def _up(self, target, binary, work, env, result: StackResult) -> None:
        plan = self._plan(binary, work, env, [])
        result.changes, result.resources = tfplan.summarize(plan)
        if tfplan.has_changes(plan):
            self._apply_saved(target, binary, work, env)  # exactly the plan that was just summarized
        result.outputs = self._outputs(binary, work, env)

    def _preview(self, target, binary, work, env, result: StackResult) -> None:
        plan = self._plan(binary, work, env, [])
        result.changes, result.resources = tfplan.summarize(plan)

    def _refresh(self, target, binary, work, env, result: StackResult) -> None:
        """The drift check, then the refresh-only plan applied: state records what is really there."""
        self._drift(target, binary, work, env, result)
        if result.status == Status.SUCCEEDED and result.resources:
            self._apply_saved(target, binary, work, env)

    def _drift(self, target, binary, work, env, result: StackResult) -> None:
        """plan -refresh-only: what changed outside OpenTofu.  The plan is never applied: state is not written."""
        if self._resource_count(binary, work, env) == 0:
            result.status = Status.NOT_DEPLOYED
            return
        plan = self._plan(binary, work, env, ["-refresh-only"])
        result.changes, result.resources = tfplan.summarize(plan, drift=True)
        managed = sum(1 for r in (plan.get("prior_state", {}).get("values", {}).get("root_module", {}).get("resources") or []) if r.get("mode") == "managed")
        result.changes.same = max(managed - result.changes.update - result.changes.delete, 0)

    def _destroy(self, target, binary, work, env, result: StackResult) -> None:
        if self._resource_count(binary, work, env) == 0:
            result.status = Status.NOT_DEPLOYED
        else:
            plan = self._plan(binary, work, env, ["-destroy"])
            result.changes, result.resources = tfplan.summarize(plan)
            self._apply_saved(target, binary, work, env)
        self._forget(target, work)

    def _outputs_operation(self, target, binary, work, env, result: StackResult) -> None:
        if self._resource_count(binary, work, env) == 0:
            result.status = Status.NOT_DEPLOYED
            return
        result.outputs = self._outputs(binary, work, env)

    def _list(self, target, binary, work, env, result: StackResult) -> None:
        count = self._resource_count(binary, work, env)
        if count == 0:
            result.status = Status.NOT_DEPLOYED
            return
        state_path = backend_config(target).get("local", {}).get("path")
        last = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(Path(state_path).stat().st_mtime)) if state_path and Path(state_path).exists() else None
        result.info = StackInfo(resource_count=count, last_update=last, last_result="succeeded")

    def unlock(self, target: StackTarget, lock_id: str | None) -> str:
        """Clear a state lock left by a run that is gone (``force-unlock``).  Returns what was done."""
        if not lock_id or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", lock_id):
            raise InputError("the Terraform path needs the lock ID to clear (--lock-id), as shown in the lock error")
        try:
            with exclusive(self.home, target, "unlock", self.lock_timeout, self.stream, []):
                binary = self.binary(target)
                work = self._workdir(target)
                env = self._env()
                self._init(binary, work, env, module=target.program)
                proc = self._tf(binary, ["force-unlock", "-force", lock_id], work, env)
        except StackLockHeld as exc:
            raise StackLockedError(f"{exc.held.describe()}: not unlocking a stack while a run is going",
                                   hint="wait for it to finish; `engine unlock` is for locks a crashed run left") from None
        if proc.returncode != 0:
            raise InputError(f"could not clear lock {lock_id} on {target.fqn}: {_error_text(proc)}")
        return f"cleared the state lock {lock_id} on {target.fqn}"

    def _forget(self, target: StackTarget, work: Path) -> None:
        """After destroy: remove the (now empty) local state and the work dir — no stack left behind."""
        local = backend_config(target).get("local")
        if local:
            for suffix in ("", ".backup"):
                Path(local["path"] + suffix).unlink(missing_ok=True)
            try:
                Path(local["path"]).parent.rmdir()
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)
        for directory in (work.parent, work.parent.parent):
            try:
                directory.rmdir()
            except OSError:
                break


class _ToolFailure(Exception):
    """The tool ran and failed; the message is already cleaned for a person."""


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


_LOCK_FIELD = re.compile(r"^\s*(ID|Path|Operation|Who|Version|Created):\s*(.*)$")


def _error_text(proc: process.Completed) -> str:
    """What tofu said to a person: its ``Error:`` blocks without the box drawing and boilerplate."""
    text = _ANSI.sub("", proc.stderr or proc.stdout or "").strip()
    lines = [ln.lstrip("│╷╵ ").rstrip() for ln in text.splitlines()]
    if any("Error acquiring the state lock" in ln for ln in lines):
        info = {m[1]: m[2].strip() for m in (_LOCK_FIELD.match(ln) for ln in lines) if m}
        return (f"state is locked by {info.get('Who', 'another run')} ({info.get('Operation', 'unknown operation')}) "
                f"since {info.get('Created', '?')}, lock ID {info.get('ID', '?')}. Wait for it to finish; if that run is gone, "
                f"clear it with `engine unlock CUSTOMER --env ENV --lock-id {info.get('ID', 'ID')} --yes`.")
    errors: list[str] = []
    capture = False
    for line in lines:
        if line.startswith("Error:"):
            capture = True
        if capture and line:
            errors.append(line)
    return "\n".join((errors or lines)[:15]) or f"{proc.args[1]} failed with exit code {proc.returncode}"


def _json_error_text(proc: process.Completed) -> str:
    messages = []
    for line in (proc.stdout or "").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("@level") == "error":
            diag = msg.get("diagnostic", {})
            addr = diag.get("address")
            text = f"{diag.get('summary', msg.get('@message', ''))}" + (f": {diag['detail']}" if diag.get("detail") else "")
            messages.append(f"{addr}: {text}" if addr else text)
    return "\n".join(messages[:10]) or _error_text(proc)
