"""Review stacks end to end with the real Pulumi and the local GitHub server.

A tenant with ``review_stacks: true``: a pull request's plan dispatch also deploys ``pr-<number>`` (its outputs in its
own comment), the pull request's ``close`` dispatch destroys it, and ``engine gc`` destroys one left past its TTL —
and nothing of either is left on disk.  Lean on purpose (one environment in the customer file, one stack per pull
request); tests/unit/test_review_stacks.py covers slots, refusals and the event mapping with a fake runner.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.events import sign_dispatch
from tests.conftest import EngineCLI, make_catalog
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

SHA = "3" * 40
SHA_B = "4" * 40
OWNER, REPO = "acme-org", "app"
SECRET = "acme-dispatch-secret-for-review-stacks-0123"
CONFIG = """\
project_name: acme-app
environments:
  staging:
    instance_type: t3.micro
  production:
    instance_type: t3.small
review_base: staging
database:
  engine: postgres
"""


@pytest.fixture
def loop(tmp_path, github_server):  # noqa: F811
    record = "customer: acme\nrepository: acme-org/app\ntarget: local\nnetwork_index: 1\nreview_stacks: true\n"
    root = make_catalog(tmp_path / "catalog", {"acme": (record, None)})
    github_server.add_repo(OWNER, REPO, properties={"infrastructure_tools": ["pulumi"]})
    for sha in (SHA, SHA_B):
        github_server.put_file(OWNER, REPO, sha, "infra/variables.yml", CONFIG)
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_SERVER_URL": "https://github.example",
                "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "77", "ENGINE_GITHUB_TIMEOUT": "5",
                "ENGINE_GITHUB_MAX_RETRY_WAIT": "2", "ENGINE_DISPATCH_SECRETS": json.dumps({"acme": SECRET})})
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli, github_server, tmp_path


def dispatch(tmp_path: Path, mode: str, pr: int, sha: str) -> str:
    """A repository_dispatch as the customer template sends it for a pull request (signed, mode included)."""
    fields = {"customer": "acme", "sha": sha, "ref": f"refs/pull/{pr}/merge", "pr": pr, "mode": mode, "environment": None}
    payload = {k: v for k, v in fields.items() if v is not None}
    payload["signature"] = sign_dispatch(SECRET, timestamp=int(time.time()), **fields)
    path = tmp_path / f"{mode}-{pr}.json"
    path.write_text(json.dumps({"action": "infra-change", "client_payload": payload, "sender": {"login": "acme-ci"}}))
    return str(path)


def left_on_disk(home: Path, environment: str) -> list[str]:
    """Everything under ENGINE_HOME that belongs to ``environment``: its resources, state, work dir, lock, anything named after it."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if environment in p.name or f"/{environment}/" in f"/{p.relative_to(home)}/")


def review_comment(server, pr: int) -> dict:
    (comment,) = [c for c in server.comments(OWNER, REPO, pr) if c["body"].startswith(f"<!-- managed-infra-engine:acme/pr-{pr} -->")]
    return comment


def test_a_review_stack_lives_with_its_pull_request_and_gc_removes_one_left_behind(loop):
    cli, server, tmp = loop

    # 1. pull request #7 opens: staging and production are planned, and pr-7 is deployed with staging's settings
    server.add_pull(OWNER, REPO, 7, SHA)
    opened = cli("event", "repository_dispatch", dispatch(tmp, "plan", 7, SHA), "--mode", "plan", "--json", check=0).json()
    assert {e: (s["operation"], s["status"]) for e, s in opened["environments"].items()} == {
        "staging": ("preview", "succeeded"), "production": ("preview", "succeeded"), "pr-7": ("up", "succeeded")}
    outputs = opened["environments"]["pr-7"]["outputs"]
    assert outputs["vpc_cidr"] == "10.0.124.0/22"  # slot 15 (8 + 7 mod 8) of acme's 10.0.64.0/18: no environment of acme is there
    assert outputs["database_password"] == "[secret]"
    assert (cli.home / "local-cloud/acme/pr-7").is_dir() and not (cli.home / "local-cloud/acme/staging").exists()  # the plan deployed nothing else
    body = review_comment(server, 7)["body"]
    assert "infra apply · `acme` / `pr-7`" in body and "**Applied: " in body
    assert "| `vpc_cidr` | `10.0.124.0/22` |" in body and "| `database_password` | `[secret]` |" in body
    status = [s for s in server.statuses(OWNER, REPO, SHA) if s["context"] == "infra/pr-7"][-1]
    assert status["state"] == "success" and status["description"].startswith("applied: ")
    (deployment,) = server.deployments(OWNER, REPO)
    assert deployment["environment"] == "pr-7" and deployment["payload"]["engine"]["outputs"]["vpc_cidr"] == "10.0.124.0/22"

    # 2. it is merged (closed): the close dispatch destroys pr-7; the comment says so; nothing of it is left on disk
    server.add_pull(OWNER, REPO, 7, SHA, state="closed")
    closed = cli("event", "repository_dispatch", dispatch(tmp, "close", 7, SHA), "--mode", "plan", "--json", check=0).json()
    assert closed["environments"]["pr-7"]["operation"] == "destroy" and closed["environments"]["pr-7"]["changes"]["delete"] >= 10
    assert "**Review stack destroyed** when pull request #7 was closed" in review_comment(server, 7)["body"]
    assert server.deployments(OWNER, REPO)[0]["statuses"][-1]["state"] == "inactive"
    assert left_on_disk(cli.home, "pr-7") == []

    # 3. pull request #8's stack is left behind (its close never arrived): gc keeps it within the TTL, removes it after
    server.add_pull(OWNER, REPO, 8, SHA_B)
    cli("event", "repository_dispatch", dispatch(tmp, "plan", 8, SHA_B), "--mode", "plan", check=0)
    assert (cli.home / "local-cloud/acme/pr-8").is_dir()
    kept = cli("gc", "--ttl", "1h", "--json", check=0).json()
    assert [(s["environment"], s["action"], s["slot"]) for s in kept["stacks"]] == [("pr-8", "kept", 8)]
    time.sleep(1.2)
    dry = cli("gc", "--ttl", "1s", "--dry-run", "--json", check=0).json()
    assert [(s["environment"], s["action"]) for s in dry["stacks"]] == [("pr-8", "would-destroy")] and (cli.home / "local-cloud/acme/pr-8").is_dir()
    gone = cli("gc", "--ttl", "1s", check=0)
    assert "acme/pr-8" in gone.stdout and "destroyed (" in gone.stdout and "gc: 1 destroyed, 0 failed, 0 kept" in gone.stdout
    assert left_on_disk(cli.home, "pr-8") == []
    assert "**Review stack destroyed** after" in review_comment(server, 8)["body"]  # the pull request hears of it
    assert cli("gc", "--ttl", "1s", "--json", check=0).json()["stacks"] == []  # nothing is left to collect
    history = cli("history", "acme", "--json", check=0).json()["runs"]
    assert [(r["environment"], r["operation"], r["status"]) for r in history if r["environment"].startswith("pr-")][:2] == [
        ("pr-8", "destroy", "succeeded"), ("pr-8", "up", "succeeded")]
