"""GitHub's own published example payloads through `engine event`, against the local GitHub server.

Each of GitHub's examples for `push`, `pull_request`, `repository_dispatch` and `workflow_dispatch`
(tests/fixtures/github-payloads/, copied from octokit/webhooks) yields what it should: a run of
the right customer, commit and mode, or exit 0 with one line saying why nothing ran — and then
no request at all reaches GitHub.  The examples' manager repository is `Codertocat/Hello-World`
(push, pull_request: the workflow passes `--customer`); the customer is `acme` (`acme-org/app`).

GitHub's dispatch examples carry no engine fields and no signature: as published they are
refused (exit 2); with the engine's fields in GitHub's envelope they are refused while unsigned
(exit 2, one line, nothing read or written) and run once signed with the customer's secret.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from engine.events import sign_dispatch
from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "github-payloads"
MANAGER = ("Codertocat", "Hello-World")  # the repository of GitHub's push and pull_request examples
OWNER, REPO = "acme-org", "app"
HEAD = "1111111111111111111111111111111111111111"  # the head of acme-org/app's default branch
PR_HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull request #2's head in GitHub's examples
NEW_BRANCH_HEAD = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"  # `after` of push/with-new-branch
SECRET = "acme-dispatch-secret-for-the-published-payloads"


@pytest.fixture
def gh(tmp_path, github_server):  # noqa: F811
    record = tenant_record("acme", 1).replace("source: customers/acme\n", "")
    root = make_catalog(tmp_path / "catalog", {"acme": (record, None)})
    github_server.add_repo(OWNER, REPO, properties={"infrastructure_tools": ["pulumi"]})
    github_server.put_file(OWNER, REPO, HEAD, "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))
    github_server.put_file(OWNER, REPO, "main", "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))
    github_server.set_ref(OWNER, REPO, "main", HEAD)
    github_server.add_repo(*MANAGER, default_branch="master")
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_SERVER_URL": "https://github.example",
                "GITHUB_REPOSITORY": "/".join(MANAGER), "GITHUB_RUN_ID": "77", "ENGINE_GITHUB_TIMEOUT": "2",
                "ENGINE_GITHUB_MAX_RETRY_WAIT": "2", "ENGINE_DISPATCH_SECRETS": json.dumps({"acme": SECRET})})
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli, github_server, tmp_path


def published(path: str) -> dict:
    return json.loads((PAYLOADS / path).read_text())


def write(tmp: Path, payload: dict, name: str) -> str:
    path = tmp / name
    path.write_text(json.dumps(payload))
    return str(path)


def latest(server, owner: str, repo: str, sha: str, context: str) -> dict:
    return [s for s in server.statuses(owner, repo, sha) if s["context"] == context][-1]


def nothing_to_do(cli: EngineCLI, server, event: str, path: str, reason: str) -> None:
    before = len(server.requests)
    run = cli("event", event, str(PAYLOADS / path), "--customer", "acme")
    assert run.code == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == [f"nothing to do: {reason}"], run.stdout
    assert len(server.requests) == before  # not a read, not a write


def test_published_pull_requests_plan_when_the_code_changed_and_say_why_not_otherwise(gh):
    cli, server, _ = gh
    server.add_pull(*MANAGER, 2, PR_HEAD)
    comment_ids = None
    for action in ("opened", "synchronize", "reopened"):
        run = cli("event", "pull_request", str(PAYLOADS / f"pull_request/{action}.payload.json"), "--customer", "acme", "--json")
        assert run.code == 0, run.stdout + run.stderr
        result = run.json()
        assert result["request"] == {"event": "pull_request", "customer": "acme", "sha": PR_HEAD, "pr": 2, "mode": "plan",
                                     "environments": [], "feedback_repository": "Codertocat/Hello-World"}
        assert {env: r["operation"] for env, r in result["environments"].items()} == {"staging": "preview", "production": "preview"}
        for env in ("staging", "production"):
            status = latest(server, *MANAGER, PR_HEAD, f"infra/{env}")
            assert status["state"] == "success" and status["description"].startswith("plan: ")
        comments = server.comments(*MANAGER, 2)
        assert len(comments) == 2 and all("**Plan: " in c["body"] for c in comments)  # one per environment
        ids = {c["id"] for c in comments}
        assert comment_ids in (None, ids)  # edited in place, never added again
        comment_ids = ids
    assert not (cli.home / "local-cloud").exists()  # a plan deploys nothing
    assert server.deployments(*MANAGER) == [] and server.deployments(OWNER, REPO) == []
    assert all(w["path"].startswith("/repos/Codertocat/Hello-World/") for w in server.writes())

    for action in ("closed", "labeled", "locked", "ready_for_review"):
        nothing_to_do(cli, server, "pull_request", f"pull_request/{action}.payload.json",
                      f"pull_request action '{action}' does not change the code to plan (only opened, synchronize and reopened do)")


def test_published_pushes_apply_a_branch_and_skip_a_deleted_tag(gh):
    cli, server, _ = gh
    nothing_to_do(cli, server, "push", "push/payload.json", "push deletes refs/tags/simple-tag, so there is no commit to apply")
    assert server.requests == []

    run = cli("event", "push", str(PAYLOADS / "push/with-new-branch.payload.json"), "--customer", "acme", "--json")
    assert run.code == 0, run.stdout + run.stderr
    result = run.json()
    assert (result["request"]["sha"], result["request"]["mode"]) == (NEW_BRANCH_HEAD, "apply")
    assert {env: r["status"] for env, r in result["environments"].items()} == {"staging": "succeeded", "production": "succeeded"}
    for env in ("staging", "production"):
        assert latest(server, *MANAGER, NEW_BRANCH_HEAD, f"infra/{env}")["description"].startswith("applied: ")
    assert sorted(d["environment"] for d in server.deployments(*MANAGER)) == ["production", "staging"]
    assert (cli.home / "local-cloud/acme/staging").is_dir() and (cli.home / "local-cloud/acme/production").is_dir()  # deployed
    reads = {r["path"] for r in server.requests if r["method"] == "GET"}
    assert f"/repos/{OWNER}/{REPO}/contents/infra/variables.yml" in reads  # the customer's file, from the tenant record's repository


def test_the_published_repository_dispatch_runs_only_as_a_signed_infra_change(gh):
    cli, server, tmp = gh
    run = cli("event", "repository_dispatch", str(PAYLOADS / "repository_dispatch/payload.json"))
    assert run.code == 2 and run.stderr.splitlines() == ["error: repository_dispatch type 'on-demand-test' is not 'infra-change'"]

    event = copy.deepcopy(published("repository_dispatch/payload.json"))
    fields = {"customer": "acme", "sha": HEAD, "ref": "refs/heads/main", "pr": None, "mode": "plan", "environment": None}
    event.update(action="infra-change", client_payload={k: v for k, v in fields.items() if v is not None})
    run = cli("event", "repository_dispatch", write(tmp, event, "unsigned.json"))
    assert run.code == 2 and run.stderr.splitlines() == [
        "error: dispatch for customer 'acme' refused: it is not signed (client_payload.signature is missing; docs/SETUP.md, "
        "dispatch authentication)"]
    assert server.requests == []  # refused before anything is read or written

    event["client_payload"]["signature"] = sign_dispatch(SECRET, timestamp=int(time.time()), **fields)
    run = cli("event", "repository_dispatch", write(tmp, event, "signed.json"), "--json")
    assert run.code == 0, run.stdout + run.stderr
    assert run.json()["request"] == {"event": "repository_dispatch", "customer": "acme", "sha": HEAD, "pr": None, "mode": "plan",
                                     "environments": [], "feedback_repository": None}
    assert latest(server, OWNER, REPO, HEAD, "infra/staging")["description"].startswith("plan: ")


def test_the_published_workflow_dispatch_with_an_empty_sha_runs_the_default_branch_head(gh):
    cli, server, tmp = gh
    run = cli("event", "workflow_dispatch", str(PAYLOADS / "workflow_dispatch/payload.json"))
    assert run.code == 2 and run.stderr.splitlines() == [
        f"error: {PAYLOADS}/workflow_dispatch/payload.json: inputs.customer: required key is missing",
        f"{PAYLOADS}/workflow_dispatch/payload.json: inputs.name: unknown key; allowed keys: customer, environment, mode, pr, sha, "
        "signature"]

    event = copy.deepcopy(published("workflow_dispatch/payload.json"))
    event["inputs"] = {"customer": "acme", "sha": "", "pr": "", "environment": "", "mode": "apply"}  # as the Actions UI sends them
    run = cli("event", "workflow_dispatch", write(tmp, event, "unsigned.json"))
    assert run.code == 2 and run.stderr.splitlines() == [
        "error: dispatch for customer 'acme' refused: it is not signed (inputs.signature is missing; docs/SETUP.md, "
        "dispatch authentication)"]
    assert server.requests == []

    def signed(mode: str, name: str) -> str:
        event["inputs"] = {"customer": "acme", "sha": "", "pr": "", "environment": "", "mode": mode}
        event["inputs"]["signature"] = sign_dispatch(SECRET, timestamp=int(time.time()), customer="acme", sha=None, ref=None,
                                                     pr=None, mode=mode, environment=None)
        return write(tmp, event, name)

    plan = cli("event", "workflow_dispatch", signed("plan", "plan.json"), "--json")
    assert plan.code == 0, plan.stdout + plan.stderr
    assert plan.json()["request"]["sha"] == HEAD
    assert latest(server, OWNER, REPO, HEAD, "infra/production")["description"].startswith("plan: ")

    apply = cli("event", "workflow_dispatch", signed("apply", "apply.json"), "--json")  # used to fail: "apply needs the commit"
    assert apply.code == 0, apply.stdout + apply.stderr
    assert (apply.json()["request"]["sha"], apply.json()["request"]["mode"]) == (HEAD, "apply")
    deployments = server.deployments(OWNER, REPO)
    assert sorted(d["environment"] for d in deployments) == ["production", "staging"] and {d["sha"] for d in deployments} == {HEAD}
    history = cli("history", "acme", "--json", check=0).json()["runs"]
    assert {row["sha"] for row in history} == {HEAD}  # the run history records the commit that ran
