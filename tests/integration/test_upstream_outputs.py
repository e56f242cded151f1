"""Pulumi ↔ Terraform: a Pulumi tenant consumes a Terraform tenant's outputs, passed by the engine."""

from __future__ import annotations

import json

from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record

TF = 'properties:\n  infrastructure_tools: [terraform]\n  terraform_version: "1.6"\n'


def test_pulumi_stack_receives_a_terraform_stacks_outputs(tmp_path):
    consumes = "consumes:\n  - customer: shared\n    outputs: [vpc_cidr, instance_type]\n"
    root = make_catalog(tmp_path / "c", {
        "shared": (tenant_record("shared", 8) + TF, SMALL_CONFIG.format(name="shared-net")),
        "app": (tenant_record("app", 9) + consumes, SMALL_CONFIG.format(name="app")),
    })
    cli = EngineCLI(tmp_path / "home", root)

    # upstream not deployed yet: a clear failure, nothing deployed for app
    early = cli("up", "app", "--env", "staging", "--json")
    assert early.code == 1
    assert early.json()["environments"]["staging"]["error"] == "upstream shared/staging is not-deployed"
    assert not (cli.home / "local-cloud/app").exists()

    cli("up", "shared", "--env", "staging", check=0)
    run = cli("up", "app", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert run["tool"] == "pulumi"
    network = json.loads((cli.home / "local-cloud/app/staging/network/network.json").read_text())
    assert network["spec"]["peers"] == [{"customer": "shared", "vpc_cidr": "10.2.4.0/22", "instance_type": "t3.micro"}]

    again = cli("up", "app", "--env", "staging", "--json", check=0).json()["environments"]["staging"]["changes"]
    assert (again["create"], again["update"], again["delete"]) == (0, 0, 0)


def test_secret_or_missing_upstream_outputs_are_refused(tmp_path):
    root = make_catalog(tmp_path / "c", {
        "shared": (tenant_record("shared", 8) + TF, SMALL_CONFIG.format(name="shared-net")),
        "wantsecret": (tenant_record("wantsecret", 9) + "consumes:\n  - customer: shared\n    outputs: [database_connection]\n",
                       SMALL_CONFIG.format(name="app-a")),
        "typo": (tenant_record("typo", 10) + "consumes:\n  - customer: shared\n    outputs: [vpc_cidrr]\n", SMALL_CONFIG.format(name="app-b")),
        "ghost": (tenant_record("ghost", 11) + "consumes:\n  - customer: nobody\n    outputs: [vpc_cidr]\n", SMALL_CONFIG.format(name="app-c")),
    })
    cli = EngineCLI(tmp_path / "home", root)
    cli("up", "shared", "--env", "staging", check=0)
    secret = cli("up", "wantsecret", "--env", "staging", "--json")
    assert secret.code == 1
    assert "shared/staging.database_connection is secret; secrets are never passed between tenants" in secret.stdout
    typo = cli("up", "typo", "--env", "staging", "--json")
    assert typo.code == 1 and "has no output 'vpc_cidrr'" in typo.stdout
    ghost = cli("up", "ghost")
    assert ghost.code == 2 and "unknown customer 'nobody'" in ghost.stderr
