"""Cost estimates: checked against hand calculations from the catalog (policy/pricing.yml), for both tools."""

from __future__ import annotations

import dataclasses

import pytest

from engine import cost
from engine.errors import ConfigError
from engine.plan_document import PlanDocument, PlannedResource
from tests.plans import fixture_target, pulumi_document, terraform_document

H = 730  # hours per month in the catalog
# eu-west-1, by hand from policy/pricing.yml
T3_SMALL, T3_MEDIUM = 0.0228 * H, 0.0456 * H  # 16.644, 33.288
GP3_40 = 40 * 0.088  # 3.52
DB_T3_SMALL_MULTI = 0.038 * 2 * H + 50 * 0.254  # 55.48 + 12.70 = 68.18
DB_T3_SMALL_SINGLE = 0.038 * H + 50 * 0.127  # 27.74 + 6.35 = 34.09
NAT = 0.048 * H  # 35.04
EIP = 0.005 * H  # 3.65
ALARMS = 2 * 0.10
LOCAL_CREATE = 2 * (T3_SMALL + GP3_40) + DB_T3_SMALL_MULTI + NAT + ALARMS  # 143.75
AWS_CREATE = LOCAL_CREATE + EIP  # 147.40: the AWS programs' NAT gateway has a public IPv4 address


def test_a_new_stack_costs_what_the_catalog_says_line_by_line():
    estimate = cost.estimate(terraform_document("local", "create"))
    assert estimate.monthly_before == 0
    assert estimate.monthly_after == pytest.approx(LOCAL_CREATE)
    assert round(estimate.monthly_after, 2) == 143.75
    assert estimate.complete and estimate.currency == "USD" and estimate.region == "eu-west-1"
    lines = {r.address: r for r in estimate.resources}
    db = lines["enginelocal_document.database[0]"]
    assert [(c.name, round(c.monthly, 2)) for c in db.components] == [
        ("database db.t3.small (postgres, Multi-AZ)", 55.48), ("database storage (Multi-AZ)", 12.7)]
    assert lines['enginelocal_document.routes["private"]'].monthly_after == pytest.approx(NAT)  # the local stand-in for the NAT gateway
    assert lines["enginelocal_document.network"].monthly_after == 0 and lines["enginelocal_document.network"].priced


def test_an_update_has_before_after_and_delta():
    estimate = cost.estimate(terraform_document("local", "update"))
    assert estimate.monthly_before == pytest.approx(LOCAL_CREATE)
    after = 2 * (T3_MEDIUM + GP3_40) + DB_T3_SMALL_SINGLE + NAT + ALARMS
    assert estimate.monthly_after == pytest.approx(after)
    assert estimate.monthly_delta == pytest.approx(after - LOCAL_CREATE)
    summary = estimate.summary()
    assert (summary["monthly_before"], summary["monthly_after"], summary["monthly_delta"]) == (143.75, 142.95, -0.8)
    db = next(r for r in estimate.resources if r.type == "database")
    assert db.monthly_delta == pytest.approx(DB_T3_SMALL_SINGLE - DB_T3_SMALL_MULTI)


def test_the_real_aws_plan_adds_the_public_address():
    assert round(cost.estimate(terraform_document("aws", "create")).monthly_after, 2) == round(AWS_CREATE, 2) == 147.4
    update = cost.estimate(terraform_document("aws", "update"))
    assert round(update.monthly_before, 2) == 147.4 and round(update.monthly_delta, 2) == -0.8


@pytest.mark.parametrize("kind", ["local", "aws"])
def test_pulumi_and_terraform_cost_the_same_for_the_same_settings(kind):
    terraform = cost.estimate(terraform_document(kind, "create"))
    pulumi = cost.estimate(pulumi_document(fixture_target(kind)))
    assert pulumi.monthly_after == pytest.approx(terraform.monthly_after)
    by_type = lambda e: {t: round(sum(r.monthly_after for r in e.resources if r.type == t), 6) for t in {r.type for r in e.resources}}  # noqa: E731
    # the local module's disks are resources of their own; Pulumi's instances hold theirs: the sum of both is what must agree
    merged = lambda d: {**{k: v for k, v in d.items() if k not in ("volume", "instance")}, "compute": round(d.get("volume", 0) + d.get("instance", 0), 6)}  # noqa: E731
    assert merged(by_type(pulumi)) == merged(by_type(terraform))


