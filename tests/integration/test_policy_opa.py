"""Policy and cost with the real tools: OPA (opa test, opa eval) on plan documents of real Pulumi previews and OpenTofu plans."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from engine import cost, opa, policy
from engine.errors import ToolchainError
from engine.plan_document import PlanDocument, from_terraform_plan
from tests.conftest import REPO, EngineCLI, make_catalog, tenant_record
from tests.plans import fixture_target, pulumi_document, terraform_document
from tests.unit.test_plan_document import GOLDEN
from tests.unit.test_sensitive_masking import CANARY


@pytest.fixture(scope="module", autouse=True)
def opa_installed():
    try:
        return opa.ensure(allow_install=False)
    except ToolchainError as exc:
        pytest.fail(f"the policy tests need the pinned opa: {exc.message} ({exc.hint}). Run `make tools`.", pytrace=False)


PRODUCTION = """\
project_name: {name}
environments:
  staging:
    instance_type: t3.micro
  production:
    instance_type: {production_type}
    database:
      engine: postgres
      instance_class: db.t3.small
      multi_az: true
monitoring:
  alert_email: ops@example.com
tags:
  cost-center: "4711"
"""


def catalog_with(tmp_path: Path, production_type: str) -> EngineCLI:
    root = make_catalog(tmp_path / "catalog", {"shop": (tenant_record("shop", 5), PRODUCTION.format(name="shop-app", production_type=production_type))})
    return EngineCLI(tmp_path / "home", root)


def test_the_shipped_policies_pass_their_own_tests_and_a_broken_one_is_named(tmp_path):
    cli = catalog_with(tmp_path, "t3.small")
    report = cli("policy", "test", "--json", check=0).json()
    assert report["ok"] and report["failed"] == 0 and report["passed"] >= 20
    assert {t["package"] for t in report["tests"]} >= {f"engine.policy.{p}_test" for p in
                                                         ("instance_types", "database_resilience", "public_database", "required_tags", "budget")}
    shutil.copytree(REPO / "policy", cli.catalog / "policy")  # the catalog's own policies now win over the engine's
    rego = cli.catalog / "policy" / "database_resilience.rego"
    rego.write_text(rego.read_text().replace("min_backup_days := 7", "min_backup_days := 3"))
    broken = cli("policy", "test")
    assert broken.code == 1
    assert "FAIL engine.policy.database_resilience_test.test_short_backup_retention_in_production_is_a_warning" in broken.stdout


def test_a_denied_production_instance_type_is_blocked_until_the_policy_allows_it(tmp_path):
    cli = catalog_with(tmp_path, "t3.2xlarge")
    denied = cli("policy", "eval", "shop", "--env", "production", "--json")
    assert denied.code == 1, denied.stderr
    result = denied.json()["environments"]["production"]
    assert result["policy"]["denied"]
    assert {"rule": "instance_types", "level": "deny",
            "message": "local:Instance::app-1: instance size 2xlarge (t3.2xlarge) is not allowed in production "
                       "(allowed sizes: large, medium, small, xlarge)"} in result["policy"]["decisions"]
    assert result["input"]["resources"] and result["input"]["cost"]["monthly_after"] > 0  # the input is shown
    text = cli("policy", "eval", "shop", "--env", "production")
    assert "policy: DENIED" in text.stdout and "t3.2xlarge" in text.stdout

    # The provider changes the policy — not the engine — and the same plan is allowed.
    shutil.copytree(REPO / "policy", cli.catalog / "policy")
    rego = cli.catalog / "policy" / "instance_types.rego"
    rego.write_text(rego.read_text().replace('"sizes": {"small", "medium", "large", "xlarge"}', '"sizes": {"small", "medium", "large", "xlarge", "2xlarge"}'))
    allowed = cli("policy", "eval", "shop", "--env", "production", "--json", check=0).json()
    assert not allowed["environments"]["production"]["policy"]["denied"]
    assert cli.catalog.joinpath("policy").resolve() == Path(allowed["policy_dir"])


def _without_addresses(doc: PlanDocument, result: policy.PolicyResult) -> list[tuple[str, str, str]]:
    """Decisions with the tool's resource addresses replaced by their normalized type (the rest must be equal)."""
    names = {r.address: r.type for r in doc.resources}
    out = []
    for d in result.decisions:
        head, _, rest = d.message.partition(": ")
        out.append((d.rule, d.level, f"<{names[head]}>: {rest}" if head in names else d.message))
    return sorted(out)


