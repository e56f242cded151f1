"""The GitHub loop end to end: a dispatch payload → the real engine → feedback in the customer's repository.

The local GitHub server checks every request against GitHub's published API
description (githubkit's schemas) and keeps state, so these tests assert what a
customer would see: statuses, one comment per environment edited in place, deployments.
Dispatches are signed with the tenant's dispatch secret, as the customer template signs
them (tests/unit/test_dispatch_auth.py covers the refusals).
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest

from engine.events import sign_dispatch
from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

SHA = "1111111111111111111111111111111111111111"
SHA2 = "2222222222222222222222222222222222222222"
OWNER, REPO = "acme-org", "app"
DISPATCH_SECRET = "acme-dispatch-secret-for-the-loop-tests-0123"


@pytest.fixture
def loop(tmp_path, github_server):  # noqa: F811
    record = tenant_record("acme", 1).replace("repository: acme-org/app\nsource: customers/acme\n", "repository: acme-org/app\n")
    root = make_catalog(tmp_path / "catalog", {"acme": (record, None)})
    github_server.add_repo(OWNER, REPO, properties={"infrastructure_tools": ["pulumi"]})
    github_server.put_file(OWNER, REPO, SHA, "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))
    github_server.set_ref(OWNER, REPO, "main", SHA)  # main's head; apply only deploys the head
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_SERVER_URL": "https://github.example",
                "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "4242", "ENGINE_GITHUB_TIMEOUT": "2",
                "ENGINE_GITHUB_MAX_RETRY_WAIT": "2", "ENGINE_DISPATCH_SECRETS": json.dumps({"acme": DISPATCH_SECRET})})
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli, github_server, tmp_path


def dispatch(tmp_path: Path, name: str = "event.json", sender: str = "acme-bot", **client_payload) -> str:
    """A repository_dispatch signed like the customer template signs it (hostile fields are sent, and signed, as given)."""
    fields = {key: client_payload.get(key) for key in ("customer", "sha", "ref", "pr", "environment")}
    fields["mode"] = client_payload.get("mode", "plan")
    if all(isinstance(v, (str, int, type(None))) for v in fields.values()):
        client_payload = {**client_payload, "signature": sign_dispatch(DISPATCH_SECRET, timestamp=int(time.time()), **fields)}
    path = tmp_path / name
    path.write_text(json.dumps({"action": "infra-change", "client_payload": client_payload, "repository": {"full_name": "provider/manager"},
                                "sender": {"login": sender}}))
    return str(path)


def pull(server, number: int, sha: str = SHA) -> None:
    """Pull request ``number`` of the customer's repository, open, its head at ``sha``."""
    server.add_pull(OWNER, REPO, number, sha)


def latest_status(server, sha: str, context: str) -> dict:
    return [s for s in server.statuses(OWNER, REPO, sha) if s["context"] == context][-1]


