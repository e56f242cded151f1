"""The policy gate on every plan, with the real OPA, the real tools and the local GitHub server.

A customer pull request raising production to an instance type the provider's policy denies is blocked before
anything is applied: the rule's message is in the PR comment, `infra/production/policy` fails, the apply deploys
nothing there and exits 4. Changing the policy (not the engine) lifts the block.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import REPO, SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture
from tests.integration.test_github_loop import DISPATCH_SECRET, OWNER, REPO as REPO_NAME, SHA, dispatch, latest_status, pull

# What the customer asks for: compliant with the provider's policies (a Multi-AZ production database, the tags),
# except production's instance type.
DENIED = SMALL_CONFIG.format(name="acme-app").replace(
    "    instance_type: t3.small\n", "    instance_type: m6i.2xlarge\n    database:\n      engine: postgres\n      multi_az: true\n"
) + "tags:\n  team: shop\n  cost-center: \"4711\"\n"


@pytest.fixture(params=["pulumi", "terraform"])
def gated(request, tmp_path, github_server):  # noqa: F811
    """The loop's tenant, on each tool, in a catalog with the provider's policies and prices."""
    record = tenant_record("acme", 1).replace("repository: acme-org/app\nsource: customers/acme\n", "repository: acme-org/app\n")
    root = make_catalog(tmp_path / "catalog", {"acme": (record, None)})
    shutil.copytree(REPO / "policy", root / "policy")
    github_server.add_repo(OWNER, REPO_NAME, properties={"infrastructure_tools": [request.param]})
    github_server.put_file(OWNER, REPO_NAME, SHA, "infra/variables.yml", DENIED)
    github_server.set_ref(OWNER, REPO_NAME, "main", SHA)
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_SERVER_URL": "https://github.example",
                "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "77", "ENGINE_GITHUB_TIMEOUT": "2",
                "ENGINE_GITHUB_MAX_RETRY_WAIT": "2", "ENGINE_DISPATCH_SECRETS": json.dumps({"acme": DISPATCH_SECRET})})
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli, github_server, tmp_path, request.param


def test_a_denied_instance_type_is_blocked_before_apply_and_a_policy_change_lifts_it(gated):
    cli, server, tmp, tool = gated
    pull(server, 9, SHA)
    plan = cli("event", "repository_dispatch", dispatch(tmp, "plan.json", customer="acme", sha=SHA, pr=9, mode="plan"))
    assert plan.code == 4, plan.stdout + plan.stderr
    policy = latest_status(server, SHA, "infra/production/policy")
    assert policy["state"] == "failure" and "instance size 2xlarge (m6i.2xlarge) is not allowed in production" in policy["description"]
    assert latest_status(server, SHA, "infra/staging/policy")["state"] == "success"
    comment = next(c["body"] for c in server.comments(OWNER, REPO_NAME, 9) if "acme/production" in c["body"].splitlines()[0])
    summary = comment.split("| Create |")[0]
    assert "**Blocked by policy.**" in summary and "**Policy:** ❌" in summary and "is not allowed in production" in summary
    assert "**Cost:** $" in summary and " per month" in summary

    # the merge: staging is applied, production is blocked before anything changes there
    apply = cli("event", "repository_dispatch", dispatch(tmp, "apply.json", customer="acme", sha=SHA, mode="apply"), "--json")
    assert apply.code == 4, apply.stdout + apply.stderr
    stacks = apply.json()["environments"]
    assert stacks["staging"]["status"] == "succeeded" and stacks["production"]["status"] == "blocked"
    assert stacks["production"]["policy"]["denied"] is True and stacks["production"]["cost"]["monthly_after"] > 0
    assert not (cli.home / "local-cloud" / "acme" / "production").exists()  # nothing was created there
    assert [d["environment"] for d in server.deployments(OWNER, REPO_NAME)] == ["staging"]

    # the provider allows 2xlarge in production: a policy change, no engine change, lifts the block
    rules = cli.catalog / "policy" / "instance_types.rego"
    rules.write_text(rules.read_text().replace('"sizes": {"small", "medium", "large", "xlarge"}', '"sizes": {"small", "medium", "large", "xlarge", "2xlarge"}'))
    again = cli("event", "repository_dispatch", dispatch(tmp, "apply2.json", customer="acme", sha=SHA, mode="apply"), "--json")
    assert again.code == 0, again.stdout + again.stderr
    assert again.json()["environments"]["production"]["status"] == "succeeded"
    assert latest_status(server, SHA, "infra/production/policy")["state"] == "success"
    assert (cli.home / "local-cloud" / "acme" / "production").exists()
