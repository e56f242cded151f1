"""One customer file, three clouds: what the planner makes of it on aws, azure and gcp, and what it refuses.

The sizing table itself (its rule, its words) is tests/unit/test_sizing.py; the programs under Pulumi mocks are
tests/unit/test_cloud_programs.py; the modules against the tfvars are tests/unit/test_terraform_modules.py.
"""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from engine import sizing
from engine.config import CustomerConfig, TenantRecord
from engine.documents import load_text
from engine.planning import Settings, plan_targets
from tests.conftest import EngineCLI, make_catalog, tenant_record
from tests.unit.test_cloud_programs import COMMON_OUTPUTS, GENERATED_PASSWORD_OUTPUT, run_program
from tests.unit.test_terraform_modules import read_blocks

CLOUDS = ("aws", "azure", "gcp")
# What a customer writes today (AWS words) and a portable word, a database and monitoring: one file for every cloud.
CUSTOMER_FILE = """\
project_name: shop
environments:
  staging:
    instance_type: small
    database:
      instance_class: micro
  production:
    instance_type: m6i.xlarge
    instance_count: 2
    database:
      instance_class: db.r6i.large
      storage_gb: 50
database:
  engine: postgres
monitoring:
  alert_email: ops@example.com
tags:
  team: Shop Team
"""


def planned(cloud: str, network_index: int):
    record = TenantRecord.model_validate({"customer": f"shop-{cloud}", "repository": "shop/app", "network_index": network_index,
                                          "target": cloud})
    config = CustomerConfig.model_validate(load_text(CUSTOMER_FILE, "variables.yml").data)
    return plan_targets(record, config, Settings("/state", "/cloud"))


def test_one_customer_file_planned_for_three_clouds_gets_each_clouds_mapped_sizes():
    expected = {
        "aws": ("t3.small", "db.t3.micro", "m6i.xlarge", "db.r6i.large"),
        "azure": ("Standard_B2s", "Standard_B1ms", "Standard_D4s_v5", "Standard_E2ds_v5"),
        "gcp": ("e2-small", "db-g1-small", "n2-standard-4", "db-custom-4-16384"),
    }
    for index, cloud in enumerate(CLOUDS):
        staging, production = planned(cloud, 20 + index)
        got = (staging.config["instance_type"], staging.config["database"]["instance_class"],
               production.config["instance_type"], production.config["database"]["instance_class"])
        assert got == expected[cloud], cloud
        assert got == (sizing.TABLE["instance"]["t3.small"][cloud], sizing.TABLE["database"]["db.t3.micro"][cloud],
                       sizing.TABLE["instance"]["m6i.xlarge"][cloud], sizing.TABLE["database"]["db.r6i.large"][cloud])
        # what the customer asked for is the same everywhere; the program and module get the cloud's names
        assert (staging.config["instance_vcpu"], staging.config["instance_memory_mib"]) == (2, 2048)
        assert staging.program == cloud and production.config["region"] == {"aws": "eu-west-1", "azure": "westeurope", "gcp": "europe-west4"}[cloud]
    assert planned("azure", 21)[1].config["database"]["storage_gb"] == 64  # the flexible server's next storage step above 50
    assert planned("gcp", 22)[0].config["tags"]["team"] == "shop_team"  # GCP labels are lower case


def test_the_three_clouds_networks_never_overlap():
    networks = []
    for index, cloud in enumerate(CLOUDS):
        for target in planned(cloud, 20 + index):
            net = target.config["network"]
            vpc = ipaddress.ip_network(net["vpc_cidr"])
            subnets = [ipaddress.ip_network(c) for c in net["public_subnets"] + net["private_subnets"]]
            assert all(s.subnet_of(vpc) for s in subnets) and not any(a.overlaps(b) for a, b in itertools.combinations(subnets, 2))
            networks.append((target.fqn, vpc))
    assert len(networks) == 6
    for (a, net_a), (b, net_b) in itertools.combinations(networks, 2):
        assert not net_a.overlaps(net_b), (a, b)


def test_the_same_outputs_on_every_cloud_for_both_tools(monkeypatch):
    for index, cloud in enumerate(CLOUDS):
        production = planned(cloud, 20 + index)[1]
        exports = set(run_program(cloud, production.config, monkeypatch).exports)
        module = set(read_blocks(cloud, "output"))
        assert exports == module == COMMON_OUTPUTS | GENERATED_PASSWORD_OUTPUT[cloud], cloud