def test_plan_on_a_pull_request_then_apply(loop):
    cli, server, tmp = loop
    pull(server, 17, SHA)
    event = dispatch(tmp, customer="acme", sha=SHA, pr=17, mode="plan")
    first = cli("event", "repository_dispatch", event, "--json", check=0).json()
    assert first["ok"] and first["request"]["mode"] == "plan"

    for env in ("staging", "production"):
        states = [s["state"] for s in server.statuses(OWNER, REPO, SHA) if s["context"] == f"infra/{env}"]
        assert states[-1] == "success" and "pending" in states, states  # pending → success
        status = latest_status(server, SHA, f"infra/{env}")
        assert status["target_url"] == "https://github.example/provider/manager/actions/runs/4242"
        assert status["description"].startswith("plan: ")
    comments = server.comments(OWNER, REPO, 17)
    assert len(comments) == 2  # one per environment
    staging = next(c for c in comments if "`acme` / `staging`" in c["body"])
    assert "**Plan: 11 to create**" in staging["body"] and "[run log](https://github.example/provider/manager/actions/runs/4242)" in staging["body"]
    assert not (cli.home / "local-cloud").exists() or not any((cli.home / "local-cloud").rglob("*.json"))  # plan deploys nothing
    assert server.deployments(OWNER, REPO) == []

    # a re-run (the customer file changed: staging gets a second instance) edits the same comments instead of adding new ones
    server.put_file(OWNER, REPO, SHA, "infra/variables.yml",
                    SMALL_CONFIG.format(name="acme-app").replace("    instance_type: t3.micro\n", "    instance_type: t3.micro\n    instance_count: 2\n", 1))
    cli("event", "repository_dispatch", event, check=0)
    again = server.comments(OWNER, REPO, 17)
    assert len(again) == 2 and {c["id"] for c in again} == {c["id"] for c in comments}
    edited = next(c for c in again if c["id"] == staging["id"])
    assert edited["body"] != staging["body"] and "**Plan: 12 to create**" in edited["body"]  # same comment, new plan

    # merge → apply on the default branch: deployments with outputs, secrets masked
    server.put_file(OWNER, REPO, SHA2, "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))
    server.set_ref(OWNER, REPO, "main", SHA2)  # merged
    applied = cli("event", "repository_dispatch", dispatch(tmp, "apply.json", customer="acme", sha=SHA2, ref="refs/heads/main", mode="apply"),
                  "--json", check=0).json()
    assert applied["environments"]["production"]["changes"]["create"] == 12
    deployments = server.deployments(OWNER, REPO)
    assert sorted(d["environment"] for d in deployments) == ["production", "staging"]
    prod = next(d for d in deployments if d["environment"] == "production")
    assert prod["sha"] == SHA2 and prod["production_environment"] is True
    assert prod["payload"]["engine"]["outputs"]["vpc_cidr"] == "10.0.64.0/22"
    assert prod["payload"]["engine"]["outputs"]["database_password"] == "[secret]"
    assert [s["state"] for s in prod["statuses"]] == ["success"]
    assert latest_status(server, SHA2, "infra/production")["description"].startswith("applied: 12 create")

    # applying the same commit again: no new deployment, nothing created
    cli("event", "repository_dispatch", dispatch(tmp, "apply2.json", customer="acme", sha=SHA2, mode="apply"), check=0)
    assert len(server.deployments(OWNER, REPO)) == 2


HOSTILE = [
    {"customer": "acme; rm -rf ~", "sha": SHA},
    {"customer": "../beta", "sha": SHA},
    {"customer": "nobody", "sha": SHA},
    {"customer": "acme", "sha": "$(id)"},
    {"customer": "acme", "sha": SHA, "environment": "../../x"},
    {"customer": "acme", "sha": SHA, "repository": "attacker/repo"},
    {"customer": "acme", "sha": SHA, "mode": "apply", "pr": "1 && curl evil"},
]


@pytest.mark.parametrize("payload", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_hostile_payloads_are_rejected_without_any_write(loop, payload):
    cli, server, tmp = loop
    run = cli("event", "repository_dispatch", dispatch(tmp, **payload))
    assert run.code == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert server.writes() == []
    assert not (cli.home / "state").exists()


def test_oversized_payload_is_rejected(loop):
    cli, server, tmp = loop
    big = dispatch(tmp, customer="acme", sha=SHA, note="x" * (2 * 1024 * 1024))
    run = cli("event", "repository_dispatch", big)
    assert run.code == 2 and "the limit is" in run.stderr
    assert server.requests == []


def test_a_bad_customer_file_is_reported_on_the_pull_request(loop):
    cli, server, tmp = loop
    pull(server, 5, SHA2)
    server.put_file(OWNER, REPO, SHA2, "infra/variables.yml", "project_name: acme-app\nenvironments:\n  staging:\n    instance_typo: t3.micro\n")
    run = cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA2, pr=5))
    assert run.code == 2 and "environments.staging.instance_typo" in run.stderr
    status = latest_status(server, SHA2, "infra/configuration")
    assert status["state"] == "failure" and status["description"].startswith("infra/variables.yml: line 4: environments.staging.instance_typo: unknown key (did you mean 'instance_type'?)")
    (comment,) = server.comments(OWNER, REPO, 5)
    assert "| 4 | `environments.staging.instance_typo` | unknown key (did you mean 'instance_type'?)" in comment["body"]
    assert not (cli.home / "state").exists()


def test_a_failing_deploy_shows_failure_and_the_error(loop):
    cli, server, tmp = loop
    pull(server, 9, SHA)
    blocker = cli.home / "local-cloud/acme/staging/network"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    run = cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA, pr=9, mode="apply"), "--json")
    assert run.code == 1
    staging = latest_status(server, SHA, "infra/staging")
    assert staging["state"] == "failure" and staging["description"].startswith("vpc: FileExistsError")
    assert latest_status(server, SHA, "infra/production")["state"] == "error"  # skipped after staging failed
    comment = next(c for c in server.comments(OWNER, REPO, 9) if "`staging`" in c["body"])
    assert "❌" in comment["body"] and "FileExistsError" in comment["body"]
    (deployment,) = [d for d in server.deployments(OWNER, REPO) if d["environment"] == "staging"]
    assert deployment["statuses"][-1]["state"] == "failure"


