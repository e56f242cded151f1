"""The data path with a fake runner at the tool seam: validation first, order, stop on failure."""

from __future__ import annotations

import shutil

import pytest

from engine.catalog import Catalog
from engine.errors import ConfigError
from engine.home import EngineHome
from engine.operations import Engine
from engine.runners.terraform import TerraformRunner
from tests.conftest import REPO
from tests.fakerunner import FakeRunner


@pytest.fixture
def engine_with(tmp_path):
    def build(runner: FakeRunner) -> Engine:
        shutil.copytree(REPO / "stacks", tmp_path / "c" / "stacks")
        shutil.copytree(REPO / "examples", tmp_path / "c" / "examples")
        home = EngineHome(tmp_path / "home")
        runners = {"pulumi": runner, "terraform": TerraformRunner(home)}  # the real one: it reads its own state files
        return Engine(catalog=Catalog(tmp_path / "c"), home=home, runners=runners.__getitem__)

    return build


def test_environments_run_in_file_order(engine_with):
    runner = FakeRunner()
    result = engine_with(runner).run("acme", "up")
    assert runner.calls == [("staging", "up"), ("production", "up")]
    assert result.ok and result.exit_code == 0


def test_a_failed_environment_stops_the_rollout(engine_with):
    runner = FakeRunner(fail={"staging"})
    result = engine_with(runner).run("acme", "up")
    assert runner.calls == [("staging", "up")]
    assert [(s.environment, s.status) for s in result.stacks] == [("staging", "failed"), ("production", "skipped")]
    assert "staging failed" in result.stacks[1].error and result.exit_code == 1


def test_read_only_operations_continue_after_a_failure(engine_with):
    runner = FakeRunner(fail={"staging"})
    result = engine_with(runner).run("acme", "preview")
    assert runner.calls == [("staging", "preview"), ("production", "preview")]
    assert result.exit_code == 1


def test_invalid_input_runs_nothing(engine_with, tmp_path):
    runner = FakeRunner()
    engine = engine_with(runner)
    (tmp_path / "c/examples/acme/infra/variables.yml").write_text("project_name: shop\nenvironments:\n  staging: {}\n")
    with pytest.raises(ConfigError):
        engine.run("acme", "up")
    assert runner.calls == []


