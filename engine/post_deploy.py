"""Post-deploy tests: the provider's infrastructure tests, run against the real resources after a successful ``up``.

The provider keeps pytest tests next to each program and module (``programs/<target>/tests/``,
``terraform/local/tests/``, ``terraform/tests/`` for the AWS module; docs/TESTING.md).  In the style of Terratest and
testinfra they receive the stack — its outputs and the target's planned settings — and check what really exists:
files and disks for the local target, the cloud's API (boto3) for AWS.  This module is

- the step the engine runs after a successful ``up`` (``PostDeployTests.run``) for the environments the tenant asks
  for (``post_deploy_tests``: by default production only), and on demand (``engine test``);
- the child process that runs one stack's tests (``python -m engine.post_deploy``): pytest in its own process, through
  ``engine.process`` (the scrubbed tool environment), with the stack handed over on stdin — the secret outputs too,
  which therefore never reach a command line, an environment variable or a file — and one JSON result on stdout;
- the pytest plugin that gives the tests their fixtures (``stack``, ``outputs``, ``settings``, ``secret``, ``aws``).

Secret outputs (the database password) are given to a test only through ``secret(name)``; every text the child
reports (failure messages) has their values, and any long piece of them, replaced by ``[secret]``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from engine import process
from engine.clouds import terraform_module
from engine.results import SECRET_MASK, FailedTest, PostDeployOutcome, StackResult, Status
from engine.stream import EventStream, Notice

if TYPE_CHECKING:
    from engine.history import HistoryStore
    from engine.planning import StackTarget
    from engine.snapshots import Revision

PRODUCTION = ("production", "prod")
TIMEOUT_S = float(os.environ.get("ENGINE_POST_DEPLOY_TIMEOUT", 900))
MESSAGE_LINES = 12


def selected(setting: bool | list[str] | None, environment: str, default: tuple[str, ...] = ()) -> bool:
    """A tenant's per-environment switch (``post_deploy_tests``, ``rollback_on_failure``): true (every environment),
    false (none), a list of environments, or unset (``default``)."""
    if setting is None:
        return environment in default
    if isinstance(setting, bool):
        return setting
    return environment in setting


def suite_wanted(record, environment: str) -> bool:
    """Post-deploy tests run after an ``up`` of this environment: the tenant's ``post_deploy_tests``, by default production."""
    return selected(getattr(record, "post_deploy_tests", None), environment, PRODUCTION)


def rollback_wanted(record, environment: str) -> bool:
    """A failed post-deploy test rolls this environment back: the tenant's ``rollback_on_failure`` (opt-in)."""
    return selected(getattr(record, "rollback_on_failure", None), environment)


def suite_dir(target: StackTarget, programs_root: Path, modules_root: Path) -> Path:
    """Where ``target``'s tests live: next to the program (Pulumi) or the module (Terraform) it deploys."""
    if target.tool == "terraform":
        return modules_root / terraform_module(target.program) / "tests"  # the module the runner deploys (terraform/azure, …)
    return programs_root / target.program / "tests"


def has_tests(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("test_*.py"))


@dataclass
class PostDeployTests:
    """Runs a stack's post-deploy tests and folds the outcome into its ``StackResult``."""

    programs_root: Path
    modules_root: Path
    stream: EventStream = field(default_factory=EventStream)
    timeout: float = TIMEOUT_S

    def directory(self, target: StackTarget) -> Path:
        return suite_dir(target, self.programs_root, self.modules_root)

    def run(self, target: StackTarget, result: StackResult, reveal: Callable[[StackTarget], dict] | None) -> StackResult:
        """Test the deployed stack; a failing (or broken) test fails ``result`` with the test named.  Without tests next
        to the program, or a runner that cannot read the outputs (``reveal``), nothing runs."""
        directory = self.directory(target)
        if not has_tests(directory):
            return result
        if reveal is None:
            self.stream.publish(Notice(target, f"post-deploy tests not run: the {target.tool} runner here cannot read the outputs"))
            return result
        self.stream.publish(Notice(target, "post-deploy tests started"))
        outcome = self.test(target, reveal(target))
        result.tests = outcome
        if outcome.status != "passed":
            result.status = Status.FAILED
            result.error = outcome.describe()
        self.stream.publish(Notice(target, f"post-deploy tests {outcome.status}: {outcome.describe()}"))
        return result

    def test(self, target: StackTarget, outputs: dict[str, dict]) -> PostDeployOutcome:
        """Run the tests in their own process against ``outputs`` (``{name: {"value", "secret"}}``)."""
        started = time.monotonic()
        directory = self.directory(target)
        secrets = {k: o["value"] for k, o in outputs.items() if o.get("secret") and o.get("value") is not None}
        job = {"directory": str(directory),
               "stack": {"customer": target.customer, "environment": target.environment, "tool": target.tool, "program": target.program,
                         "settings": target.config,
                         "outputs": {k: (SECRET_MASK if o.get("secret") else o.get("value")) for k, o in outputs.items()}},
               "secrets": {k: v if isinstance(v, str) else json.dumps(v) for k, v in secrets.items()}}
        proc = process.run([sys.executable, "-m", "engine.post_deploy"], input=json.dumps(job), cwd=directory, env=_child_env(),
                           timeout=self.timeout)
        found = None
        for line in reversed(proc.stdout.splitlines()):
            try:
                found = json.loads(line).get("post_deploy")
                break
            except (ValueError, AttributeError):
                continue
        if not isinstance(found, dict):
            why = "timed out" if proc.timed_out else f"exited with {proc.returncode}"
            tail = scrub((proc.stderr.strip().splitlines() or [""])[-1], list(job["secrets"].values()))[:300]
            found = {"status": "error", "failures": [{"name": str(directory.name), "message": f"the tests {why}" + (f": {tail}" if tail else "")}]}
        outcome = PostDeployOutcome(status=found.get("status", "error"), passed=int(found.get("passed", 0)), failed=int(found.get("failed", 0)),
                                    skipped=int(found.get("skipped", 0)), directory=_shown(directory),
                                    failures=[FailedTest(name=str(f.get("name", "?"))[:300],
                                                         message=scrub(str(f.get("message", "")), list(job["secrets"].values())))
                                              for f in found.get("failures") or []][:20],
                                    duration_s=round(time.monotonic() - started, 2))
        if outcome.status == "passed" and outcome.failures:
            outcome.status = "failed"
        return outcome