@pytest.mark.parametrize("kind", ["local", "aws"])
def test_pulumi_and_terraform_tenants_with_the_same_settings_get_the_same_decisions_and_cost(kind):
    """The stored OpenTofu plan (t3.small -> t3.medium, Multi-AZ -> Single-AZ in production) against the Pulumi program's
    preview of the same settings: same cost, same decisions (a Single-AZ production database and the budget are denied)."""
    terraform = terraform_document(kind, "update")
    changed = dataclasses.replace(fixture_target(kind), config=terraform.settings | {"local_root": fixture_target(kind).config.get("local_root")})
    pulumi = pulumi_document(changed)
    budget = policy.Budget(provider_max=120.0)
    results = {}
    for doc in (terraform, pulumi):
        estimate = cost.estimate(doc)
        results[doc.tool] = (round(estimate.monthly_after, 2), _without_addresses(doc, policy.evaluate(doc, estimate, budget)))
    assert results["pulumi"] == results["terraform"]
    monthly, decisions = results["terraform"]
    assert monthly == (142.95 if kind == "local" else 146.6)
    assert ("database_resilience", "deny", "<database>: a production database must be Multi-AZ (set database.multi_az: true)") in decisions
    assert ("budget", "deny", f"estimated USD {monthly:.2f}/month after this change exceeds the budget of 120.00/month for production") in decisions


ECHO = """package engine.policy.echo

# A policy that copies its whole input into a message: whatever reaches OPA would reach the decisions.
warn contains json.marshal(input)
"""


def test_no_secret_reaches_the_opa_input_or_the_decisions_even_of_a_policy_that_echoes_everything(tmp_path):
    shutil.copytree(REPO / "policy", tmp_path / "policy")
    (tmp_path / "policy" / "echo.rego").write_text(ECHO)
    plan = json.loads((GOLDEN / "opentofu-tainted-sensitive-list.json").read_text())
    assert CANARY in json.dumps(plan)
    doc = from_terraform_plan(plan, fixture_target("local"))
    result = policy.evaluate(doc, cost.estimate(doc), policy_dir=tmp_path / "policy")
    echoed = next(d.message for d in result.decisions if d.rule == "echo")
    assert json.loads(echoed)["tenant"] == "tfco"  # the echo works …
    assert CANARY not in json.dumps(result.to_dict())  # … and carries no secret


def test_a_real_database_password_never_reaches_policy_eval_output(tmp_path):
    cli = catalog_with(tmp_path, "t3.small")
    cli("up", "shop", "--env", "production", "-q", check=0)
    database = next((cli.home / "local-cloud" / "shop" / "production" / "database").glob("*.sqlite3"))
    with sqlite3.connect(database) as db:
        (password,) = db.execute("SELECT value FROM engine_meta WHERE key = 'password'").fetchone()
    assert len(password) > 20
    shutil.copytree(REPO / "policy", cli.catalog / "policy")
    (cli.catalog / "policy" / "echo.rego").write_text(ECHO)
    out = cli("policy", "eval", "shop", "--env", "production", "--json", check=0)
    assert password not in out.stdout and password not in out.stderr
    production = out.json()["environments"]["production"]
    assert any(d["rule"] == "echo" for d in production["policy"]["decisions"])
    assert production["cost"]["monthly_before"] == production["cost"]["monthly_after"] > 0  # deployed and unchanged: before = after


def test_cost_of_a_preview_matches_the_fleet_view_of_the_desired_state(tmp_path):
    cli = catalog_with(tmp_path, "t3.small")
    previewed = cli("cost", "shop", "--json", check=0).json()["environments"]
    fleet = cli("cost", "--all", "--json", check=0).json()["customers"]["shop"]["environments"]
    for env in ("staging", "production"):
        assert previewed[env]["cost"]["monthly_after"] == fleet[env]["monthly"] > 0
