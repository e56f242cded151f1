"""The Terraform runner: the only module that starts ``tofu`` (or ``terraform``).

Terraform-tagged customers look exactly like Pulumi customers from the outside: the
same operations, the same ``StackResult``.  Inside, each customer × environment gets
its own work dir (a copy of the provider's module, a generated ``terraform.tfvars.json``
from the validated customer file, a generated backend override) and its own state
(``<customer backend>/terraform/<env>.tfstate``).  ``up`` plans to a file, summarizes
the saved plan, and applies exactly that plan.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, unquote, urlsplit

from engine import tfplan
from engine.errors import InputError, StackLockedError
from engine.home import EngineHome
from engine.locks import stack_lock
from engine.planning import StackTarget
from engine.results import SECRET_MASK, Changes, StackResult
from engine.toolchain import TOFU_VERSION, Tool

Progress = Callable[[StackTarget, str], None]

MODULES_ROOT = Path(__file__).resolve().parent.parent.parent / "terraform"
# Compatibility range of the pinned OpenTofu: it forked from Terraform 1.6 and tracks its language.
TOFU_COVERS = ((1, 6), tuple(int(p) for p in TOFU_VERSION.split(".")[:2]))
# Environment the tools must not inherit: it would change what runs (TF_CLI_ARGS, TF_VAR_*).
_SCRUB = ("TF_CLI_ARGS", "TF_VAR_", "TF_WORKSPACE", "TF_DATA_DIR", "TF_LOG", "TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR")


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
    raises ``InputError`` (exit 2) saying why.
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
    found = shutil.which("terraform")
    if not found:
        return None
    try:
        out = subprocess.run([found, "version", "-json"], capture_output=True, text=True, timeout=30, env={**os.environ, "CHECKPOINT_DISABLE": "1"})
        return found, json.loads(out.stdout)["terraform_version"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None


def backend_config(target: StackTarget) -> dict:
    """The backend block for this stack: under the customer's own state location."""
    url = urlsplit(target.backend_url)
    if url.scheme == "file":
        return {"local": {"path": f"{unquote(url.path)}/terraform/{target.environment}.tfstate"}}  # decoded, like Pulumi
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

    def __init__(self, home: EngineHome, tofu: Tool, provider_mirror: Path, progress: Progress = lambda _t, _m: None,
                 lock_timeout: float = 0.0, tf_lock_timeout: str = "60s", find_terraform: Callable[[], tuple[str, str] | None] = terraform_on_path):
        self.home = home
        self.tofu = tofu
        self.provider_mirror = provider_mirror
        self.progress = progress
        self.lock_timeout = lock_timeout
        self.tf_lock_timeout = tf_lock_timeout
        self._terraform = find_terraform()

    # -- preparation (before anything runs) ------------------------------

    def prepare(self, targets: list[StackTarget]) -> None:
        """Fail with exit 2 before any target runs if a binary can't be selected."""
        for target in targets:
            self.binary(target)

    def binary(self, target: StackTarget) -> Binary:
        return select_binary(target.tool_version, self.tofu, self._terraform)

    # -- the single place that starts the tool ---------------------------

    def _tf(self, binary: Binary, args: list[str], cwd: Path, env: dict, stream: Callable[[str], None] | None = None) -> subprocess.CompletedProcess:
        cmd = [binary.path, *args]
        if stream is None:
            return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        # apply -json: one JSON object per line, turned into live progress
        with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
            lines = []
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                stream(line)
            stderr = proc.stderr.read() if proc.stderr else ""
            proc.wait()
        return subprocess.CompletedProcess(cmd, proc.returncode, "".join(lines), stderr)

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
        env.update({
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_CLI_CONFIG_FILE": str(self._cli_config()),
            "PATH": os.pathsep.join([str(self.tofu.bin_dir), os.environ.get("PATH", "")]),
        })
        return env

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
        module = MODULES_ROOT / ("local" if target.program == "local" else ".")
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

    def _init(self, binary: Binary, work: Path, env: dict) -> None:
        digest = hashlib.sha256()
        for path in sorted(work.glob("*.tf")) + [work / "zz_engine_backend_override.tf.json"]:
            digest.update(path.name.encode() + path.read_bytes())
        digest.update(binary.label.encode() + str(self.provider_mirror).encode())
        marker = work / ".terraform" / "engine-init.sha256"
        if marker.is_file() and marker.read_text() == digest.hexdigest():
            return  # same module, backend and binary as last time: init would change nothing
        proc = self._tf(binary, ["init", "-input=false", "-no-color", "-reconfigure", f"-lock-timeout={self.tf_lock_timeout}"], work, env)
        if proc.returncode != 0:
            raise _ToolFailure(_error_text(proc))
        marker.write_text(digest.hexdigest())

    # -- operations ------------------------------------------------------

    def run(self, target: StackTarget, operation: str) -> StackResult:
        started = time.monotonic()
        binary = self.binary(target)
        result = StackResult(customer=target.customer, environment=target.environment, stack=f"{target.project}/{target.stack}",
                             tool=self.tool, operation=operation, status="succeeded", details={"binary": binary.label})
        try:
            with stack_lock(self.home.root / "locks", target.customer, target.environment, operation, self.lock_timeout):
                self.progress(target, f"{operation} started ({binary.label})")
                work = self._workdir(target)
                env = self._env()
                self._init(binary, work, env)
                operations = {"up": self._up, "preview": self._preview, "refresh": self._refresh, "destroy": self._destroy,
                              "outputs": self._outputs_operation, "list": self._list, "drift": self._drift,
                              "remediate": self._up}  # plan refreshes first: drift is seen and put back
                operations[operation](target, binary, work, env, result)
        except _ToolFailure as exc:
            result.status = "failed"
            result.error = str(exc).replace("engine unlock CUSTOMER --env ENV", f"engine unlock {target.customer} --env {target.environment}")
        except StackLockedError as exc:
            result.status = "failed"
            result.error = f"{exc.message}. {exc.hint}"
        finally:
            result.duration_s = time.monotonic() - started
        self.progress(target, f"{operation} {result.status}" + (f": {result.changes.describe()}" if result.ok and operation in ("up", "preview", "refresh", "destroy") else ""))
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
                addr = hook.get("resource", {}).get("addr", "?")
                self.progress(target, f"{hook.get('action', '?'):<8} {addr} {'done' if msg['type'] == 'apply_complete' else 'FAILED'}")

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
        if result.status == "succeeded" and result.resources:
            self._apply_saved(target, binary, work, env)

    def _drift(self, target, binary, work, env, result: StackResult) -> None:
        """plan -refresh-only: what changed outside OpenTofu.  The plan is never applied: state is not written."""
        if self._resource_count(binary, work, env) == 0:
            result.status = "not-deployed"
            return
        plan = self._plan(binary, work, env, ["-refresh-only"])
        result.changes, result.resources = tfplan.summarize(plan, drift=True)
        managed = sum(1 for r in (plan.get("prior_state", {}).get("values", {}).get("root_module", {}).get("resources") or []) if r.get("mode") == "managed")
        result.changes.same = max(managed - result.changes.update - result.changes.delete, 0)

    def _destroy(self, target, binary, work, env, result: StackResult) -> None:
        if self._resource_count(binary, work, env) == 0:
            result.status = "not-deployed"
        else:
            plan = self._plan(binary, work, env, ["-destroy"])
            result.changes, result.resources = tfplan.summarize(plan)
            self._apply_saved(target, binary, work, env)
        self._forget(target, work)

    def _outputs_operation(self, target, binary, work, env, result: StackResult) -> None:
        if self._resource_count(binary, work, env) == 0:
            result.status = "not-deployed"
            return
        result.outputs = self._outputs(binary, work, env)

    def _list(self, target, binary, work, env, result: StackResult) -> None:
        count = self._resource_count(binary, work, env)
        if count == 0:
            result.status = "not-deployed"
            return
        state_path = backend_config(target).get("local", {}).get("path")
        last = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(Path(state_path).stat().st_mtime)) if state_path and Path(state_path).exists() else None
        result.details.update({"resource_count": count, "last_update": last, "last_result": "succeeded"})

    def unlock(self, target: StackTarget, lock_id: str | None) -> str:
        """Clear a state lock left by a run that is gone (``force-unlock``).  Returns what was done."""
        if not lock_id or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", lock_id):
            raise InputError("the Terraform path needs the lock ID to clear (--lock-id), as shown in the lock error")
        binary = self.binary(target)
        with stack_lock(self.home.root / "locks", target.customer, target.environment, "unlock", self.lock_timeout):
            work = self._workdir(target)
            env = self._env()
            self._init(binary, work, env)
            proc = self._tf(binary, ["force-unlock", "-force", lock_id], work, env)
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


def _error_text(proc: subprocess.CompletedProcess) -> str:
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


def _json_error_text(proc: subprocess.CompletedProcess) -> str:
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