@dataclass
class AfterDeploy:
    """What follows a successful ``up`` (or ``up --refresh``), in order: the post-deploy tests the tenant asks for; the
    snapshot of a deploy that passed (engine/snapshots.py, recorded by the history); for a failed test and a tenant with
    ``rollback_on_failure``, the rollback to the last good snapshot (engine/rollback.py).

    Called by ``Engine.run`` as ``after_deploy(tenant, target, result, runner, operation)``; returns the (possibly
    failed) result and, when it is to be rolled back, the rollback to run once the failure is reported (it returns the
    rollback's result, or None when none could run; either way it says so in the failed result's ``rolled_back``)."""

    tests: PostDeployTests
    revision_of: Callable[[StackTarget], "Revision"]  # the program/module revision deployed now
    history: Callable[[], "HistoryStore | None"]
    runner_for: Callable[[str, Path | None], object]  # a runner of the tool over a revision's code (None: the current code)
    stream: EventStream = field(default_factory=EventStream)

    def __call__(self, tenant, target: StackTarget, result: StackResult, runner,
                 operation) -> tuple[StackResult, Callable[[], StackResult | None] | None]:
        if getattr(runner, "tool", None) != target.tool:
            return result, None  # executed elsewhere (Spacelift): neither tested nor snapshotted here
        if str(operation) == "up" and suite_wanted(tenant.record, target.environment):
            result = self.tests.run(target, result, getattr(runner, "reveal_outputs", None))
        if result.status == Status.SUCCEEDED:
            from engine import snapshots

            result.snapshot = snapshots.build(tenant, target, result, self.revision_of(target), tool_version(target, result))
            return result, None
        if result.tests is not None and result.tests.status != "passed" and rollback_wanted(tenant.record, target.environment):
            return result, lambda: self.roll_back(target, result)
        return result, None

    def roll_back(self, target: StackTarget, failed: StackResult) -> StackResult | None:
        """Roll ``target`` back to its newest snapshot after ``failed``; what happened goes into ``failed.rolled_back``."""
        from engine import rollback
        from engine.errors import EngineError

        store = self.history()
        reason = failed.error or "post-deploy tests failed"
        try:
            if store is None:
                raise EngineError("no run history to find the last good deploy in (ENGINE_HISTORY_URL)")
            rows = store.snapshots(target.customer, target.environment, limit=1)
            if not rows:
                raise EngineError("no earlier successful deploy of this environment is recorded")
            source = rollback.Source(run_id=rows[0]["run_id"], finished_at=rows[0]["finished_at"], operation=rows[0]["operation"],
                                     sha=rows[0]["snapshot"].get("sha") or rows[0].get("sha"), snapshot=rows[0]["snapshot"])
            self.stream.publish(Notice(target, f"rolling back to {source.describe()}: {reason.splitlines()[0]}"))
            plan = rollback.prepare(target, source, self.revision_of(target), self.runner_for)
            try:
                result = rollback.apply(plan, reason=reason)
            finally:
                plan.cleanup()
        except EngineError as exc:
            failed.rolled_back = {"status": "not-run", "error": exc.message}
            self.stream.publish(Notice(target, f"not rolled back: {exc.message}"))
            return None
        failed.rolled_back = rollback.summary(result)
        return result


def tool_version(target: StackTarget, result: StackResult) -> str | None:
    """The tool that deployed ``result``: ``pulumi v3.260.0``, ``OpenTofu v1.12.6``, ``Terraform v1.6.6``."""
    if result.binary:
        return result.binary
    if target.tool == "pulumi":
        from engine import toolchain

        return f"pulumi v{toolchain.pulumi_version()}"
    return None


