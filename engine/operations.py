"""The data path in one place: load → validate → plan targets → run → report.

``cli.py`` calls these functions; they return results (data) and raise
``EngineError`` for anything a user has to fix.  Runners are passed in, so tests and
other front ends (GitHub events, schedules) reuse the same path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from engine.catalog import Catalog, Tenant
from engine.config import TenantRecord
from engine.errors import EngineError, InputError
from engine.home import EngineHome
from engine.planning import Settings, StackTarget, plan_targets
from engine.results import SECRET_MASK, Operation, RunResult, StackResult, Status
from engine.runners.base import Runner, Step
from engine.stream import EventStream, RunDone, RunStarted, StackDone

RunnerFactory = Callable[[str], Runner]  # tool name -> runner
StepFactory = Callable[[str], Step]

# Operations that change resources stop at the first failed environment.
STOP_ON_FAILURE = {Operation.UP, Operation.REMEDIATE, Operation.DESTROY}
# Operations that must never run on a stack another tool deployed.
_WRITES_OR_PLANS = {Operation.UP, Operation.REMEDIATE, Operation.PREVIEW, Operation.REFRESH, Operation.DESTROY}
_GATED = {Operation.UP, Operation.PREVIEW}  # a remediation re-applies what was deployed: not gated again
TOOLS = ("pulumi", "terraform")


@dataclass
class Engine:
    catalog: Catalog
    home: EngineHome
    runners: RunnerFactory
    steps: StepFactory | None = None
    # Reads a tenant's customer file from its repository when the record has no local `source`.
    remote_source: Callable[[TenantRecord], Tenant] | None = None
    # What happens during runs; reporters subscribe (console progress, GitHub feedback, history, …).
    stream: EventStream = field(default_factory=EventStream)
    # Which runner serves a target when it is not its tool's (Spacelift, for the tenants it executes); None: the tool's.
    executor: Callable[[TenantRecord, StackTarget], str | None] | None = None
    # Policy and cost between plan and apply (engine/governance.py): a stack's gate, or None (no policies, no prices)
    gate: "Callable[[Tenant, StackTarget], Callable | None] | None" = None
    # After a successful up: post-deploy tests, the deploy's snapshot, a rollback when a test fails (engine/post_deploy.py
    # AfterDeploy): (tenant, target, result, runner, operation) -> (result, the rollback to run once it is reported, or
    # None); None: nothing
    after_deploy: "Callable[..., tuple[StackResult, Callable[[], StackResult | None] | None]] | None" = None
    _catalog_checked: bool = field(default=False, init=False, repr=False)
    _executors: dict[str, str] = field(default_factory=dict, init=False, repr=False)

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
        if self.executor is not None:
            self._executors.update({t.fqn: self.executor(tenant.record, t) or t.tool for t in targets})
        return targets

    def runner_key(self, target: StackTarget) -> str:
        """The runner that serves ``target``: its tool's, or the executor chosen when it was planned."""
        return self._executors.get(target.fqn, target.tool)

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
            result = runners[upstream.tool].run(upstream, Operation.OUTPUTS)
            if result.status != Status.SUCCEEDED:
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

    def _stack_done(self, target: StackTarget | None, result: StackResult) -> None:
        self.stream.publish(StackDone(target, result))

    def run(self, customer: str, operation: Operation | str, environments: list[str] | None = None, tenant: Tenant | None = None) -> RunResult:
        """Run ``operation`` on every selected environment of ``customer``, one stack at a time.

        Everything is validated and planned before the first tool starts, so bad input
        never deploys half a customer.
        """
        operation = Operation(operation)
        tenant = self.load(customer, tenant)
        targets = self.plan(customer, environments, tenant)
        runners: dict[str, Runner] = {}
        for target in targets:
            if self.runner_key(target) not in runners:
                runners[self.runner_key(target)] = self.runners(self.runner_key(target))
        if operation in _WRITES_OR_PLANS:
            for target in targets:
                self._refuse_tool_switch(target)
        for tool, runner in runners.items():
            runner.prepare([t for t in targets if self.runner_key(t) == tool])  # e.g. an unsatisfiable terraform_version: exit 2, nothing ran
        self.stream.publish(RunStarted(customer, operation, tuple(targets)))
        result = RunResult(customer=customer, operation=operation)
        failed: StackResult | None = None
        for target in targets:
            if failed is not None and operation in STOP_ON_FAILURE:
                # Environments run in the customer file's order (staging before production):
                # a failure stops the rollout instead of carrying it to the next environment.
                stack_result = StackResult.for_target(target, operation, Status.SKIPPED, error=f"not run because {failed.environment} "
                                                     + ("was blocked by policy" if failed.status == Status.BLOCKED else "failed"))
            else:
                if target.upstreams and operation in (Operation.UP, Operation.REMEDIATE, Operation.PREVIEW):
                    resolved = self.with_upstream_outputs(target, runners)
                    if isinstance(resolved, str):
                        stack_result = StackResult.for_target(target, operation, Status.FAILED, error=resolved)
                        failed = failed or stack_result
                        result.stacks.append(stack_result)
                        self._stack_done(target, stack_result)
                        continue
                    target = resolved
                gate = self.gate(tenant, target) if self.gate is not None and operation in _GATED else None
                if gate is not None and operation == Operation.UP:
                    stack_result = runners[self.runner_key(target)].run(target, operation, gate=gate)  # between plan and apply
                else:
                    stack_result = runners[self.runner_key(target)].run(target, operation)
                    if gate is not None and stack_result.status == Status.SUCCEEDED and stack_result.plan is not None:
                        gate(stack_result.plan).apply(stack_result)  # a preview: decisions and cost on the plan shown
                if operation == Operation.UP and stack_result.status == Status.SUCCEEDED:
                    for step_name in target.post_steps:
                        if self.steps is None:
                            raise InputError(f"no step runner for {step_name!r}")
                        stack_result = self.steps(step_name).run(target, stack_result)
                        if stack_result.status != Status.SUCCEEDED:
                            break
                roll_back = None
                if operation in (Operation.UP, Operation.REMEDIATE) and stack_result.status == Status.SUCCEEDED and self.after_deploy:
                    stack_result, roll_back = self.after_deploy(tenant, target, stack_result, runners[self.runner_key(target)], operation)
                if stack_result.status in (Status.FAILED, Status.BLOCKED) and failed is None:
                    failed = stack_result
                if roll_back is not None:  # the failed deploy is reported first, then the rollback that follows it
                    result.stacks.append(stack_result)
                    self._stack_done(target, stack_result)
                    rollback = roll_back()  # fills stack_result.rolled_back
                    if rollback is not None:
                        self._stack_done(target, rollback)
                        stack_result.rolled_back["run_id"] = rollback.run_id
                    continue
            result.stacks.append(stack_result)
            self._stack_done(target, stack_result)
        self.stream.publish(RunDone(result))
        return result

    def _refuse_tool_switch(self, target: StackTarget) -> None:
        """A stack deployed with one tool must not be deployed again with the other.

        Pulumi and Terraform keep state in different places; switching `infrastructure_tools` on a
        deployed environment would create a second copy of everything and orphan the first.  Each
        runner answers for its own state (file:// backends).
        """
        for other in TOOLS:
            if other == target.tool:
                continue
            try:
                runner = self.runners(other)
            except EngineError:
                continue  # no runner for that tool here: nothing it could have deployed
            if runner.deployed_with(target):
                label = {"pulumi": "Pulumi", "terraform": "Terraform"}[other]
                raise InputError(
                    f"{target.fqn} was deployed with {label}, but its tenant now selects {target.tool} (infrastructure_tools)",
                    hint=f"switching tools would create a second copy and orphan the first: destroy {target.fqn} with {label} first "
                         f"(select it again, `engine destroy {target.customer} --env {target.environment} --yes`), then switch",
                )


def unsupported_tool(tool: str) -> Runner:
    raise InputError(
        f"no runner for tool {tool!r} in this version of the engine",
        hint="customers tagged 'terraform' need the Terraform runner; remove 'terraform' from infrastructure_tools to use Pulumi",
    )
