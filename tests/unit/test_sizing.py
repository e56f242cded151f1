"""The one sizing table (engine/sizing.py): its rule, the words it offers, and everything that must agree with it —
the clouds' size lists, the price catalog, docs/CLOUDS.md, the JSON Schema and the cost of what the programs create."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from engine import cost, sizing
from engine.config import CustomerConfig, TenantRecord, json_schema
from engine.plan_document import desired_document
from engine.planning import Settings, plan_targets
from tests.plans import pulumi_document

REPO = Path(__file__).resolve().parent.parent.parent
CLOUDS = ("aws", "azure", "gcp")


def test_every_mapping_follows_the_rule():
    """Instances: same vCPUs and architecture, memory at least the same and at most twice. Databases: memory first
    (1-2x), vCPUs within a factor of two. Every name is a size the cloud sells (sizing.OFFERED)."""
    for kind in ("instance", "database"):
        for word, row in sizing.TABLE[kind].items():
            asked = sizing.OFFERED[kind]["aws"][word]
            for cloud in ("azure", "gcp"):
                if row[cloud] is None:
                    continue
                got = sizing.OFFERED[kind][cloud][row[cloud]]
                assert asked.memory_mib <= got.memory_mib <= 2 * asked.memory_mib, (word, cloud, row[cloud])
                if kind == "instance":
                    assert (got.vcpu, got.arch) == (asked.vcpu, asked.arch), (word, cloud, row[cloud])
                else:
                    assert asked.vcpu / 2 <= got.vcpu <= 2 * asked.vcpu, (word, cloud, row[cloud])


def test_an_unmappable_word_really_has_no_size_that_follows_the_rule():
    for kind in ("instance", "database"):
        for word, row in sizing.TABLE[kind].items():
            asked = sizing.OFFERED[kind]["aws"][word]
            for cloud in ("azure", "gcp"):
                if row[cloud] is not None:
                    continue
                fitting = [name for name, got in sizing.OFFERED[kind][cloud].items()
                           if asked.memory_mib <= got.memory_mib <= 2 * asked.memory_mib and (got.vcpu, got.arch) == (asked.vcpu, asked.arch)]
                assert not fitting, f"{word} on {cloud} could be {fitting}"


def test_the_portable_words_are_the_burstable_ladder_everywhere():
    for size in sizing.SIZES:
        for cloud in CLOUDS:
            if size != "nano":
                assert sizing.resolve("instance", size, cloud).name == sizing.TABLE["instance"][f"t3.{size}"][cloud]
                assert sizing.resolve("database", size, cloud).name == sizing.TABLE["database"][f"db.t3.{size}"][cloud]
    assert sizing.resolve("instance", "small", "azure").name == "Standard_B2s" and sizing.resolve("instance", "small", "gcp").name == "e2-small"


def test_the_schema_offers_every_word_and_the_portable_ones():
    schema = json_schema("customer")
    text = str(schema)
    for word in ("t3.small", "small", "2xlarge", "db.r6i.large"):
        assert f"'{word}'" in text
    assert "size-mappable-on-target" in schema["description"]
    CustomerConfig.model_validate({"project_name": "shop", "environments": {"staging": {"instance_type": "medium", "database": {"instance_class": "large"}}}})


def test_docs_show_the_table_the_engine_uses():
    page = (REPO / "docs" / "CLOUDS.md").read_text()
    shown = re.search(r"<!-- sizing-table: generated from engine/sizing.py -->\n(.*?)<!-- /sizing-table -->", page, re.S)
    assert shown, "docs/CLOUDS.md has no sizing-table markers"
    assert shown.group(1) == sizing.markdown_tables(), "docs/CLOUDS.md's table differs from engine/sizing.py: paste sizing.markdown_tables()"


@pytest.mark.parametrize("cloud", ["azure", "gcp"])
def test_every_size_a_customer_file_can_get_on_a_cloud_has_a_price_in_its_priced_region(cloud):
    catalog = cost.load_catalog()
    regions = [prices for prices in catalog.regions.values() if prices.cloud == cloud]
    assert len(regions) == 1 and regions[0].note and "estimate" in regions[0].note
    region = regions[0]
    sizes = {row[cloud] for row in sizing.TABLE["instance"].values() if row[cloud]}
    assert sizes == set(region.instance_hourly)  # not one more: a price for a size nothing maps to is dead weight
    for engine in sizing.DATABASE_ENGINES[cloud]:
        assert {row[cloud] for row in sizing.TABLE["database"].values() if row[cloud]} == set(region.database_hourly[engine]), engine
    assert all(price > 0 for price in region.instance_hourly.values())  # never zero silently


def _target(cloud: str, **extra):
    record = TenantRecord.model_validate({"customer": "acme", "repository": "acme/app", "network_index": 9, "target": cloud})
    config = CustomerConfig.model_validate({"project_name": "shop", "environments": {
        "production": {"instance_type": "m6i.large", "instance_count": 2, "volume_size_gb": 40}}, **extra})
    return plan_targets(record, config, Settings("/s", "/l"))[0]


@pytest.mark.parametrize("cloud", ["azure", "gcp"])
@pytest.mark.parametrize("extra", [{"database": {"instance_class": "db.m6i.large", "multi_az": True, "storage_gb": 50},
                                    "monitoring": {"alert_email": "ops@acme.example"}}, {}], ids=["database-and-monitoring", "plain"])
def test_the_desired_state_costs_what_the_programs_preview_costs(cloud, extra):
    """engine cost --all prices a model of the programs (desired_document); it must match the real program's resources."""
    target = _target(cloud, **extra)
    desired = cost.estimate(desired_document(target))
    previewed = cost.estimate(pulumi_document(target))
    assert desired.complete and previewed.complete, (desired.not_priced, previewed.not_priced)
    assert desired.monthly_after == pytest.approx(previewed.monthly_after)
    assert sorted(r.type for r in desired.resources) == sorted(r.type for r in previewed.resources)
    assert desired.summary()["prices_note"].startswith({"azure": "Azure", "gcp": "GCP"}[cloud])
    instance = next(r for r in previewed.resources if r.type == "instance")
    assert instance.components[0].name == f"instance {sizing.TABLE['instance']['m6i.large'][cloud]}"


def test_a_cloud_region_the_catalog_does_not_price_is_listed_as_not_priced_never_zero():
    target = _target("gcp")
    other = dataclasses.replace(target, config={**target.config, "region": "us-central1"})
    estimate = cost.estimate(desired_document(other))
    assert not estimate.complete
    assert {r.reason for r in estimate.not_priced} == {"region us-central1 is not in the price catalog"}
    wrong_cloud = dataclasses.replace(target, config={**target.config, "region": "westeurope"})
    assert "has azure prices, not gcp's" in cost.estimate(desired_document(wrong_cloud)).not_priced[0].reason