def _shown(directory: Path) -> str:
    """The tests' folder as shown: relative to the checkout that holds it (``programs/local/tests``)."""
    parts = directory.resolve().parts
    for anchor in ("programs", "terraform"):
        if anchor in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(anchor) - 1:])
    return str(directory)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value, and every piece of one at least 8 characters long, replaced by ``[secret]``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, SECRET_MASK)
        if len(secret) >= 8:
            for size in range(len(secret) - 1, 7, -1):
                for start in range(0, len(secret) - size + 1):
                    piece = secret[start:start + size]
                    if piece in text:
                        text = text.replace(piece, SECRET_MASK)
    return text


def _child_env() -> dict[str, str]:
    """The tool environment (no engine secrets, no GitHub tokens; cloud credentials pass: AWS tests read the cloud) and
    the engine importable (the plugin)."""
    engine_root = Path(__file__).resolve().parent.parent
    return process.tool_env({"PYTHONPATH": str(engine_root), "PYTHONDONTWRITEBYTECODE": "1"})


# -- in the child process: pytest with the engine's fixtures --------------------------------------------------------------

class Stack:
    """What a post-deploy test is given about the deployed stack."""

    def __init__(self, data: dict):
        self.customer: str = data["customer"]
        self.environment: str = data["environment"]
        self.tool: str = data["tool"]
        self.program: str = data["program"]
        self.settings: dict = data["settings"]  # what the planner gave the program (CIDRs, sizes, database, monitoring…)
        self.outputs: dict = data["outputs"]  # secret outputs read "[secret]": ask ``secret(name)``

    def __repr__(self) -> str:
        return f"Stack({self.customer}/{self.environment}, {self.tool}, {self.program})"


class Plugin:
    """The pytest plugin of a post-deploy run: fixtures, and each test's outcome collected for the engine."""

    def __init__(self, job: dict):
        self.job = job
        self.secrets: dict[str, str] = job.get("secrets") or {}
        self.reports: list[dict] = []
        self.collect_errors: list[dict] = []

    # fixtures (pytest finds them on a registered plugin object)
    import pytest as _pytest

    @_pytest.fixture(scope="session")
    def stack(self) -> Stack:
        return Stack(self.job["stack"])

    @_pytest.fixture(scope="session")
    def outputs(self, stack: Stack) -> dict:
        return stack.outputs

    @_pytest.fixture(scope="session")
    def settings(self, stack: Stack) -> dict:
        return stack.settings

    @_pytest.fixture(scope="session")
    def secret(self) -> Callable[[str], str]:
        """``secret("database_password")``: a secret output's real value (never printed: the engine masks it in reports)."""
        def value(name: str) -> str:
            if name not in self.secrets:
                raise KeyError(f"no secret output {name!r} (secret outputs: {', '.join(sorted(self.secrets)) or 'none'})")
            return self.secrets[name]
        return value

    @_pytest.fixture(scope="session")
    def aws(self, stack: Stack):
        """A boto3 session in the stack's region (AWS_ENDPOINT_URL, e.g. a local moto server, is honoured by boto3)."""
        import boto3

        return boto3.session.Session(region_name=os.environ.get("AWS_REGION") or stack.settings.get("region"))

    del _pytest

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.reports.append({"name": report.nodeid, "when": report.when, "outcome": report.outcome, "message": _message(report)})

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.collect_errors.append({"name": report.nodeid or "collection", "message": _message(report)})

    def summary(self) -> dict:
        secrets = list(self.secrets.values())
        failures = [{"name": r["name"] + ("" if r["when"] == "call" else f" ({r['when']})"), "message": scrub(r["message"], secrets)}
                    for r in self.reports if r["outcome"] == "failed"]
        failures += [{"name": e["name"], "message": scrub(e["message"], secrets)} for e in self.collect_errors]
        passed = sum(1 for r in self.reports if r["outcome"] == "passed" and r["when"] == "call")
        skipped = sum(1 for r in self.reports if r["outcome"] == "skipped")
        status = "failed" if failures else ("passed" if passed or skipped else "error")
        if status == "error":
            failures = [{"name": self.job["directory"], "message": "no tests were collected"}]
        return {"status": status, "passed": passed, "failed": len(failures), "skipped": skipped, "failures": failures}


def _message(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or "")
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        text = str(report.longrepr[2])
    lines = [ln.rstrip() for ln in text.strip().splitlines()]
    return "\n".join(lines[:MESSAGE_LINES])[:2000]


def _child() -> int:
    """One stack's tests: the job on stdin, one JSON line on stdout (pytest's own output goes nowhere)."""
    import pytest

    job = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)  # pytest's report may quote secrets; the engine reports only the scrubbed summary
    plugin = Plugin(job)
    directory = job["directory"]
    # -c /dev/null: no ini file of a parent directory (the provider repository's) applies; the folder is its own root
    args = [directory, "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", directory, "--confcutdir", directory,
            "-c", os.devnull, "-q", "--tb=short", "--continue-on-collection-errors", "-o", "python_files=test_*.py", "-W", "ignore::DeprecationWarning"]
    pytest.main(args, plugins=[plugin])
    out.write(json.dumps({"post_deploy": plugin.summary()}) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child())