# --- what a target cannot provide is bad input: exit 2, file, line, key and what that target takes -----------------

UNMAPPABLE = """\
project_name: shop
environments:
  staging:
    instance_type: t4g.small
"""


@pytest.fixture
def catalog(tmp_path):
    def build(target: str, document: str) -> EngineCLI:
        root = make_catalog(tmp_path / "catalog", {"shop": (tenant_record("shop", 7).replace("target: local", f"target: {target}"), document)})
        return EngineCLI(tmp_path / "home", root)
    return build


def test_an_unmappable_size_on_the_tenants_target_exits_2_naming_file_line_key_and_what_it_takes(catalog):
    cli = catalog("gcp", UNMAPPABLE)
    for args in (["plan-targets", "shop"], ["up", "shop"], ["preview", "shop"]):
        run = cli(*args)
        assert run.code == 2, (args, run.stdout, run.stderr)
        assert "customers/shop/infra/variables.yml:4: environments.staging.instance_type:" in run.stderr, run.stderr
        assert "'t4g.small' has no instance size on gcp" in run.stderr
        # the words gcp takes: the portable sizes, and each family's sizes (t4g from medium up: GCP's Arm machines start at 4 GiB)
        assert "instance_type on gcp takes: nano, micro, small, medium, large, xlarge, 2xlarge;" in run.stderr
        assert "t4g.{medium,large,xlarge,2xlarge}" in run.stderr and "m7g.{medium,large,xlarge,2xlarge}" in run.stderr
        assert "Traceback" not in run.stdout + run.stderr
    assert not (cli.home / "state").exists() and not (cli.home / "work").exists()
    assert catalog("azure", UNMAPPABLE)("plan-targets", "shop").code == 0  # Azure has an Arm size for it


def test_the_same_file_validates_per_target(catalog, tmp_path):
    cli = catalog("local", UNMAPPABLE.replace("t4g.small", "m7g.medium"))
    path = "customers/shop/infra/variables.yml"
    assert cli("validate", path).code == 0
    assert cli("validate", path, "--target", "gcp").code == 0
    run = cli("validate", path, "--target", "azure")
    assert run.code == 2 and f"{path}:4: environments.staging.instance_type: 'm7g.medium' has no instance size on azure" in run.stderr
    assert "m7g.{large,xlarge,2xlarge}" in run.stderr  # what azure takes of that family


@pytest.mark.parametrize(("target", "document", "line", "key", "reason"), [
    ("azure", "project_name: shop\nenvironments:\n  staging:\n    instance_type: small\ndatabase:\n  engine: mysql\n", 6,
     "database.engine", "database engine 'mysql' is not offered on azure; engine on azure takes: postgres"),
    ("azure", "project_name: shop\nenvironments:\n  production:\n    instance_type: small\n    database:\n      multi_az: true\n", 6,
     "environments.production.database.multi_az", "needs a General Purpose or Memory Optimized class"),
    ("aws", "project_name: shop\nenvironments:\n  staging:\n    instance_type: m5.nano\n", 4,
     "environments.staging.instance_type", "'m5.nano' has no instance size on aws (AWS sells no m5.nano)"),
    ("gcp", "project_name: shop\nenvironments:\n  staging:\n    instance_type: small\ntags:\n  Team: a\n  team: b\n", 7,
     "tags.team", "becomes the label 'team', which 'Team' already is"),
    ("azure", "project_name: shop\nenvironments:\n  staging:\n    instance_type: small\ntags:\n  team/name: a\n", 6,
     "tags.team/name", "azure tag names cannot contain"),
])
def test_what_a_target_cannot_provide_is_bad_input(catalog, target, document, line, key, reason):
    run = catalog(target, document)("plan-targets", "shop")
    assert run.code == 2, run.stdout
    assert f"customers/shop/infra/variables.yml:{line}: {key}: " in run.stderr and reason in run.stderr, run.stderr


def test_the_local_target_takes_every_word_of_the_vocabulary(catalog):
    run = catalog("local", UNMAPPABLE.replace("t4g.small", "m5.nano"))("plan-targets", "shop", check=0)
    assert run.json()[0]["config"]["instance_type"] == "m5.nano"
    portable = catalog("local", UNMAPPABLE.replace("t4g.small", "2xlarge"))
    assert portable("plan-targets", "shop", check=0).json()[0]["config"]["instance_type"] == "t3.2xlarge"