def test_concurrent_first_use_agrees_on_one_passphrase(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    home = EngineHome(tmp_path / "home")
    with ThreadPoolExecutor(8) as pool:
        values = set(pool.map(lambda _i: home.passphrase("acme"), range(32)))
    assert len(values) == 1 and len(values.pop()) > 30
    assert oct((tmp_path / "home/secrets/acme.passphrase").stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in (tmp_path / "home/secrets").iterdir()] == ["acme.passphrase"]  # no temp files left


def test_switching_tools_on_a_deployed_stack_is_refused(engine_with, tmp_path):
    runner = FakeRunner()
    engine = engine_with(runner)
    state = tmp_path / "home/state/acme/terraform"
    state.mkdir(parents=True)
    (state / "staging.tfstate").write_text('{"version": 4, "resources": [{"type": "enginelocal_document"}]}')
    with pytest.raises(Exception) as err:  # acme selects pulumi, but staging holds Terraform state
        engine.run("acme", "up")
    assert "was deployed with Terraform" in str(err.value) and runner.calls == []
    (state / "staging.tfstate").write_text('{"version": 4, "resources": []}')  # destroyed: switching is fine
    assert engine.run("acme", "up").ok


# -- the policy gate between plan and apply (the real OPA: tests/integration/test_policy_gate.py) --------------

def _verdict(blocked: bool):
    from engine.governance import Verdict

    decisions = [{"rule": "instance_types", "level": "deny", "message": "m5.24xlarge is not allowed in production"}] if blocked else []
    return Verdict(blocked=blocked, policy={"denied": blocked, "decisions": decisions}, cost={"monthly_after": 12.5})


def _gated(engine_with, deny_in: set[str]):
    from engine.plan_document import desired_document

    runner = FakeRunner(plans={"staging": desired_document, "production": desired_document})
    engine = engine_with(runner)
    seen = []

    def gate(tenant, target):
        def judge(document):
            seen.append((target.environment, document.environment))
            return _verdict(target.environment in deny_in)
        return judge

    engine.gate = gate
    return engine, runner, seen


def test_a_denied_plan_is_blocked_before_apply_and_stops_the_rollout_with_exit_4(engine_with):
    engine, runner, seen = _gated(engine_with, deny_in={"staging"})
    result = engine.run("acme", "up")
    assert runner.calls == [("staging", "up"), ("staging", "gate")]  # production never ran
    staging, production = result.stacks
    assert staging.status == "blocked" and staging.error == "blocked by policy: m5.24xlarge is not allowed in production"
    assert production.status == "skipped" and production.error == "not run because staging was blocked by policy"
    assert result.exit_code == 4 and staging.to_dict()["policy"]["denied"] is True
    assert seen == [("staging", "staging")]  # the gate judged the stack's own plan


def test_an_allowed_plan_carries_its_policy_and_cost_in_the_json(engine_with):
    engine, runner, _ = _gated(engine_with, deny_in=set())
    result = engine.run("acme", "up")
    assert result.exit_code == 0 and [s.status for s in result.stacks] == ["succeeded", "succeeded"]
    assert result.stacks[0].to_dict()["cost"] == {"monthly_after": 12.5}
    assert result.to_dict()["environments"]["production"]["policy"] == {"denied": False, "decisions": []}


def test_a_preview_is_judged_after_planning_and_a_deny_marks_it_blocked(engine_with):
    engine, runner, _ = _gated(engine_with, deny_in={"production"})
    result = engine.run("acme", "preview")
    assert [c for c in runner.calls if c[1] != "gate"] == [("staging", "preview"), ("production", "preview")]
    assert [s.status for s in result.stacks] == ["succeeded", "blocked"] and result.exit_code == 4


def test_without_a_gate_nothing_is_judged(engine_with):
    runner = FakeRunner(plans={"staging": lambda t: None})
    result = engine_with(runner).run("acme", "up")
    assert "gate" not in [c[1] for c in runner.calls] and result.stacks[0].policy is None and result.exit_code == 0


def test_the_budget_is_the_providers_cap_lowered_never_raised_by_the_customer(engine_with):
    from engine.governance import budget_for

    engine = engine_with(FakeRunner())
    root = engine.catalog.root
    record = root / "stacks" / "acme.yml"
    record.write_text(record.read_text() + 'max_monthly_cost: {production: 500, "*": 100}\n')
    config = root / "examples" / "acme" / "infra" / "variables.yml"
    text = config.read_text()
    config.write_text(text.replace("    instance_count: 2\n", "    instance_count: 2\n    max_monthly_cost: 900\n"))
    tenant = engine.load("acme")
    assert budget_for(tenant, "production").max_monthly_cost == 500  # 900 asked: the provider's cap holds
    assert budget_for(tenant, "staging").max_monthly_cost == 100  # the "*" default
    config.write_text(text.replace("    instance_count: 2\n", "    instance_count: 2\n    max_monthly_cost: 300\n"))
    assert budget_for(engine.load("acme"), "production").max_monthly_cost == 300  # lowered by the customer (the file is read again)


def test_policy_eval_of_a_blocked_plan_still_assesses_it(engine_with):
    """`engine policy eval` on the plan it exists to explain: the gate blocks the preview, the assessment still shows
    (here its cost; the decisions need OPA: tests/integration/test_policy_opa.py)."""
    from engine.governance import Sources, govern

    engine, _, _ = _gated(engine_with, deny_in={"production"})
    items = govern(engine, "acme", None, Sources(policy_dir=REPO / "policy", pricing=REPO / "policy" / "pricing.yml"), decide=False)
    production = next(i for i in items if i.environment == "production")
    assert production.result.status == "blocked" and production.problem is None
    assert production.estimate is not None and production.estimate.monthly_after > 0
