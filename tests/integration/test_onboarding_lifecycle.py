"""A customer from onboarding to offboarding with the real tools: onboard, deploy, offboard (destroy + record gone)."""

from __future__ import annotations

import shutil

from tests.conftest import SMALL_CONFIG, EngineCLI


def test_onboard_deploy_and_offboard_a_customer(cli: EngineCLI):
    checkout = cli.catalog / "customers" / "newco"
    (checkout / "infra").mkdir(parents=True)
    (checkout / "infra" / "variables.yml").write_text(SMALL_CONFIG.format(name="newco-app").replace("  production:\n    instance_type: t3.small\n    instance_count: 2\n", ""))

    onboarded = cli("onboard", "newco", "--repository", "newco-org/app", "--source", "customers/newco", "--environments", "staging",
                    "--json", check=0).json()
    assert onboarded["plan"]["network_index"] == 2  # acme holds 1
    assert next(c for c in onboarded["checks"] if c["what"].startswith("customer file"))["done"] is True

    up = cli("up", "newco", "--json", check=0).json()
    assert up["environments"]["staging"]["outputs"]["vpc_cidr"] == "10.0.132.0/22"  # staging's slot in newco's 10.0.128.0/18
    deployed = cli.home / "local-cloud" / "newco"
    assert any(p.is_file() for p in deployed.rglob("*"))

    assert cli("offboard", "newco").code == 2  # needs --yes
    gone = cli("offboard", "newco", "--yes", "--json", check=0).json()
    assert gone["removed"] and [s["status"] for s in gone["stacks"]] == ["succeeded"]
    assert not (cli.catalog / "stacks" / "newco.yml").exists()
    leftover = [p for p in deployed.rglob("*") if p.is_file()] if deployed.exists() else []
    assert leftover == []
    assert any("state location" in item for item in gone["left"])
    # the customer is no longer known; acme is untouched
    assert cli("preview", "newco").code == 2
    assert (cli.catalog / "stacks" / "acme.yml").is_file()
    shutil.rmtree(checkout)
