"""The deploy workflow's stages: `engine environments` reads the customer file at the commit through GitHub
(any number of environments, in file order), and `engine not-applied` answers for the stages GitHub skipped."""

from __future__ import annotations

import json

import pytest

from tests.conftest import EngineCLI, make_catalog
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

SHA = "6" * 40
HEAD = "7" * 40
FIVE = """\
project_name: five-app
environments:
  development:
    instance_type: t3.micro
  qa:
    instance_type: t3.micro
  uat:
    instance_type: t3.micro
    network_slot: 6
  staging:
    instance_type: t3.micro
  production:
    instance_type: t3.small
"""


@pytest.fixture
def remote(tmp_path, github_server):  # noqa: F811
    root = make_catalog(tmp_path / "catalog", {"five": ("customer: five\nrepository: five-org/app\ntarget: local\nnetwork_index: 5\n", None)})
    github_server.add_repo("five-org", "app", properties={"infrastructure_tools": ["pulumi"]})
    github_server.put_file("five-org", "app", SHA, "infra/variables.yml", FIVE)
    github_server.put_file("five-org", "app", "main", "infra/variables.yml", FIVE.replace("  uat:\n    instance_type: t3.micro\n    network_slot: 6\n", ""))
    github_server.set_ref("five-org", "app", "main", HEAD)
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_SERVER_URL": "https://github.example",
                "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "5", "ENGINE_GITHUB_TIMEOUT": "5", "ENGINE_GITHUB_MAX_RETRY_WAIT": "1"})
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli, github_server


def test_five_environments_at_the_commit_are_five_stages_in_file_order(remote):
    cli, server = remote
    out = json.loads(cli("environments", "five", "--at", SHA, check=0).stdout)
    assert out["environments"] == ["development", "qa", "uat", "staging", "production"] and out["sha"] == SHA
    assert [(s["after"], s["production"]) for s in out["stages"]] == [("", False), ("development", False), ("qa", False), ("uat", False),
                                                                      ("staging", True)]
    head = json.loads(cli("environments", "five", "--at", "", check=0).stdout)  # a manual run without a commit: the default branch
    assert head["environments"] == ["development", "qa", "staging", "production"]
    assert server.writes() == []  # it only reads


def test_an_invalid_customer_file_at_the_commit_is_bad_input_naming_file_line_and_key(remote):
    cli, server = remote
    server.put_file("five-org", "app", SHA, "infra/variables.yml", FIVE.replace("  qa:\n", "  qa:\n    instance_typo: t3.micro\n"))
    run = cli("environments", "five", "--at", SHA)
    assert run.code == 2
    assert "five-org/app/infra/variables.yml@6666666" in run.stderr and "environments.qa.instance_typo" in run.stderr


def test_not_applied_environments_get_their_final_status(remote):
    cli, server = remote
    run = cli("not-applied", "five", "--at", SHA, "--env", "staging", "--env", "production", "--reason", "qa failed", "--json", check=0)
    assert run.json()["environments"] == ["staging", "production"]
    statuses = {s["context"]: s for s in server.statuses("five-org", "app", SHA)}
    assert set(statuses) == {"infra/staging", "infra/production"}
    assert statuses["infra/production"]["state"] == "error" and statuses["infra/production"]["description"] == "not run: qa failed"
    cli("not-applied", "five", "--env", "qa", "--reason", "cancelled", check=0)  # no commit: the default branch's head
    assert [s["context"] for s in server.statuses("five-org", "app", HEAD)] == ["infra/qa"]


def test_not_applied_dry_run_writes_nothing(remote):
    cli, server = remote
    run = cli("not-applied", "five", "--at", SHA, "--env", "production", "--reason", "staging failed", "--dry-run", "--json", check=0)
    assert server.writes() == [] and len(run.json()["dry_run_writes"]) == 1


@pytest.mark.parametrize("args, message", [
    (("--env", "Prod!", "--reason", "x"), "is not an environment name"),
    (("--env", "production", "--reason", "  "), "--reason is empty"),
    (("--env", "production", "--reason", "x", "--at", "HEAD"), "is not a commit"),
])
def test_not_applied_refuses_bad_input_before_any_write(remote, args, message):
    cli, server = remote
    run = cli("not-applied", "five", *args)
    assert run.code == 2 and message in run.stderr, run.stderr
    assert server.writes() == []
