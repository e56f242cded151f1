"""The Terraform runner: the only module that starts ``tofu`` and ``terraform``.

Which binary serves a stack is the customer's ``terraform_version`` (``select_binary``, pure):
HashiCorp Terraform at the line's newest release the engine builds, else OpenTofu for the lines it
covers, else exit 2 naming what can be had.

Terraform-tagged customers look exactly like Pulumi customers from the outside: the
same operations, the same ``StackResult``.  Inside, each customer × environment gets
its own work dir (a copy of the provider's module, a generated ``terraform.tfvars.json``
from the validated customer file, a generated backend override) and its own state
(``<customer backend>/terraform/<env>.tfstate``).  ``up`` plans to a file, summarizes
the saved plan, and applies exactly that plan.
"""

from __future__ import annotations

import fcntl
import functools
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
from engine.clouds import terraform_module
from engine.backups import BackupStore, Stamp
from engine.errors import EngineError, InputError, StackLockedError
from engine.home import EngineHome
from engine.planning import StackTarget
from engine.results import SECRET_MASK, Operation, StackInfo, StackResult, Status
from engine.plan_document import from_terraform_plan
from engine.runners.base import Gate, StackLockHeld, exclusive, locked_result, state_file
from engine.stream import EventStream, Notice, ResourceStep, StackStarted
from engine.toolchain import TOFU_VERSION, Tool

MODULES_ROOT = Path(__file__).resolve().parent.parent.parent / "terraform"  # a source checkout's; the provider's catalog may hold its own
# OpenTofu forked from Terraform 1.6 and tracks its language: OpenTofu vX.Y serves the Terraform lines 1.6 to X.Y.
TOFU_FIRST_LINE = (1, 6)
# The first Terraform release line whose S3 backend locks state with a lock file (``use_lockfile``);
# older lines lock S3 state only with DynamoDB, which the engine does not set up.
S3_LOCKFILE_SINCE = (1, 10)


