"""`engine cost --all`: the fleet's monthly cost from the customer files' desired state, without running a tool."""

from __future__ import annotations

import dataclasses
import time

import pytest

from engine import cost
from engine.plan_document import desired_document
from tests.conftest import EngineCLI, make_catalog, tenant_record
from tests.plans import fixture_target, pulumi_document, terraform_document
from tests.unit.test_cost import ALARMS, DB_T3_SMALL_MULTI, EIP, GP3_40, H, NAT, T3_SMALL


@pytest.mark.parametrize("kind", ["local", "aws"])
def test_the_desired_state_costs_what_a_real_plan_of_it_costs(kind):
    """The model of the programs (desired_document) against a real OpenTofu plan and the Pulumi program's own resources."""
    desired = cost.estimate(desired_document(fixture_target(kind)))
    planned = cost.estimate(terraform_document(kind, "create"))
    previewed = cost.estimate(pulumi_document(fixture_target(kind)))
    assert desired.complete and desired.monthly_after == pytest.approx(planned.monthly_after) == pytest.approx(previewed.monthly_after)
    count = lambda e: sorted(r.type for r in e.resources if r.type not in ("volume",))  # noqa: E731 - the local module's disks are its own resources
    assert count(desired) == count(previewed)


def test_settings_the_programs_read_change_the_desired_cost():
    t = fixture_target("aws")
    bigger = dataclasses.replace(t, config={**t.config, "instance_count": 3, "database": None, "monitoring": None})
    estimate = cost.estimate(desired_document(bigger))
    assert estimate.monthly_after == pytest.approx(3 * (T3_SMALL + GP3_40) + NAT + EIP)
    assert not any(r.type in ("database", "alarm") for r in estimate.resources)


CUSTOMER = """\
project_name: app-{n}
environments:
  staging:
    instance_type: t3.micro
  production:
    instance_type: t3.small
    instance_count: 2
    volume_size_gb: 40
    database:
      engine: postgres
      instance_class: db.t3.small
      storage_gb: 50
      multi_az: true
monitoring:
  alerts_enabled: true
"""
TERRAFORM = 'properties:\n  infrastructure_tools: [terraform]\n  terraform_version: "1.6"\n'


def test_cost_all_prices_a_20_tenant_fleet_per_customer_without_running_a_tool(tmp_path):
    tenants = {}
    for n in range(1, 21):
        record = tenant_record(f"tenant-{n:02d}", n) + (TERRAFORM if n % 2 else "") + ("target: aws\n" if n % 5 == 0 else "")
        tenants[f"tenant-{n:02d}"] = (record.replace("target: local\n", "") if n % 5 == 0 else record, CUSTOMER.format(n=n))
    cli = EngineCLI(tmp_path / "home", make_catalog(tmp_path / "catalog", tenants))
    started = time.monotonic()
    data = cli("cost", "--all", "--json", check=0).json()
    elapsed = time.monotonic() - started
    assert len(data["customers"]) == 20 and data["errors"] == {}
    staging = 0.0114 * H + 20 * 0.088 + 0.10 + NAT  # t3.micro + its 20 GB root volume, one alarm, the NAT gateway
    production = 2 * (T3_SMALL + GP3_40) + DB_T3_SMALL_MULTI + NAT + ALARMS
    local, aws = staging + production, staging + production + 2 * EIP  # each AWS environment has its NAT gateway's public address
    for name, row in data["customers"].items():
        n = int(name.split("-")[1])
        assert row["monthly"] == round(aws if n % 5 == 0 else local, 2), name
        assert set(row["environments"]) == {"staging", "production"} and row["complete"]
    assert {row["environments"]["production"]["target"] for row in data["customers"].values()} == {"local", "aws"}
    assert data["monthly_total"] == round(16 * round(local, 2) + 4 * round(aws, 2), 2)
    assert elapsed < 10  # planned and priced in-process; no pulumi, no tofu
    assert not (tmp_path / "home" / "state").exists()
    text = cli("cost", "--all", check=0).stdout
    assert "tenant-05" in text and f"USD {data['monthly_total']:,.2f}" in text


def test_cost_needs_a_customer_or_all(tmp_path):
    cli = EngineCLI(tmp_path / "home", make_catalog(tmp_path / "catalog", {"acme": (tenant_record("acme", 1), CUSTOMER.format(n=1))}))
    assert cli("cost").code == 2
    assert cli("cost", "acme", "--all").code == 2