def _doc(*resources: PlannedResource, region: str = "eu-west-1") -> PlanDocument:
    return PlanDocument("acme", "staging", "pulumi", "aws", region, {}, {}, tuple(resources))


def test_what_has_no_price_is_listed_as_not_priced_never_as_zero():
    unknown_size = PlannedResource("a", "instance", "aws_instance", "create", None, {"instance_type": "m5.nano", "root_volume_gb": 8})
    unknown_type = PlannedResource("b", "other", "aws_lambda_function", "create", None, {"tags": None})
    known = PlannedResource("c", "instance", "aws_instance", "create", None, {"instance_type": "t3.micro", "root_volume_gb": None})
    estimate = cost.estimate(_doc(unknown_size, unknown_type, known))
    assert not estimate.complete
    assert {r.address: r.reason for r in estimate.not_priced} == {
        "a": "instance type m5.nano has no price in eu-west-1", "b": "no price for resource type other"}
    assert estimate.monthly_after == pytest.approx(0.0114 * H)  # only what is priced is counted …
    assert estimate.summary()["not_priced"][0]["address"] == "a"  # … and what is not is said
    data = estimate.to_dict()
    assert [r["monthly_after"] for r in data["resources"]][:2] == [None, None] and data["complete"] is False


def test_a_region_outside_the_catalog_is_not_priced():
    r = PlannedResource("a", "instance", "aws_instance", "create", None, {"instance_type": "t3.micro"})
    (line,) = cost.estimate(_doc(r, region="ap-south-2")).resources
    assert line.reason == "region ap-south-2 is not in the price catalog"


def test_a_deleted_resource_saves_its_whole_price():
    gone = PlannedResource("nat", "nat_gateway", "aws_nat_gateway", "delete", {"tags": {}}, None)
    (line,) = cost.estimate(_doc(gone)).resources
    assert (line.monthly_before, line.monthly_after) == (pytest.approx(NAT), 0.0) and line.monthly_delta == pytest.approx(-NAT)


def test_us_east_1_prices_match_the_published_examples():
    """Cross-check with infracost's golden files (generated from AWS's price list): t3.medium $30.37, db.t3.large
    postgres $105.85, Multi-AZ mysql db.t3.large $198.56 + 30 GB $6.90, NAT gateway $32.85, public IP $3.65, alarm $0.10."""
    us = cost.load_catalog().regions["us-east-1"]
    assert round(us.instance_hourly["t3.medium"] * H, 2) == 30.37
    assert round(us.database_hourly["postgres"]["db.t3.large"] * H, 2) == 105.85
    assert round(us.database_hourly["mysql"]["db.t3.large"] * us.database_multi_az_factor * H, 2) == 198.56
    assert round(30 * us.database_storage_gb_month.multi_az, 2) == 6.9
    assert (round(us.nat_gateway_hourly * H, 2), round(us.public_ipv4_hourly * H, 2), us.alarm_monthly) == (32.85, 3.65, 0.10)


def test_every_type_the_programs_create_is_priced_in_every_region():
    catalog = cost.load_catalog()
    from engine.config import DATABASE_CLASSES, INSTANCE_TYPES

    for name, region in catalog.regions.items():
        if region.cloud != "aws":  # Azure's and GCP's regions: tests/unit/test_sizing.py
            continue
        assert set(region.instance_hourly) <= set(INSTANCE_TYPES), name
        assert set(region.database_hourly) == {"postgres", "mysql"}, name
        for prices in region.database_hourly.values():
            assert set(prices) <= set(DATABASE_CLASSES) and len(prices) == 24, name
    for kind in ("local", "aws"):
        for doc in (terraform_document(kind, "create"), pulumi_document(fixture_target(kind))):
            for region in (name for name, prices in catalog.regions.items() if prices.cloud == "aws"):
                assert cost.estimate(dataclasses.replace(doc, region=region)).complete, (kind, doc.tool, region)


def test_a_malformed_catalog_names_file_line_and_key(tmp_path):
    bad = tmp_path / "pricing.yml"
    bad.write_text("currency: USD\nas_of: '2025-06-01'\nsource: x\nhours_per_month: 730\nregions:\n  eu-west-1:\n    nat_gateway_hourly: cheap\n")
    with pytest.raises(ConfigError) as err:
        cost.load_catalog(bad)
    text = str(err.value)
    assert "pricing.yml:7" in text and "regions.eu-west-1.nat_gateway_hourly" in text
