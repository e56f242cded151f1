"""What the policies see and how their answers become decisions (no OPA here: tests/integration/test_policy_opa.py runs it)."""

from __future__ import annotations

import json

import pytest

from engine import cost, policy
from engine.plan_document import from_terraform_plan
from tests.plans import fixture_target, terraform_document
from tests.unit.test_plan_document import GOLDEN
from tests.unit.test_sensitive_masking import CANARY


def test_a_customer_may_lower_the_budget_but_never_raise_it():
    assert policy.Budget().max_monthly_cost is None
    assert policy.Budget(provider_max=500).max_monthly_cost == 500
    assert policy.Budget(provider_max=500, customer_max=300).max_monthly_cost == 300
    assert policy.Budget(provider_max=500, customer_max=900).max_monthly_cost == 500  # raising is ignored
    assert policy.Budget(customer_max=200).max_monthly_cost == 200  # a customer may set one where the provider has none


def test_the_policy_input_is_the_document_with_cost_totals_and_budget():
    doc = terraform_document("local", "update")
    data = policy.policy_input(doc, cost.estimate(doc), policy.Budget(provider_max=150))
    assert data["tenant"] == "tfco" and data["environment"] == "production" and len(data["resources"]) == len(doc.resources)
    assert (data["cost"]["monthly_before"], data["cost"]["monthly_after"], data["cost"]["monthly_delta"]) == (143.75, 142.95, -0.8)
    assert data["budget"] == {"max_monthly_cost": 150, "provider_max": 150, "customer_max": None}
    json.dumps(data)  # it is JSON, as OPA reads it


def test_no_secret_reaches_the_policy_input():
    plan = json.loads((GOLDEN / "opentofu-tainted-sensitive-list.json").read_text())
    doc = from_terraform_plan(plan, fixture_target("local"))
    assert CANARY not in json.dumps(policy.policy_input(doc, cost.estimate(doc)))


def test_opa_output_becomes_typed_decisions_denies_first():
    output = {"result": [{"expressions": [{"value": {
        "budget": {"deny": [], "warn": ["near the budget"], "warn_ratio": 0.8},
        "instance_types": {"deny": ["b: too big", "a: too big"], "warn": [], "allowed": {"x": 1}},
        "custom": {"deny": [{"msg": "an object"}]},
    }}]}]}
    result = policy.decisions_from(output)
    assert result.denied
    assert [(d.rule, d.level, d.message) for d in result.decisions] == [
        ("custom", "deny", '{"msg": "an object"}'), ("instance_types", "deny", "a: too big"), ("instance_types", "deny", "b: too big"),
        ("budget", "warn", "near the budget")]
    assert [d.message for d in result.warnings] == ["near the budget"]
    assert not policy.decisions_from({"result": []}).denied  # no policy package at all decides nothing


def test_test_files_are_left_out_of_evaluation_and_data_files_out_of_both(tmp_path):
    for name in ("a.rego", "a_test.rego", "pricing.yml", "properties.yml"):
        (tmp_path / name).write_text("")
    assert [p.name for p in policy.policy_files(tmp_path)] == ["a.rego"]
    assert [p.name for p in policy.policy_files(tmp_path, tests=True)] == ["a.rego", "a_test.rego"]
    with pytest.raises(policy.PolicyError, match="no policies"):
        policy.policy_files(tmp_path / "empty")


def test_without_opa_the_error_says_how_to_get_it(monkeypatch, tmp_path):
    from engine import opa
    from engine.errors import ToolchainError

    monkeypatch.setenv("PATH", str(tmp_path))  # no opa on PATH; the unit tier's tool cache is empty
    with pytest.raises(ToolchainError) as err:
        opa.ensure()  # the unit tier forbids installs
    assert "opa v1.22.4 is not installed" in err.value.message and "engine policy install" in err.value.hint