@dataclass(frozen=True)
class Binary:
    """The binary that serves a stack: ``distribution`` ("terraform" | "opentofu") at ``version``.

    ``path`` is empty until the binary is resolved (the choice is made before anything is installed).
    """
    distribution: str
    version: str
    path: str = ""

    @property
    def label(self) -> str:
        """What ``--json`` details, comments and events call it: "Terraform v1.6.6" | "OpenTofu v1.12.6"."""
        return f"{'Terraform' if self.distribution == 'terraform' else 'OpenTofu'} v{self.version}"

    @property
    def line(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _line(version: str) -> str:
    return ".".join(version.split(".")[:2])


def select_binary(requested: str | None, *, tofu_version: str = TOFU_VERSION, terraform_builds: dict[str, str] | None = None,
                  terraform_on_path: tuple[str, str] | None = None, distribution: str = "terraform") -> Binary:
    """Which binary serves ``terraform_version`` (a custom property: a line "1.6" or a release "1.6.6").

    Pure: from what can be had, never installing anything.  In order:

    1. no pin: the pinned OpenTofu;
    2. HashiCorp Terraform at the line's newest buildable release (``terraform_builds``; a pin
       "X.Y.Z" must be exactly that release) — or a ``terraform`` on PATH at that release, or in a
       line the engine cannot build;
    3. OpenTofu, for a line "X.Y" in its range (1.6 to its own line);
    4. else ``InputError`` (exit 2) naming what can be had.

    ``distribution="opentofu"`` (the provider's choice, ``ENGINE_TERRAFORM_DISTRIBUTION``) skips step 2.
    """
    builds = toolchain.TERRAFORM_BUILDS if terraform_builds is None else terraform_builds
    tofu = Binary("opentofu", tofu_version)
    if requested is None:
        return tofu
    parts = _parse_version(requested)
    line = _line(requested)
    exact = len(parts) > 2
    if distribution == "terraform":
        if terraform_on_path is not None:
            path, version = terraform_on_path
            if version == requested or (not exact and _line(version) == line and builds.get(line) in (None, version)):
                return Binary("terraform", version, path)
        if builds.get(line) and (not exact or builds[line] == requested):
            return Binary("terraform", builds[line])
    low, high = TOFU_FIRST_LINE, tuple(int(p) for p in tofu_version.split(".")[:2])
    if not exact and low <= parts[:2] <= high:
        return tofu
    raise InputError(f"terraform_version {requested} cannot be satisfied: {available(tofu_version, builds, terraform_on_path, distribution)}",
                     hint=_hint(requested, exact, builds, distribution, low, high))


def available(tofu_version: str = TOFU_VERSION, terraform_builds: dict[str, str] | None = None,
              terraform_on_path: tuple[str, str] | None = None, distribution: str = "terraform") -> str:
    """The versions that can be had, for a person: "HashiCorp Terraform 1.6 (v1.6.6), …; OpenTofu v1.12.6 for 1.6–1.12"."""
    builds = toolchain.TERRAFORM_BUILDS if terraform_builds is None else terraform_builds
    high = ".".join(tofu_version.split(".")[:2])
    parts = []
    if distribution == "terraform":
        lines = ", ".join(f"{line} (v{version})" for line, version in sorted(builds.items(), key=lambda kv: _parse_version(kv[0])))
        if lines:
            parts.append(f"HashiCorp Terraform {lines}")
        if terraform_on_path and terraform_on_path[1] not in builds.values():
            parts.append(f"terraform v{terraform_on_path[1]} on PATH")
    parts.append(f"OpenTofu v{tofu_version} for the lines 1.6–{high}")
    if distribution == "opentofu":
        parts.append("(this provider serves terraform_version with OpenTofu only: ENGINE_TERRAFORM_DISTRIBUTION=opentofu)")
    return "; ".join(parts)


def _hint(requested: str, exact: bool, builds: dict[str, str], distribution: str, low: tuple, high: tuple) -> str:
    line = _line(requested)
    if exact and distribution == "terraform" and line in builds:
        return f'the engine builds {line} at v{builds[line]}: set the repository\'s terraform_version custom property to "{line}" (or "{builds[line]}")'
    if exact and low <= _parse_version(requested)[:2] <= high:
        return f'OpenTofu serves release lines, not exact Terraform releases: set terraform_version to "{line}"'
    choices = sorted({*(builds if distribution == "terraform" else {}), *(f"1.{m}" for m in range(low[1], high[1] + 1))}, key=_parse_version)
    return f"set the repository's terraform_version custom property to one of: {', '.join(choices)}"


def explain(requested: str | None) -> str:
    """What serves ``requested`` here, or why nothing can (for ``engine properties show``): never raises."""
    try:
        return select_binary(requested, terraform_on_path=terraform_on_path(), distribution=toolchain.terraform_distribution()).label
    except InputError as exc:
        return exc.message


def terraform_on_path() -> tuple[str, str] | None:
    """A ``terraform`` on PATH and its version — asked with the same scrubbed environment as every tool start."""
    found = shutil.which("terraform")
    if not found:
        return None
    version = toolchain.terraform_version_of(found)
    return (found, version) if version else None


def _local_state(target: StackTarget) -> dict | None:
    """The stack's state file (file:// backends), parsed; None when there is none (or state lives elsewhere)."""
    local = backend_config(target).get("local")
    if not local:
        return None
    try:
        state = json.loads(Path(local["path"]).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _state_providers(state: dict | None) -> str:
    """The provider addresses a state's resources name, sorted and joined ("" for none)."""
    resources = (state or {}).get("resources") or []
    return ",".join(sorted({str(r.get("provider", "")) for r in resources if isinstance(r, dict)}))


def state_written_by(state: dict) -> tuple[str, str] | None:
    """Which binary last wrote ``state``: ("terraform" | "opentofu", version), or None when it holds no resources.

    Both write their own version as ``terraform_version``; the distribution shows in the provider
    addresses, which each resolves against its own registry (``engine/enginelocal`` is
    registry.terraform.io/… to Terraform and registry.opentofu.org/… to OpenTofu).
    """
    resources = state.get("resources") or []
    version = state.get("terraform_version")
    if not resources or not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        return None
    providers = " ".join(str(r.get("provider", "")) for r in resources if isinstance(r, dict))
    hosts = {d for host, d in (("registry.terraform.io/", "terraform"), ("registry.opentofu.org/", "opentofu")) if host in providers}
    return (hosts.pop(), version) if len(hosts) == 1 else None


def downgrade(state: dict | None, binary: Binary) -> tuple[str, str] | None:
    """(message, hint) when ``binary`` is an older release line of the distribution that last wrote ``state``.

    Terraform and OpenTofu read each other's state (a switch between them is fine: each accepts the
    other's provider addresses), and a newer line reads an older one's; an older line rewriting a
    newer one's state may drop what it does not understand, so the engine does not let it write.
    """
    written = state_written_by(state) if state else None
    if not written or written[0] != binary.distribution or _parse_version(written[1])[:2] <= binary.line:
        return None
    name = "Terraform" if written[0] == "terraform" else "OpenTofu"
    return (f"state was last written by {name} v{written[1]}; {binary.label} is an older release line and would rewrite "
            f"state it may not understand",
            f"set terraform_version back to {_line(written[1])} (or later); to move to an older line, destroy the stack "
            f"with {name} v{written[1]} first")


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
                 find_tool: Callable[[str, str], Tool] = lambda name, version: toolchain.ensure(name, version=version),
                 find_mirror: Callable[[], Path] = lambda: toolchain.ensure_provider_mirror(),
                 find_terraform: Callable[[], tuple[str, str] | None] = terraform_on_path, modules_root: Path = MODULES_ROOT,
                 distribution: str | None = None, backups: Callable[[StackTarget], BackupStore] | None = None):
        self.home = home
        self.backups = backups  # where each stack's state backups go (engine/backups.py); None: none kept
        self.modules_root = modules_root
        self.stream = stream or EventStream()
        self.lock_timeout = lock_timeout
        self.tf_lock_timeout = tf_lock_timeout
        self._find_tool, self._find_mirror, self._find_terraform = find_tool, find_mirror, find_terraform
        self._distribution = distribution  # None: ENGINE_TERRAFORM_DISTRIBUTION, read on first use
        self._resolved: dict[Binary, Binary] = {}
        self._mirror: Path | None = None
        self._terraform: tuple[str, str] | None | bool = False  # False: not looked for yet

    # -- tools, resolved on first use (deployed_with needs none) ---------

    @property
    def distribution(self) -> str:
        if self._distribution is None:
            self._distribution = toolchain.terraform_distribution()
        return self._distribution

    @property
    def provider_mirror(self) -> Path:
        if self._mirror is None:
            self._mirror = self._find_mirror()
        return self._mirror

    def _terraform_on_path(self) -> tuple[str, str] | None:
        if self._terraform is False:
            self._terraform = self._find_terraform() if self.distribution == "terraform" else None
        return self._terraform  # type: ignore[return-value]

    def choose(self, target: StackTarget) -> Binary:
        """The binary that serves ``target`` (not installed yet); ``InputError`` when none can."""
        return select_binary(target.tool_version, terraform_on_path=self._terraform_on_path(), distribution=self.distribution)

    def _resolve(self, choice: Binary) -> Binary:
        """``choice`` with its path: from PATH, the tool cache, or built now (once per run)."""
        if choice.path:
            return choice
        if choice not in self._resolved:
            tool = self._find_tool("tofu" if choice.distribution == "opentofu" else "terraform", choice.version)
            self._resolved[choice] = Binary(choice.distribution, choice.version, str(tool.executable))
        return self._resolved[choice]

    # -- preparation (before anything runs) ------------------------------

    def prepare(self, targets: list[StackTarget]) -> None:
        """Fail with exit 2 before any target runs if no binary can serve a stack's ``terraform_version``
        (or the one that does cannot lock its S3 state); then make sure the binaries exist (a
        HashiCorp Terraform release not built yet is built now, once, into the shared tool cache)."""
        choices = []
        for target in targets:
            try:
                choice = self.choose(target)
            except InputError as exc:
                if exc.message.startswith("terraform_version"):  # say whose pin it is (tenant record or repository property)
                    raise InputError(f"{target.customer}: {exc.message}", hint=exc.hint) from None
                raise
            problem = self._cannot_run(target, choice)
            if problem:
                raise InputError(problem[0], hint=problem[1])
            choices.append(choice)
        for choice in dict.fromkeys(choices):
            self._resolve(choice)  # installs (builds) before the first stack starts
        if targets:
            self.provider_mirror  # noqa: B018

    def binary(self, target: StackTarget) -> Binary:
        return self._resolve(self.choose(target))

    @staticmethod
    def _cannot_run(target: StackTarget, binary: Binary) -> tuple[str, str] | None:
        """(message, hint) when ``binary`` cannot run ``target`` at all; None when it can."""
        if "s3" in backend_config(target) and binary.distribution == "terraform" and binary.line < S3_LOCKFILE_SINCE:
            return (f"{target.fqn} keeps its state in S3, and {binary.label} can lock S3 state only with DynamoDB "
                    f"(the S3 lock file arrived in Terraform {S3_LOCKFILE_SINCE[0]}.{S3_LOCKFILE_SINCE[1]})",
                    f"set terraform_version to {S3_LOCKFILE_SINCE[0]}.{S3_LOCKFILE_SINCE[1]} or later, or have OpenTofu serve it "
                    f"(the provider's ENGINE_TERRAFORM_DISTRIBUTION=opentofu)")
        return None

    def deployed_with(self, target: StackTarget) -> bool:
        """True when the stack's Terraform state (file:// backends) holds resources."""
        state = _local_state(target)
        return bool(state and state.get("resources"))

    def _state(self, target: StackTarget, binary: Binary, work: Path, env: dict) -> dict | None:
        """The stack's state as its backend holds it (after init); None when there is none."""
        if "local" in backend_config(target):
            return _local_state(target)
        proc = self._tf(binary, ["state", "pull"], work, env)
        try:
            return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else None
        except ValueError:
            return None

    # -- the single place that starts the tool ---------------------------

    def _tf(self, binary: Binary, args: list[str], cwd: Path, env: dict, stream: Callable[[str], None] | None = None) -> process.Completed:
        # apply -json: one JSON object per line, turned into live progress by ``stream``
        return process.run([binary.path, *args], cwd=cwd, env=env, on_stdout=stream)

    def _env(self, binary: Binary) -> dict:
        """The scrubbed tool environment (no TF_LOG, TF_CLI_ARGS, TF_VAR_*, engine secrets) plus the engine's settings."""
        return process.tool_env({
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_CLI_CONFIG_FILE": str(self._cli_config()),
        }, path_first=[Path(binary.path).parent])

    def _cli_config(self) -> Path:
        """Providers come from the engine's filesystem mirror; a shared plugin cache (inits that write it run alone).

        One file for both binaries: ``engine/enginelocal`` means registry.terraform.io/engine/enginelocal
        to HashiCorp Terraform and registry.opentofu.org/engine/enginelocal to OpenTofu; the mirror holds
        the provider under both, and each binary also finds the other's address (state written by the other).
        """
        directory = self.home.root / "tofu"
        cache = directory / "plugin-cache"
        cache.mkdir(parents=True, exist_ok=True)
        path = directory / "cli.tfrc"
        engine_providers = ", ".join(f'"{host}/{toolchain.PROVIDER_ADDRESS[1]}/*"' for host in toolchain.PROVIDER_HOSTS)
        text = (
            f'plugin_cache_dir = "{cache}"\n'
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{self.provider_mirror}"\n    include = [{engine_providers}]\n  }}\n'
            f'  direct {{\n    exclude = [{engine_providers}]\n  }}\n'
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
        module = self.modules_root / terraform_module(target.program)  # terraform/ (aws), terraform/{local,azure,gcp}
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

    def _init(self, binary: Binary, work: Path, env: dict, target: StackTarget, force: bool = False) -> None:
        """``init`` when the module, backend, binary or the providers its state names changed since the last one.

        The providers a local state names are part of the key: state written by the other binary names
        the other registry's address (init must install it too).  ``force``: init again, alone, whatever
        the marker says (state elsewhere, e.g. S3, changed binary since this work dir's last init).
        """
        in_state = _state_providers(_local_state(target))
        digest = hashlib.sha256()
        for path in sorted(work.glob("*.tf")) + [work / "zz_engine_backend_override.tf.json"]:
            digest.update(path.name.encode() + path.read_bytes())
        digest.update(binary.label.encode() + str(self.provider_mirror).encode() + in_state.encode())
        marker = work / ".terraform" / "engine-init.sha256"
        if not force and marker.is_file() and marker.read_text() == digest.hexdigest():
            return  # same module, backend, binary and state providers as last time: init would change nothing
        # The dependency lock file of this module + binary + provider build (+ the providers state names),
        # shared by every work dir using it.  A work dir's own lock file may be another binary's: replaced.
        key = hashlib.sha256(f"{target.program}|{binary.label}|{self.provider_mirror}|{in_state}".encode()).hexdigest()[:16]
        template = self.home.root / "tofu" / "lockfiles" / f"{key}.hcl"
        lock_file = work / ".terraform.lock.hcl"
        args = ["init", "-input=false", "-no-color", "-reconfigure", f"-lock-timeout={self.tf_lock_timeout}"]
        lock_file.unlink(missing_ok=True)
        if template.is_file() and not force:
            shutil.copyfile(template, lock_file)
        writes = not lock_file.is_file()
        with self._cache_guard(writes):
            if writes and template.is_file() and not force:
                shutil.copyfile(template, lock_file)  # made while this one waited: now this init only links too
            proc = self._tf(binary, args, work, env)
        if proc.returncode != 0 and not writes:
            with self._cache_guard(True):  # e.g. the cache was emptied since the lock file was made
                proc = self._tf(binary, args, work, env)
        if proc.returncode != 0:
            raise _ToolFailure(_error_text(proc))
        if (force or not template.is_file()) and lock_file.is_file():
            template.parent.mkdir(parents=True, exist_ok=True)
            tmp = template.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(lock_file, tmp)
            os.replace(tmp, template)
        marker.write_text(digest.hexdigest())

    # -- operations ------------------------------------------------------

    def run(self, target: StackTarget, operation: Operation | str, gate: Gate | None = None) -> StackResult:
        operation = Operation(operation)
        started = time.monotonic()
        binary = self.binary(target)
        result = StackResult.for_target(target, operation, binary=binary.label)
        try:
            with exclusive(self.home, target, operation, self.lock_timeout, self.stream, result.recovered):
                self.stream.publish(StackStarted(target, operation, binary.label))
                work = self._workdir(target)
                env = self._env(binary)
                self._init(binary, work, env, target)
                if operation in _WRITES_STATE:
                    problem = downgrade(self._state(target, binary, work, env), binary)
                    if problem:
                        raise _ToolFailure(f"{problem[0]}. {problem[1][0].upper()}{problem[1][1:]}.")
                if operation in BACKED_UP:
                    try:
                        result.backups += [b for b in [self._keep_backup(target, binary, work, env, "before-up")] if b]
                    except EngineError as exc:  # no backup, no deploy: nothing has changed yet
                        raise _ToolFailure(exc.message) from None
                operations = {Operation.UP: functools.partial(self._up, gate=gate), Operation.PREVIEW: self._preview, Operation.REFRESH: self._refresh,
                              Operation.DESTROY: self._destroy, Operation.OUTPUTS: self._outputs_operation, Operation.LIST: self._list,
                              Operation.DRIFT: self._drift,
                              Operation.REMEDIATE: self._up}  # plan refreshes first: drift is seen and put back
                try:
                    operations[operation](target, binary, work, env, result)
                except _ToolFailure as exc:
                    if not _PROVIDER_NOT_INSTALLED.search(str(exc)):
                        raise
                    # State elsewhere (S3) names a provider this work dir never installed: the other binary's
                    # registry address, written since this work dir's last init.  Init again and run once more
                    # (the failure came from the plan, before anything was applied).
                    self._init(binary, work, env, target, force=True)
                    operations[operation](target, binary, work, env, result)
                if operation == Operation.DESTROY and result.status in (Status.SUCCEEDED, Status.NOT_DEPLOYED) and self.backups is not None:
                    self.backups(target).clear()  # nothing left to restore: a destroyed stack leaves nothing behind
                if operation in BACKED_UP and result.status == Status.SUCCEEDED:
                    try:
                        result.backups += [b for b in [self._keep_backup(target, binary, work, env, "after-up")] if b]
                    except EngineError as exc:  # deployed: the missing backup is a notice, not a failure
                        self.stream.publish(Notice(target, f"warning: {exc.message}"))
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

    # -- state: backups, restore, outputs for the post-deploy tests -------------------------------------------

    def _state_bytes(self, target: StackTarget, binary: Binary, work: Path, env: dict) -> bytes | None:
        """The stack's state as stored (a local file read as it is; remote state through ``state pull``)."""
        local = backend_config(target).get("local")
        if local:
            try:
                return Path(local["path"]).read_bytes()
            except FileNotFoundError:
                return None
        proc = self._tf(binary, ["state", "pull"], work, env)
        if proc.returncode != 0:
            raise _ToolFailure(_error_text(proc))
        return proc.stdout.encode() if proc.stdout.strip() else None

    @staticmethod
    def stamp(state: bytes) -> Stamp:
        """Serial and lineage of a state; ``ValueError`` when it is not a Terraform state."""
        data = json.loads(state)
        if not isinstance(data, dict) or "serial" not in data:
            raise ValueError("not a Terraform state")
        return Stamp(serial=int(data["serial"]), lineage=data.get("lineage"),
                     resources=sum(1 for r in data.get("resources") or [] if isinstance(r, dict) and r.get("mode") == "managed"))

    def _keep_backup(self, target: StackTarget, binary: Binary, work: Path, env: dict, reason: str) -> str | None:
        if self.backups is None:
            return None
        state = self._state_bytes(target, binary, work, env)
        try:
            stamp = self.stamp(state) if state else None
        except ValueError:
            return None  # a damaged state: nothing restorable to keep
        if not stamp or not stamp.resources:
            return None
        backup = self.backups(target).save(self.tool, state, reason, stamp)
        return backup.id if backup else None

    def export_state(self, target: StackTarget) -> bytes | None:
        """The stack's state (``state pull`` for remote state), under the stack's lock."""
        with exclusive(self.home, target, "state", self.lock_timeout, self.stream, []):
            binary = self.binary(target)
            work = self._workdir(target)
            env = self._env(binary)
            self._init(binary, work, env, target)
            return self._state_bytes(target, binary, work, env)

    def restore(self, target: StackTarget, state: bytes, check: Callable[[Stamp | None, str | None], None]) -> StackResult:
        """Put ``state`` back as the stack's state under the stack's lock (a local state file is replaced; remote state
        is pushed with ``state push -force``: the engine made its own newer-state check), then refresh.

        ``check(live stamp or None, why the live state is unreadable or None)`` runs first and raises to refuse."""
        started = time.monotonic()
        binary = self.binary(target)
        result = StackResult.for_target(target, Operation.RESTORE, binary=binary.label)
        try:
            with exclusive(self.home, target, Operation.RESTORE, self.lock_timeout, self.stream, result.recovered):
                self.stream.publish(StackStarted(target, Operation.RESTORE, binary.label))
                work = self._workdir(target)
                env = self._env(binary)
                local = backend_config(target).get("local")
                try:
                    self._init(binary, work, env, target)
                    live = self._state_bytes(target, binary, work, env)
                except _ToolFailure as exc:
                    live, unreadable = None, str(exc)
                else:
                    unreadable = None
                try:
                    stamp = self.stamp(live) if live else None
                except ValueError:
                    stamp, unreadable = None, "the live state is not a readable Terraform state"
                check(stamp, unreadable)
                if stamp is not None and stamp.resources:
                    backup = self.backups(target).save(self.tool, live, "before-restore", stamp) if self.backups else None
                    result.backups += [backup.id] if backup else []
                if local:
                    path = Path(local["path"])
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                    tmp.write_bytes(state)
                    os.replace(tmp, path)
                    self._init(binary, work, env, target)  # the providers the restored state names
                else:
                    (work / "engine-restore.tfstate").write_bytes(state)
                    try:
                        proc = self._tf(binary, ["state", "push", "-force", f"-lock-timeout={self.tf_lock_timeout}", "engine-restore.tfstate"], work, env)
                    finally:
                        (work / "engine-restore.tfstate").unlink(missing_ok=True)
                    if proc.returncode != 0:
                        raise _ToolFailure(_error_text(proc))
                self._refresh(target, binary, work, env, result)
        except StackLockHeld as exc:
            failed = locked_result(target, Operation.RESTORE, exc.held, started)
            failed.binary = binary.label
            return failed
        except _ToolFailure as exc:
            result.status = Status.FAILED
            result.error = str(exc)
        result.duration_s = time.monotonic() - started
        return result

    def reveal_outputs(self, target: StackTarget) -> dict[str, dict]:
        """Every output with its real value, ``{name: {"value", "secret"}}`` (``sensitive`` outputs are secret): for the
        post-deploy tests only, which keep secret values out of everything they print."""
        with exclusive(self.home, target, Operation.OUTPUTS, self.lock_timeout, self.stream, []):
            binary = self.binary(target)
            work = self._workdir(target)
            env = self._env(binary)
            self._init(binary, work, env, target)
            proc = self._tf(binary, ["output", "-json", "-no-color"], work, env)
            if proc.returncode != 0:
                raise InputError(f"cannot read the outputs of {target.fqn}: {_error_text(proc)}")
            return {k: {"value": v.get("value"), "secret": bool(v.get("sensitive"))} for k, v in json.loads(proc.stdout or "{}").items()}

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

    def _up(self, target, binary, work, env, result: StackResult, gate: Gate | None = None) -> None:
        plan = self._plan(binary, work, env, [])
        result.changes, result.resources = tfplan.summarize(plan)
        result.plan = from_terraform_plan(plan, target)
        if gate is not None and gate(result.plan).apply(result).status == Status.BLOCKED:
            return  # a policy denied this plan: nothing is applied
        if tfplan.has_changes(plan):
            self._apply_saved(target, binary, work, env)  # exactly the plan that was just summarized (and judged)
        result.outputs = self._outputs(binary, work, env)

    def _preview(self, target, binary, work, env, result: StackResult) -> None:
        plan = self._plan(binary, work, env, [])
        result.changes, result.resources = tfplan.summarize(plan)
        result.plan = from_terraform_plan(plan, target)

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
                env = self._env(binary)
                self._init(binary, work, env, target)
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


# What Terraform and OpenTofu say when state names a provider the work dir's init did not install.
_PROVIDER_NOT_INSTALLED = re.compile(r"Failed to load plugin schemas|Required plugins are not installed|Missing required provider")

# Operations that write a stack's resources from its desired state: the state is backed up before (and after) each.
BACKED_UP = (Operation.UP, Operation.REMEDIATE)

# Operations that write state: an older release line must not run them over a newer one's state.
_WRITES_STATE = (Operation.UP, Operation.REMEDIATE, Operation.REFRESH, Operation.DESTROY)


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