def test_github_faults_never_lose_or_duplicate_the_result(loop):
    cli, server, tmp = loop
    pull(server, 3, SHA)
    server.inject("POST", r"/statuses/", 500, 502, ("secondary_rate_limit", 1))
    server.inject("GET", r"/issues/\d+/comments", 502, ("too_many_requests", 1))
    server.inject("POST", r"/issues/\d+/comments$", ("timeout", 3))  # lands on the server, but the client gives up
    server.inject("POST", r"/deployments$", 503)
    server.inject("GET", r"/deployments$", ("rate_limit", 1))
    run = cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA, pr=3, mode="apply"), "--json")
    assert run.code == 0, run.stdout + run.stderr
    result = run.json()
    assert result["environments"]["staging"]["status"] == "succeeded"  # the deploy itself is never affected
    comments = server.comments(OWNER, REPO, 3)
    assert len([c for c in comments if "`acme` / `staging`" in c["body"]]) == 1  # the timed-out create is found, not repeated
    assert len([c for c in comments if "`acme` / `production`" in c["body"]]) == 1
    assert sorted(d["environment"] for d in server.deployments(OWNER, REPO)) == ["production", "staging"]
    for env in ("staging", "production"):
        assert latest_status(server, SHA, f"infra/{env}")["state"] == "success"


def test_dry_run_prints_every_write_and_makes_none(loop):
    cli, server, tmp = loop
    pull(server, 8, SHA)
    run = cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA, pr=8, mode="plan"), "--dry-run", "--json")
    assert run.code == 0
    assert server.writes() == []
    planned = run.json()["feedback"]["dry_run_writes"]
    assert any(p.startswith(f"POST /repos/{OWNER}/{REPO}/statuses/{SHA}") for p in planned)
    assert any(p.startswith(f"POST /repos/{OWNER}/{REPO}/issues/8/comments") for p in planned)
    assert "[dry-run] would POST" in run.stderr


def test_custom_properties_override_the_tenant_record(loop):
    cli, server, tmp = loop
    pull(server, 4, SHA)
    server.add_repo(OWNER, REPO, properties={"infrastructure_tools": ["terraform"], "terraform_version": "1.5"})
    run = cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA, pr=4))
    assert run.code == 2 and "terraform_version 1.5 cannot be satisfied" in run.stderr
    assert not re.search(r"test-token", run.stdout + run.stderr)  # the token is never printed


def test_the_plan_step_of_an_apply_flow_keeps_the_final_status_pending(loop):
    cli, server, tmp = loop
    event = dispatch(tmp, customer="acme", sha=SHA, ref="refs/heads/main", mode="apply")
    cli("event", "repository_dispatch", event, "--mode", "plan", check=0)  # the workflow's plan job
    assert latest_status(server, SHA, "infra/staging/plan")["state"] == "success"
    final = latest_status(server, SHA, "infra/staging")
    assert final["state"] == "pending" and "waiting for apply" in final["description"]
    cli("event", "repository_dispatch", event, "--env", "staging", check=0)  # the apply-staging job, after approval
    assert latest_status(server, SHA, "infra/staging")["description"].startswith("applied: ")
    assert latest_status(server, SHA, "infra/staging")["state"] == "success"


def test_github_app_installation_auth(loop):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    cli, server, tmp = loop
    pull(server, 21, SHA)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    env = cli.env()
    env.pop("GITHUB_TOKEN")
    env.update({"ENGINE_GITHUB_APP_ID": "123", "ENGINE_GITHUB_APP_PRIVATE_KEY": pem})
    run = cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA, pr=21))
    assert run.code == 0, run.stdout + run.stderr
    paths = [r["path"] for r in server.requests]
    assert f"/repos/{OWNER}/{REPO}/installation" in paths
    assert any(p.startswith("/app/installations/") and p.endswith("/access_tokens") for p in paths)
    assert latest_status(server, SHA, "infra/staging")["state"] == "success"
    assert "BEGIN PRIVATE KEY" not in run.stdout + run.stderr



