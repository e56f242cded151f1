"""Target planning is pure: configuration in, stack targets out."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from engine.config import CustomerConfig, TenantRecord
from engine.errors import InputError
from engine.planning import Settings, backend_url, network_plan, plan_targets

SETTINGS = Settings(state_root="/srv/engine/state", local_root="/srv/engine/cloud")


def tenant(customer="acme", index=1, **extra) -> TenantRecord:
    return TenantRecord.model_validate({"customer": customer, "repository": f"{customer}/app", "network_index": index, **extra})


def customer(**envs) -> CustomerConfig:
    envs = envs or {"staging": {"instance_type": "t3.micro"}, "production": {"instance_type": "m5.large", "instance_count": 3}}
    return CustomerConfig.model_validate({"project_name": "shop", "environments": envs,
                                          "database": {"engine": "mysql"}, "tags": {"team": "a"}})


def test_one_target_per_environment_in_file_order():
    targets = plan_targets(tenant(), customer(), SETTINGS)
    assert [(t.customer, t.environment, t.stack, t.project) for t in targets] == [("acme", "staging", "staging", "acme"), ("acme", "production", "production", "acme")]
    assert all(t.tool == "pulumi" and t.program == "local" for t in targets)


def test_environment_selection_and_unknown_environment():
    assert [t.environment for t in plan_targets(tenant(), customer(), SETTINGS, ["production"])] == ["production"]
    with pytest.raises(InputError, match="no environment 'qa'"):
        plan_targets(tenant(), customer(), SETTINGS, ["qa"])


def test_config_carries_what_the_customer_asked_for_and_provider_tags():
    prod = plan_targets(tenant(), customer(), SETTINGS, ["production"])[0].config
    assert prod["instance_type"] == "m5.large" and prod["instance_count"] == 3
    assert (prod["instance_vcpu"], prod["instance_memory_mib"]) == (2, 8192)
    assert prod["database"]["engine"] == "mysql"
    assert prod["monitoring"] is None
    assert prod["tags"] == {"customer": "acme", "environment": "production", "managed-by": "managed-infra-engine", "team": "a"}
    assert prod["local_root"] == "/srv/engine/cloud/acme/production"


def test_environment_database_overrides_and_disables_the_default():
    cfg = customer(staging={"instance_type": "t3.micro", "database": {"enabled": False}},
                   production={"instance_type": "t3.micro", "database": {"engine": "postgres", "storage_gb": 100}})
    staging, production = plan_targets(tenant(), cfg, SETTINGS)
    assert staging.config["database"] is None
    assert production.config["database"]["storage_gb"] == 100 and production.config["database"]["engine"] == "postgres"


def test_each_customer_gets_its_own_backend():
    assert backend_url(tenant("acme"), SETTINGS) == "file:///srv/engine/state/acme"
    assert backend_url(tenant("beta"), SETTINGS) == "file:///srv/engine/state/beta"
    s3 = tenant("acme", state={"url": "s3://infra-state/fleet?region=eu-west-1&endpoint=http://127.0.0.1:9000"})
    assert backend_url(s3, SETTINGS) == "s3://infra-state/fleet/acme?region=eu-west-1&endpoint=http://127.0.0.1:9000"


def test_networks_never_overlap_across_customers_and_environments():
    nets = [ipaddress.ip_network(network_plan(index, slot)["vpc_cidr"]) for index in range(1, 1024) for slot in range(16)]
    assert len(set(nets)) == len(nets)
    # spot-check pairwise overlap on a sample that crosses customers and slots
    sample = nets[::97]
    for a, b in itertools.combinations(sample, 2):
        assert not a.overlaps(b)
    plan = network_plan(3, 2)
    vpc = ipaddress.ip_network(plan["vpc_cidr"])
    subnets = [ipaddress.ip_network(c) for c in plan["public_subnets"] + plan["private_subnets"]]
    assert all(s.subnet_of(vpc) for s in subnets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(subnets, 2))


def test_well_known_environments_keep_their_slot_when_others_are_added():
    before = plan_targets(tenant(), customer(staging={"instance_type": "t3.micro"}), SETTINGS)[0]
    after = plan_targets(tenant(), customer(dev={"instance_type": "t3.micro"}, staging={"instance_type": "t3.micro"}), SETTINGS)[1]
    assert before.config["network"] == after.config["network"]


def test_terraform_tagged_customers_get_the_terraform_tool():
    t = tenant(properties={"infrastructure_tools": ["terraform", "ansible"], "terraform_version": "1.6"})
    assert {x.tool for x in plan_targets(t, customer(), SETTINGS)} == {"terraform"}


def test_planning_is_deterministic():
    a = [x.to_dict() for x in plan_targets(tenant(), customer(), SETTINGS)]
    b = [x.to_dict() for x in plan_targets(tenant(), customer(), SETTINGS)]
    assert a == b
