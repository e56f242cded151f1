"""The repository patterns of docs/PATTERNS.md with the real tools: the monorepo example previewed for real,
and the app-only example served through GitHub (the local server) from the repository that holds its file."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from engine.events import sign_dispatch
from tests.conftest import REPO, EngineCLI
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

PATTERNS = REPO / "examples" / "patterns"
SHA = "3333333333333333333333333333333333333333"
SECRET = "billing-dispatch-secret-for-the-pattern-tests"


def test_monorepo_pattern_previews_every_environment_and_deploys_nothing(tmp_path: Path):
    catalog = tmp_path / "catalog"
    shutil.copytree(PATTERNS / "monorepo", catalog)
    cli = EngineCLI(tmp_path / "home", catalog)
    result = cli("preview", "storefront", "--json", check=0).json()
    assert result["ok"] and list(result["environments"]) == ["staging", "production"]
    for env, stack in result["environments"].items():
        assert stack["status"] == "succeeded" and stack["changes"]["create"] > 10, (env, stack["changes"])
        assert stack["changes"]["update"] == stack["changes"]["delete"] == 0
    local_cloud = cli.home / "local-cloud"
    assert not local_cloud.exists() or not any(p.is_file() for p in local_cloud.rglob("*"))


def test_app_only_pattern_is_planned_and_applied_in_the_repository_holding_the_file(tmp_path: Path, github_server):  # noqa: F811
    """The tenant record names platco/billing-deploy and config_path infrastructure.yml; the application's own
    repository (platco/billing) is never read or written."""
    catalog = tmp_path / "catalog"
    (catalog / "stacks").mkdir(parents=True)
    record = (PATTERNS / "app-only" / "stacks" / "billing.yml").read_text()
    (catalog / "stacks" / "billing.yml").write_text("".join(line for line in record.splitlines(True) if not line.startswith("source:")))
    server = github_server
    server.add_repo("platco", "billing")  # the application: no infra here
    server.add_repo("platco", "billing-deploy", properties={"infrastructure_tools": ["pulumi"]})
    server.put_file("platco", "billing-deploy", SHA, "infrastructure.yml",
                    (PATTERNS / "app-only" / "platco-billing-deploy" / "infrastructure.yml").read_text())
    server.set_ref("platco", "billing-deploy", "main", SHA)
    server.add_pull("platco", "billing-deploy", 5, SHA)
    cli = EngineCLI(tmp_path / "home", catalog)
    env = cli.env()
    env.update({"GITHUB_API_URL": server.url, "GITHUB_TOKEN": "test-token", "ENGINE_GITHUB_TIMEOUT": "2",
                "ENGINE_DISPATCH_SECRETS": json.dumps({"billing": SECRET})})
    cli.env = lambda: env  # type: ignore[method-assign]

    def dispatch(name: str, **fields) -> str:
        signed = {"customer": "billing", "sha": SHA, "ref": fields.get("ref"), "pr": fields.get("pr"), "mode": fields["mode"], "environment": None}
        payload = {k: v for k, v in {**signed, "signature": sign_dispatch(SECRET, timestamp=int(time.time()), **signed)}.items() if v is not None}
        path = tmp_path / name
        path.write_text(json.dumps({"action": "infra-change", "client_payload": payload}))
        return str(path)

    plan = cli("event", "repository_dispatch", dispatch("plan.json", pr=5, mode="plan"), "--json", check=0).json()
    assert plan["feedback"]["repository"] == "platco/billing-deploy"
    finals = {s["context"]: s["description"] for s in server.statuses("platco", "billing-deploy", SHA)}
    assert finals["infra/staging"].startswith("plan: ") and finals["infra/production"].startswith("plan: ")
    assert len(server.comments("platco", "billing-deploy", 5)) == 2  # one per environment

    cli("event", "repository_dispatch", dispatch("apply.json", ref="refs/heads/main", mode="apply"), check=0)
    assert sorted(d["environment"] for d in server.deployments("platco", "billing-deploy")) == ["production", "staging"]
    assert server.statuses("platco", "billing", SHA) == [] and server.deployments("platco", "billing") == []
    assert not [w for w in server.writes() if "/repos/platco/billing/" in str(w)]