def test_only_the_default_branch_head_is_applied(loop):
    cli, server, tmp = loop
    pull(server, 30, SHA2)
    server.put_file(OWNER, REPO, SHA2, "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))  # a PR head, not merged
    run = cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA2, pr=30, mode="apply"))
    assert run.code == 2 and "is not the head of acme-org/app's main" in run.stderr
    status = latest_status(server, SHA2, "infra/apply")
    assert status["state"] == "failure" and status["description"].startswith("superseded: 2222222 is not the head of main (1111111)")
    for env in ("staging", "production"):  # never left pending: nothing will ever apply this commit
        settled = latest_status(server, SHA2, f"infra/{env}")
        assert settled["state"] == "error" and settled["description"] == "superseded by 1111111 on main: not applied"
    assert not (cli.home / "state").exists() and server.deployments(OWNER, REPO) == []


def test_a_look_alike_comment_by_someone_else_is_never_edited(loop):
    cli, server, tmp = loop
    pull(server, 40, SHA)
    server.tokens.add("intruder-token")
    server.token_logins["intruder-token"] = "mallory"
    import httpx

    fake = "<!-- managed-infra-engine:acme/staging -->\n✅ No changes (trust me)"
    httpx.post(f"{server.url}/repos/{OWNER}/{REPO}/issues/40/comments", json={"body": fake},
               headers={"Authorization": "token intruder-token", "Accept": "application/vnd.github+json"}).raise_for_status()
    cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA, pr=40), check=0)
    comments = server.comments(OWNER, REPO, 40)
    assert next(c for c in comments if c["user"]["login"] == "mallory")["body"] == fake  # untouched
    engine_staging = [c for c in comments if c["user"]["login"] != "mallory" and "`acme` / `staging`" in c["body"]]
    assert len(engine_staging) == 1 and "**Plan: 11 to create**" in engine_staging[0]["body"]



def test_only_allowed_senders_may_trigger_a_tenant(loop):
    cli, server, tmp = loop
    pull(server, 50, SHA)
    record = cli.catalog / "stacks" / "acme.yml"
    record.write_text(record.read_text() + "allowed_senders: [acme-bot]\n")
    denied = cli("event", "repository_dispatch", dispatch(tmp, "denied.json", sender="mallory", customer="acme", sha=SHA, pr=50))
    assert denied.code == 2 and "mallory may not trigger runs for customer 'acme'" in denied.stderr
    assert server.writes() == []
    cli("event", "repository_dispatch", dispatch(tmp, "allowed.json", customer="acme", sha=SHA, pr=50), check=0)


def test_a_manager_pull_request_reads_the_tenant_records_repository_never_the_payloads(loop):
    """A pull request in the manager repository (e.g. a tenant record change) plans the customer's default
    branch from the repository in the tenant record; repositories the payload names are never touched."""
    cli, server, tmp = loop
    manager_sha = "3333333333333333333333333333333333333333"
    server.put_file(OWNER, REPO, "main", "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))  # the default branch
    server.add_repo("mallory", "evil")
    server.put_file("mallory", "evil", manager_sha, "infra/variables.yml", "project_name: evil\nenvironments: {}\n")
    event = tmp / "pull_request.json"
    event.write_text(json.dumps({
        "action": "synchronize", "number": 12, "sender": {"login": "provider-dev"},
        "pull_request": {"number": 12, "head": {"sha": manager_sha, "repo": {"full_name": "mallory/evil"}},
                         "base": {"repo": {"full_name": "mallory/evil"}}},
        "repository": {"full_name": "provider/manager"}}))
    run = cli("event", "pull_request", str(event), "--customer", "acme", "--json")
    assert run.code == 0, run.stdout + run.stderr
    touched = {"/".join(r["path"].split("/")[2:4]) for r in server.requests if r["path"].startswith("/repos/")}
    assert touched == {"acme-org/app", "provider/manager"}, touched
    assert all(w["path"].startswith("/repos/provider/manager/") for w in server.writes())
    assert [s["state"] for s in server.statuses("provider", "manager", manager_sha) if s["context"] == "infra/staging"][-1] == "success"
    (staging,) = [c for c in server.comments("provider", "manager", 12) if "`acme` / `staging`" in c["body"]]
    assert "**Plan: 11 to create**" in staging["body"]

    # the same event file in a run that belongs to another repository is refused before anything is written
    env = cli.env()
    env["GITHUB_REPOSITORY"] = "provider/other-manager"
    before = len(server.writes())
    refused = cli("event", "pull_request", str(event), "--customer", "acme")
    assert refused.code == 2 and refused.stderr.splitlines() == [
        "error: the pull_request event is for provider/manager, but this run belongs to provider/other-manager"]
    assert len(server.writes()) == before
