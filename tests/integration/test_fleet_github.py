"""Drift issues and custom-property compliance against the schema-checking local GitHub server."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SMALL_CONFIG, EngineCLI, compliance_catalog, make_catalog, tenant_record
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture


def with_github(cli: EngineCLI, server) -> EngineCLI:
    env = cli.env()
    env.update({"GITHUB_API_URL": server.url, "GITHUB_TOKEN": "test-token", "GITHUB_REPOSITORY": "provider/manager",
                "GITHUB_RUN_ID": "7", "GITHUB_ACTOR": "fleet-bot", "ENGINE_GITHUB_TIMEOUT": "2", "ENGINE_GITHUB_MAX_RETRY_WAIT": "2"})
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli


def test_drift_issue_is_opened_updated_and_closed(tmp_path, github_server):  # noqa: F811
    root = make_catalog(tmp_path / "c", {"acme": (tenant_record("acme", 1).replace("acme-org/app", "acme-org/shop"), SMALL_CONFIG.format(name="acme-app"))})
    cli = with_github(EngineCLI(tmp_path / "home", root), github_server)
    github_server.add_repo("acme-org", "shop")
    cli("up", "acme", "--env", "staging", check=0)

    definition = cli.home / "local-cloud/acme/staging/compute/app-1/instance.json"
    doc = json.loads(definition.read_text())
    doc["spec"]["instance_type"] = "t3.xlarge"
    definition.write_text(json.dumps(doc))

    first = cli("drift", "acme", "--env", "staging", "--report", "github", "--json")
    assert first.code == 3, first.stdout + first.stderr
    (issue,) = github_server.issues("acme-org", "shop")
    assert issue["state"] == "open" and issue["title"] == "Infrastructure drift: acme/staging"
    assert {"infra-drift", "severity:medium"} <= {label["name"] for label in issue["labels"]}
    assert "| `app-1` | `local:Instance` | update | `spec.instance_type` | `\"t3.micro\"` | `\"t3.xlarge\"` |" in issue["body"]

    (cli.home / "local-cloud/acme/staging/monitoring/alarms.json").unlink()  # worse now
    second = cli("drift", "acme", "--env", "staging", "--report", "github", "--json")
    assert second.code == 3
    (updated,) = github_server.issues("acme-org", "shop")  # the same issue, edited
    assert updated["number"] == issue["number"]
    assert "severity:high" in {label["name"] for label in updated["labels"]} and "deleted outside the engine" in updated["body"]

    # put the deployed state back by hand: refresh records what is there, up restores what was asked for
    cli("refresh", "acme", "--env", "staging", check=0)
    cli("up", "acme", "--env", "staging", check=0)
    resolved = cli("drift", "acme", "--env", "staging", "--report", "github", "--json")
    assert resolved.code == 0, resolved.stdout
    (closed,) = github_server.issues("acme-org", "shop")
    assert closed["state"] == "closed" and "Drift resolved" in closed["body"]
    assert [a["action"] for a in resolved.json()["github"]["issues"]] == ["closed"]


@pytest.fixture
def fleet(tmp_path, github_server):  # noqa: F811
    root, cmdb = compliance_catalog(tmp_path, github_server, ["terraform", "chef"])
    return with_github(EngineCLI(tmp_path / "home", root), github_server), github_server, cmdb


def test_property_drift_against_a_csv_source_of_truth(fleet):
    cli, server, cmdb = fleet
    run = cli("compliance", "--source", str(cmdb), "--json")
    assert run.code == 3, run.stdout + run.stderr
    repos = {r["repository"]: r for r in run.json()["repositories"]}
    assert repos["acme-org/shop"]["state"] == "compliant"
    beta = {f["property"]: f for f in repos["beta-org/site"]["findings"]}
    assert beta["infrastructure_tools"]["expected"] == ["terraform", "ansible"]
    assert beta["terraform_version"]["actual"] == "1.5" and beta["terraform_version"]["expected"] == "1.8"
    assert server.writes() == []


def test_dry_run_remediation_writes_nothing(fleet):
    cli, server, cmdb = fleet
    run = cli("compliance", "--source", str(cmdb), "--remediate", "--dry-run")
    assert run.code == 3
    assert "dry run — these writes were NOT made:" in run.stdout and "PATCH /repos/beta-org/site/properties/values" in run.stdout
    assert server.writes() == []
    assert not (cli.home / "audit").exists()


def test_remediation_writes_expected_values_and_records_them(fleet):
    cli, server, cmdb = fleet
    run = cli("compliance", "--source", str(cmdb), "--remediate", "--json")
    assert run.code == 0, run.stdout + run.stderr
    assert server.properties("beta-org", "site")["terraform_version"] == "1.8"
    assert sorted(server.properties("beta-org", "site")["infrastructure_tools"]) == ["ansible", "terraform"]
    (record,) = [json.loads(line) for line in (cli.home / "audit" / "compliance.jsonl").read_text().splitlines()]
    assert record["who"] == "fleet-bot" and record["repository"] == "beta-org/site" and record["at"].endswith("Z")
    assert {c["property"]: (c["from"], c["to"]) for c in record["changes"]}["terraform_version"] == ("1.5", "1.8")
    assert cli("compliance", "--source", str(cmdb)).code == 0  # compliant now


def test_policy_alone_flags_disallowed_values(fleet):
    cli, server, _ = fleet
    run = cli("compliance", "--json")
    assert run.code == 3
    findings = [f for r in run.json()["repositories"] for f in r["findings"]]
    assert {"repository": "beta-org/site", "property": "infrastructure_tools", "actual": ["terraform", "chef"], "expected": None,
            "reason": "value chef is not allowed (allowed: pulumi, terraform, ansible, spacelift)"} in findings


def test_drift_reads_customer_files_from_github_and_survives_a_broken_one(tmp_path, github_server):  # noqa: F811
    remote = "customer: remote\nrepository: remote-org/app\ntarget: local\nnetwork_index: 5\n"  # no local source
    broken = "customer: broken\nrepository: broken-org/app\ntarget: local\nnetwork_index: 6\n"
    root = make_catalog(tmp_path / "c", {"remote": (remote, None), "broken": (broken, None)})
    github_server.add_repo("remote-org", "app")
    github_server.put_file("remote-org", "app", "main", "infra/variables.yml", SMALL_CONFIG.format(name="remote-app"))
    github_server.add_repo("broken-org", "app")
    github_server.put_file("broken-org", "app", "main", "infra/variables.yml", "project_name: broken\nenvironments: {}\n")
    cli = with_github(EngineCLI(tmp_path / "home", root), github_server)
    cli("up", "remote", "--env", "staging", check=0)
    run = cli("drift", "--all", "--json")
    assert run.code == 1  # one customer's file is broken: an error, reported
    rows = {(s["customer"], s["environment"]): s for s in run.json()["stacks"]}
    assert rows[("remote", "staging")]["state"] == "in-sync" and rows[("remote", "production")]["state"] == "not-deployed"
    assert rows[("broken", "*")]["state"] == "error" and "at least one environment" in rows[("broken", "*")]["error"]
