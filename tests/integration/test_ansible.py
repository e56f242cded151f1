"""The Ansible step: real ansible-playbook runs against this machine, only for tenants that ask."""

from __future__ import annotations

import json

from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record


def catalog(tmp_path) -> EngineCLI:
    root = make_catalog(tmp_path / "c", {
        "ansco": (tenant_record("ansco", 5) + "properties:\n  infrastructure_tools: [pulumi, ansible]\n", SMALL_CONFIG.format(name="ans-app")),
        "tfans": (tenant_record("tfans", 6) + 'properties:\n  infrastructure_tools: [terraform, ansible]\n  terraform_version: "1.6"\n',
                  SMALL_CONFIG.format(name="tf-ans")),
        "plain": (tenant_record("plain", 7), SMALL_CONFIG.format(name="plain-app")),
    })
    return EngineCLI(tmp_path / "home", root)


def test_ansible_runs_after_deploy_for_tenants_that_ask_and_not_for_others(tmp_path):
    cli = catalog(tmp_path)
    for customer, tool in (("ansco", "pulumi"), ("tfans", "terraform")):
        result = cli("up", customer, "--env", "production", "--json", check=0).json()["environments"]["production"]
        assert result["tool"] == tool
        step = result["details"]["ansible"]
        assert step["status"] == "succeeded" and step["changed"] == 2 and step["tasks"] == 4, step  # 2 of 4 tasks write files
        for app in ("app-1", "app-2"):
            env_file = (cli.home / f"local-cloud/{customer}/production/compute/{app}/app.env").read_text()
            assert f"CUSTOMER={customer}\nENVIRONMENT=production\n" in env_file and f"INSTANCE={app}\n" in env_file
        again = cli("up", customer, "--env", "production", "--json", check=0).json()["environments"]["production"]
        assert again["details"]["ansible"]["changed"] == 0  # idempotent

    plain = cli("up", "plain", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert "ansible" not in plain["details"]
    assert not list((cli.home / "local-cloud/plain").rglob("app.env"))
    assert not (cli.home / "work/plain/staging/ansible").exists()

    cli("destroy", "ansco", "--yes", check=0)
    assert not [p for p in (cli.home / "local-cloud/ansco").rglob("*") if p.is_file()]


def test_a_failing_playbook_fails_the_environment_with_the_task_named(tmp_path):
    cli = catalog(tmp_path)
    stray = cli.home / "local-cloud/ansco/staging/compute/app-9"
    stray.mkdir(parents=True)  # an instance nobody planned: the playbook's check must fail
    run = cli("up", "ansco", "--json")
    assert run.code == 1
    envs = run.json()["environments"]
    assert envs["staging"]["status"] == "failed"
    assert envs["staging"]["error"] == ("ansible: task 'Check that every planned instance exists' failed on localhost: "
                                        "expected 1 instances, found 2")
    assert envs["staging"]["changes"]["create"] == 11  # the deploy itself happened and is reported
    assert envs["production"]["status"] == "skipped"
    assert json.dumps(envs).count("Traceback") == 0
