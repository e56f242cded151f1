"""``engine test CUSTOMER [--env E] [--json]``: run the provider's post-deploy tests against the deployed stacks now."""

from __future__ import annotations

from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.post_deploy import has_tests
from engine.reporters.console import render_run
from engine.results import Operation, RunResult, StackResult, Status
from engine.wiring import Wiring
from engine.commands.options import CUSTOMER, ENV, JSON, LOCK, Verb


def run(w: Wiring, customer: str, environments: tuple[str, ...] = (), lock_timeout: float = 0.0) -> Outcome:
    w.lock_timeout = lock_timeout
    engine = w.engine()
    targets = engine.plan(check_customer_id(customer), list(environments) or None)
    tests = w.post_deploy_tests()
    result = RunResult(customer=customer, operation=str(Operation.TEST))
    for target in targets:
        directory = tests.directory(target)
        runner = w.runner(engine.runner_key(target))
        reveal = getattr(runner, "reveal_outputs", None)
        if not has_tests(directory):
            stack = StackResult.for_target(target, Operation.TEST, Status.SKIPPED, error=f"no post-deploy tests in {directory}")
        elif reveal is None:
            stack = StackResult.for_target(target, Operation.TEST, Status.SKIPPED, error=f"{target.fqn} runs elsewhere ({engine.runner_key(target)})")
        else:
            outputs = reveal(target)
            if not outputs:
                stack = StackResult.for_target(target, Operation.TEST, Status.NOT_DEPLOYED)
            else:
                outcome = tests.test(target, outputs)
                ok = outcome.status == "passed"
                stack = StackResult.for_target(target, Operation.TEST, Status.SUCCEEDED if ok else Status.FAILED, tests=outcome,
                                               error=None if ok else outcome.describe(), duration_s=outcome.duration_s)
        result.stacks.append(stack)
    return Outcome(result.to_dict(), lambda: render_run(result), result.exit_code)


VERBS = (
    Verb("test", run, (CUSTOMER, ENV, JSON, LOCK),
         "Run the provider's post-deploy tests (next to each program/module) against the customer's deployed stacks."),
)
