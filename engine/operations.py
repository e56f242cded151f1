"""The data path in one place: load → validate → plan targets → run → report.

``cli.py`` calls these functions; they return results (data) and raise
``EngineError`` for anything a user has to fix.  Runners are passed in, so tests and
other front ends (GitHub events, schedules) reuse the same path.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Protocol

from engine.catalog import Catalog, Tenant
from engine.config import TenantRecord
from engine.errors import EngineError, InputError
from engine.home import EngineHome, state_path
from engine.planning import Settings, StackTarget, plan_targets
from engine.results import SECRET_MASK, RunResult, StackResult


class Runner(Protocol):
    """The seam between the engine and a tool (pulumi, tofu).  A fake can replace it."""

    tool: str

    def run(self, target: StackTarget, operation: str) -> StackResult: ...


RunnerFactory = Callable[[str], Runner]  # tool name -> runner


class Step(Protocol):
    """Runs after a successful deploy (configuration management); updates the result."""

    def run(self, target: StackTarget, result: StackResult) -> StackResult: ...


StepFactory = Callable[[str], Step]

# Operations that change resources stop at the first failed environment.
STOP_ON_FAILURE = {"up", "destroy"}


@dataclass
class Engine:
    catalog: Catalog
    home: EngineHome
    runners: RunnerFactory
    steps: StepFactory | None = None
    # Reads a tenant's customer file from its repository when the record has no local `source`.
    remote_source: Callable[[TenantRecord], Tenant] | None = None
    on_stack_done: Callable[[StackResult], None] = field(default=lambda _r: None)
    _catalog_checked: bool = field(default=False, init=False, repr=False)
    # More subscribers to each finished stack (e.g. the run history), called after on_stack_done.
    listeners: list[Callable[[StackResult], None]] = field(default_factory=list)

    def settings(self) -> Settings:
        return Settings(state_root=str(self.home.state_root), local_root=str(self.home.local_root))

    def load(self, customer: str, tenant: Tenant | None = None) -> Tenant:
        """Load and validate the tenant and its customer file (raises ``InputError``/``ConfigError``).

        ``tenant`` is a tenant already loaded from elsewhere (a GitHub event reads the customer
        file at a commit); the catalog checks still apply.
        """
        if tenant is None:
            record = self.catalog.record(customer)
            if record.source is None and self.remote_source is not None:
                tenant = self.remote_source(record)
            else:
                tenant = self.catalog.load(customer)
        # CIDRs are derived from network_index: a duplicate anywhere would overlap networks.
        # Checked once per Engine: planning a 1,000-tenant fleet must not re-read the catalog per tenant.
        if not self._catalog_checked:
            self.catalog.all_records()
            self._catalog_checked = True
        return tenant

    def plan(self, customer: str, environments: list[str] | None = None, tenant: Tenant | None = None) -> list[StackTarget]:
        tenant = self.load(customer, tenant)
        targets = plan_targets(tenant.record, tenant.config, self.settings(), environments)
        self._check_upstreams(tenant, targets)
        return targets

    def plan_many(self, customers: list[str], environments: list[str] | None = None,
                  on_error: Callable[[str, EngineError], None] | None = None) -> list[StackTarget]:
        """Targets of many customers in a stable order (sorted ids, environments in file order).

        With ``environments``, customers that have none of them are left out.  A customer that
        cannot be loaded goes to ``on_error`` when given (a fleet scan goes on), else raises.
        """
        targets: list[StackTarget] = []
        for customer in sorted(customers):
            try:
                envs = environments
                if environments:
                    known = self.load(customer).config.environments
                    envs = [e for e in environments if e in known]
                    if not envs:
                        continue
                targets.extend(self.plan(customer, envs))
            except EngineError as exc:
                if on_error is None:
                    raise
                on_error(customer, exc)
        return targets

    def _check_upstreams(self, tenant: Tenant, targets: list[StackTarget]) -> None:
        """Every consumed stack must exist in the catalog: checked before anything runs."""
        for upstream in tenant.record.consumes:
            if upstream.customer == tenant.record.customer:
                raise InputError(f"tenant {tenant.record.customer!r} cannot consume its own outputs")
            other = self.load(upstream.customer)  # local source or the customer's repository, like any tenant
            for target in targets:
                for ref in target.upstreams:
                    if ref.customer == upstream.customer and ref.environment not in other.config.environments:
                        raise InputError(
                            f"{target.fqn} consumes {ref.customer}/{ref.environment}, but {ref.customer} has no environment {ref.environment!r}",
                            hint=f"set 'environment' under consumes in stacks/{tenant.record.customer}.yml",
                        )

    def with_upstream_outputs(self, target: StackTarget, runners: dict[str, Runner]) -> StackTarget | str:
        """The target with its upstream stacks' outputs filled in, or the reason they can't be read."""
        values: dict[str, dict] = {}
        for ref in target.upstreams:
            (upstream,) = self.plan(ref.customer, [ref.environment])
            if upstream.tool not in runners:
                runners[upstream.tool] = self.runners(upstream.tool)
            result = runners[upstream.tool].run(upstream, "outputs")
            if result.status != "succeeded":
                return f"upstream {upstream.fqn} is {result.status}" + (f": {result.error}" if result.error else "")
            picked = {}
            for name in ref.outputs:
                if name not in result.outputs:
                    return f"upstream {upstream.fqn} has no output {name!r} (it has: {', '.join(sorted(result.outputs)) or 'none'})"
                if result.outputs[name] == SECRET_MASK:
                    return f"upstream output {upstream.fqn}.{name} is secret; secrets are never passed between tenants"
                picked[name] = result.outputs[name]
            values[ref.customer] = picked
        return dataclasses.replace(target, config={**target.config, "upstream": values})

    def _stack_done(self, result: StackResult) -> None:
        self.on_stack_done(result)
        for listener in self.listeners:
            listener(result)

    def run(self, customer: str, operation: str, environments: list[str] | None = None, tenant: Tenant | None = None) -> RunResult:
        """Run ``operation`` on every selected environment of ``customer``, one stack at a time.

        Everything is validated and planned before the first tool starts, so bad input
        never deploys half a customer.
        """
        targets = self.plan(customer, environments, tenant)
        runners: dict[str, Runner] = {}
        for target in targets:
            if target.tool not in runners:
                runners[target.tool] = self.runners(target.tool)
        if operation in ("up", "preview", "refresh", "destroy"):
            for target in targets:
                _refuse_tool_switch(target)
        for tool, runner in runners.items():
            prepare = getattr(runner, "prepare", None)
            if prepare is not None:
                prepare([t for t in targets if t.tool == tool])  # e.g. an unsatisfiable terraform_version: exit 2, nothing ran
        result = RunResult(customer=customer, operation=operation)
        failed: StackResult | None = None
        for target in targets:
            if failed is not None and operation in STOP_ON_FAILURE:
                # Environments run in the customer file's order (staging before production):
                # a failure stops the rollout instead of carrying it to the next environment.
                stack_result = StackResult(customer=target.customer, environment=target.environment, stack=f"{target.project}/{target.stack}",
                                           tool=target.tool, operation=operation, status="skipped",
                                           error=f"not run because {failed.environment} failed")
            else:
                if target.upstreams and operation in ("up", "preview"):
                    resolved = self.with_upstream_outputs(target, runners)
                    if isinstance(resolved, str):
                        stack_result = StackResult(customer=target.customer, environment=target.environment,
                                                   stack=f"{target.project}/{target.stack}", tool=target.tool, operation=operation,
                                                   status="failed", error=resolved)
                        failed = failed or stack_result
                        result.stacks.append(stack_result)
                        self._stack_done(stack_result)
                        continue
                    target = resolved
                stack_result = runners[target.tool].run(target, operation)
                if operation == "up" and stack_result.status == "succeeded":
                    for step_name in target.post_steps:
                        if self.steps is None:
                            raise InputError(f"no step runner for {step_name!r}")
                        stack_result = self.steps(step_name).run(target, stack_result)
                        if stack_result.status != "succeeded":
                            break
                if stack_result.status == "failed" and failed is None:
                    failed = stack_result
            result.stacks.append(stack_result)
            self._stack_done(stack_result)
        return result


def _refuse_tool_switch(target: StackTarget) -> None:
    """A stack deployed with one tool must not be deployed again with the other.

    Pulumi and Terraform keep state in different places; switching `infrastructure_tools` on a
    deployed environment would create a second copy of everything and orphan the first.
    (Checked for file:// state; for s3:// the same layout applies but is not listed here.)
    """
    root = state_path(target.backend_url)  # decoded, as Pulumi reads it; None for s3://
    if root is None:
        return
    pulumi_state = root / ".pulumi" / "stacks" / target.project / f"{target.stack}.json"
    terraform_state = root / "terraform" / f"{target.environment}.tfstate"
    other = {"terraform": ("Pulumi", pulumi_state), "pulumi": ("Terraform", terraform_state)}.get(target.tool)
    if other is None or not other[1].is_file():
        return
    try:
        data = json.loads(other[1].read_text())
    except (OSError, ValueError):
        return
    resources = data.get("resources") if other[0] == "Terraform" else ((data.get("checkpoint") or {}).get("latest") or {}).get("resources")
    empty = not resources
    if not empty:
        raise InputError(
            f"{target.fqn} was deployed with {other[0]}, but its tenant now selects {target.tool} (infrastructure_tools)",
            hint=f"switching tools would create a second copy and orphan the first: destroy {target.fqn} with {other[0]} first "
                 f"(select it again, `engine destroy {target.customer} --env {target.environment} --yes`), then switch",
        )


def unsupported_tool(tool: str) -> Runner:
    raise InputError(
        f"no runner for tool {tool!r} in this version of the engine",
        hint="customers tagged 'terraform' need the Terraform runner; remove 'terraform' from infrastructure_tools to use Pulumi",
    )
