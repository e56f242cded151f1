"""The engine's parts, put together once per process: which runner serves which tool, the
GitHub client, the run history, and who listens to the event stream.

Commands receive a ``Wiring`` and ask it for what they need; nothing else constructs
runners or clients.  A new tool is one entry in ``RUNNERS``; a new reporter is one
``stream.subscribe`` (here, or in the command that wants it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from engine.catalog import Catalog
from engine.errors import InputError
from engine.home import EngineHome, default_home
from engine.operations import Engine, unsupported_tool
from engine.runners.base import Runner, Step
from engine.stream import EventStream

if TYPE_CHECKING:
    from engine.github import GitHubAPI, Settings as GitHubSettings
    from engine.history import Recorder
    from engine.reporters.notify import Notifier


def _pulumi(w: "Wiring") -> Runner:
    from engine.runners.pulumi import PulumiRunner  # imported lazily: loading pulumi takes ~0.5 s

    return PulumiRunner(w.home, w.stream, lock_timeout=w.lock_timeout, backups=w.backups)


def _terraform(w: "Wiring") -> Runner:
    from engine.runners.terraform import MODULES_ROOT, TerraformRunner

    return TerraformRunner(w.home, w.stream, lock_timeout=w.lock_timeout, tf_lock_timeout=f"{int(w.lock_timeout)}s",
                           modules_root=w.provider_dir("terraform", MODULES_ROOT), backups=w.backups)


def _spacelift(w: "Wiring") -> Runner:
    from engine.runners.spacelift import SpaceliftRunner

    tenants = w._spacelift.setdefault("tenants", {})  # filled by Wiring.executor as the engine plans each tenant
    return SpaceliftRunner(w.home, w.stream, settings=w.spacelift_settings(required=True), api=w.spacelift, lock_timeout=w.lock_timeout,
                           dry_run=w.dry_run, auto_deploy=lambda customer: tenants[customer].properties.spacelift_auto_deploy)


# tool name (as planned from infrastructure_tools), or executor, -> how to build its runner
RUNNERS: dict[str, Callable[["Wiring"], Runner]] = {"pulumi": _pulumi, "terraform": _terraform, "spacelift": _spacelift}

GITHUB_CREDENTIALS = ("ENGINE_GITHUB_TOKEN", "GITHUB_TOKEN", "ENGINE_GITHUB_APP_ID")


@dataclass
class Wiring:
    catalog_root: Path
    home: EngineHome
    lock_timeout: float = 0.0
    # --dry-run: every runner only reads and previews (engine/dry_run.py); set before the first runner is built
    dry_run: bool = False
    stream: EventStream = field(default_factory=EventStream)
    _runners: dict[str, Runner] = field(default_factory=dict, repr=False)
    _engine: Engine | None = field(default=None, repr=False)
    _github: dict[object, "GitHubAPI"] = field(default_factory=dict, repr=False)
    _history: "Recorder | None" = field(default=None, repr=False)
    _notifier: "Notifier | None" = field(default=None, repr=False)
    _spacelift: dict[str, object] = field(default_factory=dict, repr=False)  # settings and client, built once

    @classmethod
    def from_options(cls, catalog: str | None, home: str | None) -> "Wiring":
        return cls(catalog_root=Path(catalog or os.environ.get("ENGINE_CATALOG") or "."),
                   home=EngineHome(Path(home).resolve() if home else default_home()))

    # -- tools -------------------------------------------------------------

    def runner(self, tool: str) -> Runner:
        """The runner of ``tool``, built once; its binary is resolved when it first needs it."""
        if tool not in self._runners:
            build = RUNNERS.get(tool)
            runner = build(self) if build else unsupported_tool(tool)
            if self.dry_run:
                from engine.dry_run import PreviewOnly

                runner = PreviewOnly(runner, self.stream)
            self._runners[tool] = runner
        return self._runners[tool]

    def step(self, name: str) -> Step:
        from engine.runners.ansible import PLAYBOOKS, AnsibleStep

        if name != "ansible":
            raise InputError(f"no step runner for {name!r}")
        return AnsibleStep(self.home, self.stream, playbook_dir=self.provider_dir("ansible", PLAYBOOKS))

    def backups(self, target):
        """The state backups of ``target``'s stack, in the customer's own state location (engine/backups.py)."""
        from engine.backups import BackupStore, keep_from_env

        return BackupStore(target.backend_url, target.customer, target.environment, self.home.passphrase(target.customer), keep=keep_from_env())

    def provider_dir(self, name: str, default: Path) -> Path:
        """The provider's own modules/playbooks: the catalog's ``terraform/`` or ``ansible/`` when it has one
        (an installed engine serving the provider's repository), else the engine checkout's."""
        own = self.catalog_root / name
        return own.resolve() if own.is_dir() else default

    # -- the engine ----------------------------------------------------------

    def engine(self) -> Engine:
        """The engine over the catalog (built once; the run history subscribes to its events)."""
        if self._engine is None:
            catalog = Catalog(self.catalog_root)
            if not catalog.stacks_dir.is_dir():
                raise InputError(f"no tenant catalog at {catalog.stacks_dir}", hint="run from the provider repository or pass --catalog PATH")
            remote_source = None
            if self.has_github_credentials():
                from engine.triggers import remote_tenant

                api = self.github()
                remote_source = lambda record: remote_tenant(api, record)  # noqa: E731 - tenants without a local checkout
            self._engine = Engine(catalog=catalog, home=self.home, runners=self.runner, steps=self.step,
                                  remote_source=remote_source, stream=self.stream, executor=self.executor, gate=self.gate(),
                                  after_deploy=self.after_deploy())
            self.stream.subscribe(self.history)
            self.stream.subscribe(self.notifier)
        return self._engine

    # -- after a deploy: post-deploy tests, snapshots, rollbacks (engine/post_deploy.py, engine/rollback.py) --------------

    def post_deploy_tests(self):
        """The provider's post-deploy tests: next to the programs (the catalog's ``programs/`` when it has one) and modules."""
        import programs
        from engine.post_deploy import PostDeployTests
        from engine.runners.terraform import MODULES_ROOT

        return PostDeployTests(self.provider_dir("programs", Path(programs.__file__).resolve().parent),
                               self.provider_dir("terraform", MODULES_ROOT), self.stream)

    def revision_of(self, target):
        """The program/module code a deploy of ``target`` runs now (engine/snapshots.py)."""
        import programs
        from engine.runners.terraform import MODULES_ROOT
        from engine.snapshots import program_files, source_revision

        if target.tool == "terraform":
            root = self.provider_dir("terraform", MODULES_ROOT).parent
        else:
            root = Path(programs.__file__).resolve().parent.parent
        return source_revision(root, program_files(target.tool, target.program))

    def runner_at(self, tool: str, source: Path | None):
        """The runner of ``tool`` over another revision's code (a directory holding its ``programs/`` and ``terraform/``);
        ``source`` None: the usual runner."""
        if source is None:
            return self.runner(tool)
        if tool == "terraform":
            from engine.runners.terraform import TerraformRunner

            return TerraformRunner(self.home, self.stream, lock_timeout=self.lock_timeout, tf_lock_timeout=f"{int(self.lock_timeout)}s",
                                   modules_root=source / "terraform", backups=self.backups)
        from engine.rollback import RevisionPulumiRunner

        return RevisionPulumiRunner(source, self.home, self.stream, self.home.passphrase, lock_timeout=self.lock_timeout)

    def history_store(self):
        """The run history's store, or None when recording is disabled (a bad ENGINE_HISTORY_URL)."""
        return self.history.store

    def after_deploy(self):
        from engine.post_deploy import AfterDeploy

        return AfterDeploy(self.post_deploy_tests(), self.revision_of, self.history_store, self.runner_at, self.stream)

    def gate(self):
        """Policy and cost between plan and apply, for a catalog with its own ``policy/`` (``*.rego`` policies
        and/or ``pricing.yml``); None otherwise — then plans are neither judged nor priced."""
        own = self.catalog_root / "policy"
        if not (any(own.glob("*.rego")) or (own / "pricing.yml").is_file()):
            return None
        from engine.governance import gate_for

        root = self.catalog_root
        return lambda tenant, target: gate_for(root, tenant, target.environment)

    @property
    def history(self) -> "Recorder":
        """Records every finished stack (best effort); see engine/history.py."""
        if self._history is None:
            from engine.history import recorder_from_env

            self._history = recorder_from_env(self.home.root)
        return self._history

    @property
    def notifier(self) -> "Notifier":
        """Slack/Teams notifications (engine/notify): the tenants' and the provider's channels; prints them under --dry-run."""
        if self._notifier is None:
            from engine.notify import build_notifier
            from engine.notify.message import Context
            from engine.provenance import actor, run_url

            who, link = actor(), run_url()
            record = lambda customer: (self._engine.catalog if self._engine else Catalog(self.catalog_root)).record(customer)  # noqa: E731
            self._notifier = build_notifier(self.catalog_root, record, lambda: Context(who, link, self.history.sha),
                                            dry_run=lambda: self.dry_run)
        return self._notifier

    # -- Spacelift (engine/spacelift) -------------------------------------------

    def spacelift_settings(self, required: bool = False):
        """The catalog's spacelift.yml (validated, read once), or None without one (``required``: exit 2 instead)."""
        from engine.spacelift.settings import load_settings, require_settings

        if "settings" not in self._spacelift or (required and self._spacelift["settings"] is None):
            self._spacelift["settings"] = require_settings(self.catalog_root) if required else load_settings(self.catalog_root)
        return self._spacelift["settings"]

    def executor(self, record, target) -> str | None:
        """Which runner serves ``target`` when it is not its tool's: "spacelift" for tenants Spacelift executes."""
        from engine.spacelift.settings import executes

        if not executes(self.spacelift_settings(), record):
            return None
        self._spacelift.setdefault("tenants", {})[record.customer] = record  # its properties as loaded (custom properties applied)
        return "spacelift"

    def spacelift(self):
        """The Spacelift API client, built once from spacelift.yml and SPACELIFT_API_KEY_* (closed by ``close``)."""
        if "api" not in self._spacelift:
            from engine.spacelift.client import SpaceliftAPI
            from engine.spacelift.settings import credentials

            self._spacelift["api"] = SpaceliftAPI(credentials(self.spacelift_settings(required=True)))
        return self._spacelift["api"]

    # -- GitHub --------------------------------------------------------------

    def github_settings(self) -> "GitHubSettings":
        from engine.github import Settings

        return Settings.from_env()

    def has_github_credentials(self) -> bool:
        return any(os.environ.get(k) for k in GITHUB_CREDENTIALS)

    def github(self, dry_run: bool = False, source: Path | None = None, head: str | None = None) -> "GitHubAPI":
        """One GitHub client per process (per dry-run mode); closed by ``close``.

        With ``source`` (a local checkout of the customer's repository): GitHub without GitHub —
        reads from the checkout, every write planned, no credentials needed (engine/offline.py).
        """
        key: object = ("offline", source, head) if source is not None else dry_run
        if key not in self._github:
            if source is not None:
                from engine.offline import OfflineGitHub

                self._github[key] = OfflineGitHub(settings=self.github_settings(), source=source, head=head)
            else:
                from engine.github import GitHubAPI

                self._github[key] = GitHubAPI(self.github_settings(), dry_run=dry_run)
        return self._github[key]

    def close(self) -> None:
        if self._notifier is not None:
            self._notifier.close()  # queued messages are delivered (or given up) before the process ends
        api = self._spacelift.pop("api", None)
        if api is not None:
            api.close()
        for api in self._github.values():
            close = getattr(api, "close", None)
            if close is not None:
                close()
        self._github.clear()
