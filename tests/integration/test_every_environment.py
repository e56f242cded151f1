"""Every environment of the customer file, in its order: what .github/workflows/infra-deploy.yml runs, end to end.

Against the local GitHub server and the local target, with the commands and arguments the workflow
passes: the plan job's `engine event … --mode plan` and `engine environments CUSTOMER --at SHA`,
then one `engine event … --mode apply --env <stage i>` per stage, in the printed order (the workflow
chains the stages with `needs:`, see tests/integration/test_workflows.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.events import sign_dispatch
from tests.conftest import EngineCLI, make_catalog, THREE_ENVIRONMENTS
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

PR_HEAD = "3" * 40
MERGED = "4" * 40
SECRETS = {"acme": "acme-dispatch-secret-every-environment-0123", "solo": "solo-dispatch-secret-every-environment-0123"}

THREE = THREE_ENVIRONMENTS.format(name="acme-app")
ONLY_DEVELOPMENT = """\
project_name: solo-app
environments:
  development:
    instance_type: t3.micro
"""


def record(customer: str, index: int) -> str:
    return f"customer: {customer}\nrepository: {customer}-org/app\ntarget: local\nnetwork_index: {index}\n"


@pytest.fixture
def loop(tmp_path, github_server):  # noqa: F811
    root = make_catalog(tmp_path / "catalog", {"acme": (record("acme", 1), None), "solo": (record("solo", 2), None)})
    for customer, config in (("acme", THREE), ("solo", ONLY_DEVELOPMENT)):
        github_server.add_repo(f"{customer}-org", "app", properties={"infrastructure_tools": ["pulumi"]})
        for sha in (PR_HEAD, MERGED):
            github_server.put_file(f"{customer}-org", "app", sha, "infra/variables.yml", config)
        github_server.set_ref(f"{customer}-org", "app", "main", MERGED)
        github_server.add_pull(f"{customer}-org", "app", 7, PR_HEAD)
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_SERVER_URL": "https://github.example",
                "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "99", "ENGINE_GITHUB_TIMEOUT": "5",
                "ENGINE_GITHUB_MAX_RETRY_WAIT": "2", "ENGINE_DISPATCH_SECRETS": json.dumps(SECRETS)})
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli, github_server, tmp_path


def dispatch(tmp_path: Path, name: str, customer: str, sha: str, mode: str, pr: int | None = None) -> str:
    """The repository_dispatch the customer's trigger workflow sends (signed with the customer's secret)."""
    payload = {"customer": customer, "sha": sha, "ref": "refs/heads/main" if mode == "apply" else f"refs/pull/{pr}/merge", "mode": mode}
    if pr:
        payload["pr"] = pr
    payload["signature"] = sign_dispatch(SECRETS[customer], timestamp=int(time.time()), customer=customer, sha=sha, ref=payload["ref"],
                                         pr=pr, mode=mode, environment=None)
    path = tmp_path / name
    path.write_text(json.dumps({"action": "infra-change", "client_payload": payload, "sender": {"login": f"{customer}-bot"}}))
    return str(path)


def deploy_like_the_workflow(cli: EngineCLI, event: str, customer: str, sha: str) -> list[str]:
    """infra-deploy.yml in apply mode: the plan job (plan, then the stages), then stage 1, 2, … each after the one before succeeded."""
    cli("event", "repository_dispatch", event, "--mode", "plan", check=0)
    stages = json.loads(cli("environments", customer, "--at", sha, check=0).stdout)["stages"]
    applied = []
    for stage in stages:
        run = cli("event", "repository_dispatch", event, "--mode", "apply", "--env", stage["environment"], "--json")
        assert run.code == 0, run.stdout[-2000:] + run.stderr[-2000:]
        assert list(run.json()["environments"]) == [stage["environment"]]
        applied.append(stage["environment"])
    return applied


def test_three_environments_are_planned_on_the_pull_request_and_applied_in_file_order_on_merge(loop):
    cli, server, tmp = loop
    plan = cli("event", "repository_dispatch", dispatch(tmp, "plan.json", "acme", PR_HEAD, "plan", pr=7), "--json", check=0).json()
    assert list(plan["environments"]) == ["development", "staging", "production"]
    comments = server.comments("acme-org", "app", 7)
    assert sorted(e for e in ("development", "staging", "production") for c in comments if f"`acme` / `{e}`" in c["body"]) == [
        "development", "production", "staging"]  # one plan comment per environment
    for env in ("development", "staging", "production"):
        status = [s for s in server.statuses("acme-org", "app", PR_HEAD) if s["context"] == f"infra/{env}"][-1]
        assert status["state"] == "success" and status["description"].startswith("plan: ")
    assert server.deployments("acme-org", "app") == []  # a plan deploys nothing

    applied = deploy_like_the_workflow(cli, dispatch(tmp, "apply.json", "acme", MERGED, "apply"), "acme", MERGED)
    assert applied == ["development", "staging", "production"]
    deployments = server.deployments("acme-org", "app")  # oldest first: the order they were applied in
    assert [d["environment"] for d in deployments] == ["development", "staging", "production"]
    assert all(d["sha"] == MERGED and d["statuses"][-1]["state"] == "success" for d in deployments)
    assert [d["production_environment"] for d in deployments] == [False, False, True]
    for env in ("development", "staging", "production"):
        status = [s for s in server.statuses("acme-org", "app", MERGED) if s["context"] == f"infra/{env}"][-1]
        assert status["state"] == "success" and status["description"].startswith("applied: ")
        assert (cli.home / f"local-cloud/acme/{env}/network").is_dir()  # real resources, per environment


def test_a_customer_with_only_development_deploys(loop):
    cli, server, tmp = loop
    cli("event", "repository_dispatch", dispatch(tmp, "plan.json", "solo", PR_HEAD, "plan", pr=7), check=0)
    (comment,) = server.comments("solo-org", "app", 7)
    assert "`solo` / `development`" in comment["body"]

    assert deploy_like_the_workflow(cli, dispatch(tmp, "apply.json", "solo", MERGED, "apply"), "solo", MERGED) == ["development"]
    (deployment,) = server.deployments("solo-org", "app")
    assert deployment["environment"] == "development" and deployment["statuses"][-1]["state"] == "success"
    assert (cli.home / "local-cloud/solo/development/network").is_dir()
    assert not (cli.home / "local-cloud/solo/staging").exists()


def test_a_failed_environment_stops_the_stages_after_it_and_they_are_reported_not_run(loop):
    cli, server, tmp = loop
    event = dispatch(tmp, "apply.json", "acme", MERGED, "apply")
    cli("event", "repository_dispatch", event, "--mode", "plan", check=0)
    stages = [s["environment"] for s in json.loads(cli("environments", "acme", "--at", MERGED, check=0).stdout)["stages"]]
    blocker = cli.home / "local-cloud/acme/staging/network"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    assert cli("event", "repository_dispatch", event, "--mode", "apply", "--env", stages[0]).code == 0
    assert cli("event", "repository_dispatch", event, "--mode", "apply", "--env", stages[1]).code == 1  # stage 2 fails: stage 3 is skipped
    waiting = [s for s in server.statuses("acme-org", "app", MERGED) if s["context"] == "infra/production"][-1]
    assert waiting["state"] == "pending"  # what a customer's wait-for-infra would wait on forever
    # the not-applied job (the environments after the first one not applied, as infra-deploy.yml computes them)
    cli("not-applied", "acme", "--at", MERGED, "--env", stages[2], "--reason", f"{stages[1]} was not applied", check=0)
    final = {e: [s for s in server.statuses("acme-org", "app", MERGED) if s["context"] == f"infra/{e}"][-1] for e in stages}
    assert [final[e]["state"] for e in stages] == ["success", "failure", "error"]
    assert final["production"]["description"] == "not run: staging was not applied"
    assert final["production"]["target_url"] == "https://github.example/provider/manager/actions/runs/99"
    assert [d["environment"] for d in server.deployments("acme-org", "app")] == ["development", "staging"]
    assert not (cli.home / "local-cloud/acme/production").exists()
